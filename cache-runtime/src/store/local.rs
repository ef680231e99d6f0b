//! The engine's local store: quick_cache (S3-FIFO, sharded) of entries with their deadlines.
//! For an in-process cache it holds the entries; in front of a shared store the L1 copies, or
//! only the results a leader hands to this process's waiters, for as long as that takes.

use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use quick_cache::sync::Cache as QuickCache;
use quick_cache::{DefaultHashBuilder, Lifecycle, OptionsBuilder, UnitWeighter};

use crate::entry::Entry;

pub(crate) type Local<K, V> =
    QuickCache<K, Entry<V>, UnitWeighter, DefaultHashBuilder, Evictions<K, Entry<V>>>;

/// quick_cache's lifecycle hooks: counts the entries evicted to make room (`Stats::evictions`).
/// Evictions happen only on inserts (loads), never on a hit. Like quick_cache's default, it
/// drops up to two evicted entries after the shard's lock is released, not under it.
pub(crate) struct Evictions<K, V> {
    count: Arc<AtomicU64>,
    _entries: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Evictions<K, V> {
    /// Counts into `count`.
    fn into(count: &Arc<AtomicU64>) -> Self {
        Evictions {
            count: Arc::clone(count),
            _entries: PhantomData,
        }
    }
}

impl<K, V> Clone for Evictions<K, V> {
    fn clone(&self) -> Self {
        Evictions {
            count: Arc::clone(&self.count),
            _entries: PhantomData,
        }
    }
}

impl<K, V> Lifecycle<K, V> for Evictions<K, V> {
    type RequestState = [Option<(K, V)>; 2];

    /// Called for evictions only: quick_cache 0.7 also hands a replaced value to `on_evict`
    /// (to drop it outside the lock), so the count is kept here.
    #[inline]
    fn before_evict(&self, _: &mut Self::RequestState, _: &K, _: &mut V) {
        self.count.fetch_add(1, Relaxed);
    }

    #[inline]
    fn on_evict(&self, state: &mut Self::RequestState, key: K, value: V) {
        match state {
            [None, _] => state[0] = Some((key, value)),
            [_, None] => state[1] = Some((key, value)),
            _ => {}
        }
    }
}

/// Builds a store of at most `max_entries` entries, with up to 64 shards of at least 32
/// entries each (below that quick_cache merges shards itself). 64 shards let two threads
/// hit without sharing a lock word (`notes/engines.md`: 8.0 ns against 15.7 with 8 shards).
/// Its evictions are counted into `evictions`.
pub(crate) fn new_local<K: Eq + Hash, V: Clone>(
    max_entries: u64,
    evictions: &Arc<AtomicU64>,
) -> Local<K, V> {
    let max = max_entries.max(1);
    let mut shards = 64;
    while shards > 1 && max / shards < 32 {
        shards /= 2;
    }
    // A multiple of the shard count, so that the shards' capacities add up to at most `max`.
    let capacity = max - max % shards;
    let items = usize::try_from(capacity).unwrap_or(usize::MAX);
    let options = OptionsBuilder::new()
        .estimated_items_capacity(items)
        .weight_capacity(capacity)
        .shards(usize::try_from(shards).unwrap_or(1))
        .build();
    match options {
        Ok(options) => QuickCache::with_options(
            options,
            UnitWeighter,
            DefaultHashBuilder::default(),
            Evictions::into(evictions),
        ),
        // Unreachable: both required options are set above.
        Err(_) => QuickCache::with(
            items,
            capacity,
            UnitWeighter,
            DefaultHashBuilder::default(),
            Evictions::into(evictions),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_never_exceeds_max_entries() {
        for max in [1, 7, 31, 64, 100, 1000, 10_000, 100_001] {
            let store: Local<u64, u64> = new_local(max, &Arc::default());
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
        let evictions = Arc::default();
        let store: Local<u64, u64> = new_local(32, &evictions);
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
