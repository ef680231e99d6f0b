//! The engine's local store: quick_cache (S3-FIFO, sharded) of entries with their deadlines.
//! For the in-process backend it holds the entries; for a remote backend only the results a
//! leader hands to this process's waiters, for as long as that takes.

use std::hash::Hash;

use quick_cache::sync::Cache as QuickCache;
use quick_cache::{DefaultHashBuilder, OptionsBuilder, UnitWeighter};

use crate::entry::Entry;

pub(crate) type Store<K, V> = QuickCache<K, Entry<V>, UnitWeighter, DefaultHashBuilder>;

/// Builds a store of at most `max_entries` entries, with up to 64 shards of at least 32
/// entries each (below that quick_cache merges shards itself). 64 shards let two threads
/// hit without sharing a lock word (`notes/engines.md`: 8.0 ns against 15.7 with 8 shards).
pub(crate) fn new_store<K: Eq + Hash, V: Clone>(max_entries: u64) -> Store<K, V> {
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
            Default::default(),
        ),
        // Unreachable: both required options are set above.
        Err(_) => QuickCache::with(
            items,
            capacity,
            UnitWeighter,
            DefaultHashBuilder::default(),
            Default::default(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_never_exceeds_max_entries() {
        for max in [1, 7, 31, 64, 100, 1000, 10_000, 100_001] {
            let store: Store<u64, u64> = new_store(max);
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
}
