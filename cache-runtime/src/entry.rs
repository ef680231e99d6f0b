//! The stored entry: a value or a null, with the times that decide its freshness.
//!
//! The same times travel to Redis in the envelope (`redis/codec.rs`), so every process agrees
//! on an entry's phase.

use crate::tags::EntryTags;

/// What a call left in the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Slot<V> {
    /// A real value (`T`, `Ok(T)`, `Some(T)`, `Ok(Some(T))`).
    Value(V),
    /// A null result (`None`, `Ok(None)`), cached for `null_ttl`.
    Null,
}

/// One cached result and the times that decide its phase (DESIGN §10), in milliseconds on the
/// cache clock.
#[derive(Clone, Debug)]
pub(crate) struct Entry<V> {
    pub(crate) slot: Slot<V>,
    pub(crate) times: Times,
    /// The tags of the load that produced it, with their versions when it started: the entry
    /// is used only while they are current (`tags.rs`).
    pub(crate) tags: EntryTags,
}

/// When an entry is fresh, when it is gone, and what produced it: milliseconds on the cache
/// clock (a store that keeps entries across processes converts them to Unix time and back).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Times {
    /// Served as a hit while the clock is below this; `u64::MAX` for no expiry.
    pub fresh_until_ms: u64,
    /// Kept (for `stale` and `stale_if_error`) while the clock is below this; at least
    /// `fresh_until_ms`.
    pub stale_until_ms: u64,
    /// How long the load that produced the value took, in microseconds (at most `u32::MAX`,
    /// 71 minutes): XFetch's `δ`, and what each hit on the entry saves
    /// ([`Stats::load_time_saved`](crate::Stats::load_time_saved)). An entry read from Redis
    /// carries it in milliseconds (the envelope's), so its figure is a multiple of 1,000.
    pub load_us: u32,
    /// Set when the value was kept after a failed load (fail-safe): no load of the key
    /// starts before this; 0 for none.
    pub retry_at_ms: u64,
    /// When the load that produced the value ended (its `age` is counted from here).
    pub written_ms: u64,
    /// Names the stored entry (`Cached::version`): random per load in
    /// process; on Redis a hash of the entry's bytes, the same in every process that reads
    /// them. 0 for a hand-over that is not stored.
    pub version: u64,
}

impl Times {
    /// Times that never end: a hand-over to waiters.
    pub(crate) const FOREVER: Times = Times {
        fresh_until_ms: u64::MAX,
        stale_until_ms: u64::MAX,
        load_us: 0,
        retry_at_ms: 0,
        written_ms: 0,
        version: 0,
    };
}

impl<V> Slot<V> {
    /// The slot borrowing its value.
    pub fn as_ref(&self) -> Slot<&V> {
        match self {
            Slot::Value(v) => Slot::Value(v),
            Slot::Null => Slot::Null,
        }
    }
}

impl<V> Slot<&V> {
    /// The owned slot: clones the value (the one clone a miss makes for the cache).
    pub fn cloned(self) -> Slot<V>
    where
        V: Clone,
    {
        match self {
            Slot::Value(v) => Slot::Value(v.clone()),
            Slot::Null => Slot::Null,
        }
    }
}

impl<V> Entry<V> {
    #[inline]
    pub(crate) fn is_fresh(&self) -> bool {
        crate::clock::before(self.times.fresh_until_ms)
    }

    /// Whether none of its tags was invalidated since its load started: an entry that is not
    /// current is gone, in every phase (never a hit, never stale, never kept).
    #[inline]
    pub(crate) fn is_current(&self) -> bool {
        self.tags.current()
    }
}

#[cfg(test)]
mod tests {
    /// Every hit clones an entry, and quick_cache keeps the key and entry side by side: their
    /// size decides how many cache lines a hit touches (`BENCHMARKS.md`, issue 23).
    #[test]
    fn an_entry_of_a_word_sized_value_stays_within_80_bytes() {
        assert_eq!(std::mem::size_of::<crate::tags::EntryTags>(), 16);
        assert!(std::mem::size_of::<super::Entry<u64>>() <= 80);
    }
}
