//! The engine's local store: quick_cache (S3-FIFO, sharded) of entries with their deadlines.
//! For an in-process cache it holds the entries; in front of a shared store the L1 copies, or
//! only the results a leader hands to this process's waiters, for as long as that takes.
//! Bounded by a count of entries (`max_entries`), by their weight in bytes (`max_bytes`,
//! [`Weigh`](crate::Weigh)), or both.

use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use quick_cache::sync::Cache as QuickCache;
use quick_cache::{DefaultHashBuilder, Lifecycle, OptionsBuilder, Weighter};

use crate::entry::{Entry, Slot};
use crate::weigh::Weigher;

pub(crate) type Local<K, V> =
    QuickCache<K, Entry<V>, Weights<K, V>, DefaultHashBuilder, Evictions<K, V>>;

/// What bounds a local store: a count of entries, and with a weigher a budget of bytes.
pub(crate) struct Budget<K, V> {
    /// At most this many entries (`u64::MAX`: only the bytes bound).
    pub(crate) max_entries: u64,
    /// At most this many bytes, as [`Weights`] counts them; with the weigher that counts them.
    pub(crate) max_bytes: Option<(u64, Weigher<K, V>)>,
}

/// What the slot of an entry in quick_cache costs beside the key and entry themselves: its
/// place in the slab (state, links) and in the hash table (an index and a control byte),
/// measured with a counting allocator (`tests/tests/max_bytes.rs`).
const SLOT_OVERHEAD: usize = 32;

/// The weight of an entry: 1 (a count) without `max_bytes`; else its bytes (the slot, the
/// key's and the value's heap; a null weighs its key), at least `floor` (`max_bytes /
/// max_entries`, so that the one budget bounds both).
pub(crate) struct Weights<K, V> {
    weigher: Option<Weigher<K, V>>,
    floor: u64,
}

impl<K, V> Clone for Weights<K, V> {
    fn clone(&self) -> Self {
        Weights {
            weigher: self.weigher,
            floor: self.floor,
        }
    }
}

impl<K, V> Weights<K, V> {
    /// The bytes of `key` and `entry`, as the budget counts them.
    fn bytes(weigher: &Weigher<K, V>, key: &K, entry: &Entry<V>) -> u64 {
        let value = match &entry.slot {
            Slot::Value(v) => (weigher.value)(v),
            Slot::Null => 0,
        };
        u64::try_from(slot_bytes::<K, V>() + (weigher.key)(key) + value).unwrap_or(u64::MAX)
    }
}

impl<K, V> Weighter<K, Entry<V>> for Weights<K, V> {
    #[inline]
    fn weight(&self, key: &K, entry: &Entry<V>) -> u64 {
        match &self.weigher {
            None => 1,
            Some(weigher) => Self::bytes(weigher, key, entry).max(self.floor),
        }
    }
}

/// quick_cache's lifecycle hooks: counts the entries evicted to make room (`Stats::evictions`)
/// and, with a byte budget, the values too heavy to store (`Stats::oversized`). Evictions
/// happen only on inserts (loads), never on a hit. Like quick_cache's default, it drops up to
/// two evicted entries after the shard's lock is released, not under it.
pub(crate) struct Evictions<K, V> {
    count: Arc<AtomicU64>,
    /// With a byte budget: what weighs an entry, and the most a shard admits (quick_cache
    /// refuses an entry heavier than its hot section, 97% of a shard).
    oversize: Option<(Weights<K, V>, u64)>,
    oversized: Arc<AtomicU64>,
    /// The first oversized value of this store was logged.
    said: Arc<AtomicBool>,
    _entries: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for Evictions<K, V> {
    fn clone(&self) -> Self {
        Evictions {
            count: Arc::clone(&self.count),
            oversize: self.oversize.clone(),
            oversized: Arc::clone(&self.oversized),
            said: Arc::clone(&self.said),
            _entries: PhantomData,
        }
    }
}

impl<K, V> Lifecycle<K, Entry<V>> for Evictions<K, V> {
    type RequestState = [Option<(K, Entry<V>)>; 2];

    /// Called for evictions, and for an entry refused as heavier than a shard can hold
    /// (quick_cache 0.7 also hands a replaced value to `on_evict`, to drop it outside the
    /// lock, so the count is kept here).
    #[inline]
    fn before_evict(&self, _: &mut Self::RequestState, key: &K, entry: &mut Entry<V>) {
        if let Some((weights, most)) = &self.oversize
            && weights.weight(key, entry) > *most
        {
            self.oversized.fetch_add(1, Relaxed);
            if !self.said.swap(true, Relaxed) {
                tracing::warn!(
                    bytes = weights.weight(key, entry),
                    most = *most,
                    "cache-runtime: a value heavier than a shard of `max_bytes` can hold was \
                     not stored (counted in `oversized`; said once per cache)"
                );
            }
            return;
        }
        self.count.fetch_add(1, Relaxed);
    }

    #[inline]
    fn on_evict(&self, state: &mut Self::RequestState, key: K, value: Entry<V>) {
        match state {
            [None, _] => state[0] = Some((key, value)),
            [_, None] => state[1] = Some((key, value)),
            _ => {}
        }
    }
}

/// Where a store's evictions and oversized values are counted.
#[derive(Default)]
pub(crate) struct Counts {
    pub(crate) evictions: Arc<AtomicU64>,
    pub(crate) oversized: Arc<AtomicU64>,
}

/// The most shards of a store bounded by bytes: a value heavier than a shard's share is not
/// stored, so a byte budget is split in few shards (a value of up to nearly an eighth of the
/// budget is kept).
const MAX_WEIGHED_SHARDS: u64 = 8;
/// The least bytes a shard of a byte budget holds (below 8 MiB, fewer shards).
const MIN_SHARD_BYTES: u64 = 1 << 20;
/// The share of a shard for entries seen more than once (S3-FIFO's main queue): quick_cache's
/// default, set here so that [`new_local`] knows the most a shard admits.
const HOT: f64 = 0.97;

/// The shards of a store: up to 64 of at least 32 entries each for a count (below that
/// quick_cache merges shards itself; 64 shards let two threads hit without sharing a lock
/// word, `notes/engines.md`: 8.0 ns against 15.7 with 8 shards); for a byte budget up to 8 of
/// at least 1 MiB each.
fn shards(max_entries: u64, max_bytes: Option<u64>) -> u64 {
    let mut shards = 64;
    while shards > 1 && max_entries / shards < 32 {
        shards /= 2;
    }
    if let Some(bytes) = max_bytes {
        shards = shards.min(MAX_WEIGHED_SHARDS);
        while shards > 1 && bytes / shards < MIN_SHARD_BYTES {
            shards /= 2;
        }
    }
    shards
}

/// The most entries quick_cache is told to expect (it preallocates for them; more still fit).
const MAX_PREALLOCATED: u64 = 1 << 22;

/// The most a shard of `shard` weight admits: quick_cache refuses an entry heavier than its
/// hot section (its own formula).
#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "quick_cache's own formula for its hot section"
)]
fn most_admitted(shard: u64) -> u64 {
    ((shard as f64 * HOT) as u64).clamp(shard.min(1), shard)
}

/// The bytes of an entry's slot: the key and entry as quick_cache stores them, and its
/// place in the slab and the hash table.
pub(crate) fn slot_bytes<K, V>() -> usize {
    std::mem::size_of::<(K, Entry<V>)>() + SLOT_OVERHEAD
}

/// Builds a store bounded by `budget`, its evictions and oversized values counted into
/// `counts`. The capacities are multiples of the shard count, so that the shards' add up to
/// at most the bound.
pub(crate) fn new_local<K: Eq + Hash, V: Clone>(
    budget: Budget<K, V>,
    counts: &Counts,
) -> Local<K, V> {
    let max_entries = budget.max_entries.max(1);
    let bytes = budget.max_bytes.as_ref().map(|(b, _)| (*b).max(1));
    let shards = shards(max_entries, bytes);
    let capacity = match bytes {
        None => max_entries - max_entries % shards,
        Some(b) => b.max(shards) - b.max(shards) % shards,
    };
    let most = most_admitted(capacity / shards);
    let (items, weights) = match budget.max_bytes {
        None => (
            max_entries,
            Weights {
                weigher: None,
                floor: 1,
            },
        ),
        Some((_, weigher)) => {
            // Both bounds: each entry weighs at least its share of the bytes (never more than
            // a shard admits, so that `max_entries = 1` still holds one).
            let floor = match budget.max_entries {
                u64::MAX => 1,
                n => capacity.div_ceil(n.max(1)).min(most),
            };
            // What quick_cache preallocates: a guess of 16 KiB an entry, at most the count.
            let items = (capacity / (16 << 10)).clamp(32 * shards, max_entries.max(32 * shards));
            (
                items,
                Weights {
                    weigher: Some(weigher),
                    floor,
                },
            )
        }
    };
    let evictions = Evictions {
        count: Arc::clone(&counts.evictions),
        oversize: weights.weigher.is_some().then(|| (weights.clone(), most)),
        oversized: Arc::clone(&counts.oversized),
        said: Arc::default(),
        _entries: PhantomData,
    };
    let items = usize::try_from(items.min(MAX_PREALLOCATED)).unwrap_or(usize::MAX);
    let options = OptionsBuilder::new()
        .estimated_items_capacity(items)
        .weight_capacity(capacity)
        .shards(usize::try_from(shards).unwrap_or(1))
        .hot_allocation(HOT)
        .build();
    match options {
        Ok(options) => {
            QuickCache::with_options(options, weights, DefaultHashBuilder::default(), evictions)
        }
        // Unreachable: both required options are set above.
        Err(_) => QuickCache::with(
            items,
            capacity,
            weights,
            DefaultHashBuilder::default(),
            evictions,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(max_entries: u64) -> Budget<u64, u64> {
        Budget {
            max_entries,
            max_bytes: None,
        }
    }

    #[test]
    fn capacity_never_exceeds_max_entries() {
        for max in [1, 7, 31, 64, 100, 1000, 10_000, 100_001] {
            let store: Local<u64, u64> = new_local(count(max), &Counts::default());
            assert!(
                store.capacity() <= max,
                "{max}: capacity {}",
                store.capacity()
            );
            assert!(
                store.capacity() * 100 >= max * 95,
                "{max}: capacity {}",
                store.capacity()
            );
        }
    }

    #[test]
    fn evictions_are_counted_and_replacements_are_not() {
        let counts = Counts::default();
        let evictions = &counts.evictions;
        let store: Local<u64, u64> = new_local(count(32), &counts);
        let entry = |v| Entry {
            slot: crate::entry::Slot::Value(v),
            times: crate::entry::Times::FOREVER,
            tags: crate::tags::EntryTags::of(&crate::tags::Tags::NONE),
        };
        for k in 0..4 {
            store.insert(k, entry(k));
        }
        store.insert(0, entry(1));
        store.remove(&1);
        assert_eq!(evictions.load(Relaxed), 0, "a replacement and a removal");
        for k in 4..132 {
            store.insert(k, entry(k));
        }
        let held = u64::try_from(store.len()).unwrap_or(0);
        assert!(held <= 32);
        assert_eq!(
            evictions.load(Relaxed),
            131 - held,
            "every entry is held or evicted"
        );
    }
}
