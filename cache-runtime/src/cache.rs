//! The per-function cache: its store, lookups, publishing fenced results, invalidation, and
//! the type-erased [`CacheHandle`] that `f_cache()` returns.
//!
//! The miss path (single-flight loads, sync and async) lives in `flight.rs`.

use std::fmt;
use std::hash::Hash;

use quick_cache::sync::Cache as QuickCache;
use quick_cache::{DefaultHashBuilder, Equivalent, OptionsBuilder, UnitWeighter};

use crate::bounds::CachedValue;
use crate::cell::Cell;
use crate::clock;
use crate::entry::{Entry, Slot};
use crate::fence::{Fence, Ticket};
use crate::function::{Function, KeyFn, Shaped, Types};
use crate::policy::Policy;
use crate::shape::{Picked, Shape};
use crate::stats::{Counter, Counters, Stats};

type Store<K, V> = QuickCache<K, Entry<V>, UnitWeighter, DefaultHashBuilder>;

/// The cache behind one `#[cached]` function `F`: generated code keeps one in a static.
pub struct Cache<F: Types> {
    name: String,
    pub(crate) policy: Policy,
    pub(crate) store: Store<F::Key, F::Value>,
    fence: Fence,
    pub(crate) stats: Counters,
    handle: std::sync::OnceLock<CacheHandle>,
}

/// Builds a store of at most `max_entries` entries, with up to 64 shards of at least 32
/// entries each (below that quick_cache merges shards itself). 64 shards let two threads
/// hit without sharing a lock word (`notes/engines.md`: 8.0 ns against 15.7 with 8 shards).
fn new_store<K: Eq + Hash, V: Clone>(max_entries: u64) -> Store<K, V> {
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

/// The in-process cache of the cached function `S` for `owner` (`Self` of a method), kept in
/// `cell`; `shape` is the shape the type checker picked for its return type.
#[inline]
pub fn memory_cache<S, M>(
    cell: &'static Cell,
    owner: std::any::TypeId,
    signature: S,
    shape: Picked<M>,
    name: impl FnOnce() -> String,
    policy: Policy,
) -> &'static Cache<Shaped<S, M>>
where
    S: KeyFn,
    M: Shape<S::Output> + 'static,
    M::Value: CachedValue,
{
    let _ = (signature, shape);
    cell.get_or_init(
        owner,
        || Cache::new(name(), policy),
        |cache| {
            crate::registry::register(*cache.handle());
        },
    )
}

impl<F: Function> Cache<F> {
    /// A cache named `name` with the settings of `policy`.
    pub fn new(name: impl Into<String>, policy: Policy) -> Self {
        clock::start();
        let store = new_store(policy.max_entries);
        let fence = Fence::new(store.num_shards());
        Cache {
            name: name.into(),
            policy,
            store,
            fence,
            stats: Counters::new(),
            handle: std::sync::OnceLock::new(),
        }
    }

    /// The hit path: the cached result for the key `lookup` stands for, if it is fresh.
    ///
    /// One shard read lock, one clone of the entry (the returned value), one clock load and
    /// one striped counter; no allocation and no lock shared by all keys. A miss is not
    /// counted here: the load that follows counts it.
    #[inline]
    pub fn get(&self, lookup: &F::Lookup<'_>) -> Option<F::Output> {
        self.get_q(lookup)
    }

    /// [`Cache::get`] by an owned key (for the Redis backend's in-process fallback).
    #[cfg(feature = "redis")]
    pub(crate) fn get_key(&self, key: &F::Key) -> Option<F::Output> {
        self.get_q(key)
    }

    #[inline]
    fn get_q<Q: Hash + Equivalent<F::Key> + ?Sized>(&self, lookup: &Q) -> Option<F::Output> {
        let entry = self.store.get(lookup)?;
        if !entry.is_fresh(clock::coarse_ms()) {
            return None;
        }
        let counter = match entry.slot {
            Slot::Value(_) => Counter::Hit,
            Slot::Null => Counter::NullHit,
        };
        let result = F::Shape::from_slot(entry.slot)?;
        self.stats.add(counter);
        Some(result)
    }

    /// Removes the entry of `lookup` and fences the loads of it that are in flight, so none
    /// of them writes its result back.
    pub fn invalidate(&self, lookup: &F::Lookup<'_>) {
        self.invalidate_q(lookup);
    }

    /// [`Cache::invalidate`] by an owned key.
    #[cfg(feature = "redis")]
    pub(crate) fn invalidate_key(&self, key: &F::Key) {
        self.invalidate_q(key);
    }

    fn invalidate_q<Q: Hash + Equivalent<F::Key> + ?Sized>(&self, lookup: &Q) {
        let stripe = self.store.shard_index(lookup);
        self.fence.invalidate(stripe, || {
            self.store.remove(lookup);
        });
    }

    /// The same as [`Cache::invalidate`], for the companions of async functions.
    pub async fn invalidate_async(&self, lookup: &F::Lookup<'_>) {
        self.invalidate(lookup);
    }

    /// The handle to this cache without its types, for `f_cache()`.
    pub fn handle(&'static self) -> &'static CacheHandle {
        self.handle.get_or_init(|| CacheHandle::new(self))
    }

    /// The owned key of `lookup`, built on a miss for the insert.
    pub fn key(&self, lookup: &F::Lookup<'_>) -> F::Key {
        F::to_key(lookup)
    }

    /// Taken before a load runs the body; see [`Fence`].
    pub(crate) fn ticket(&self, key: &F::Key) -> Ticket {
        self.fence.ticket(self.store.shard_index(key))
    }

    /// Stores the entry for `result` with `write`, unless the result is not cacheable (an
    /// error, counted) or the key was invalidated since `ticket` was taken (without a ticket, `write`
    /// inserts through a placeholder guard, which fails by itself after an invalidation). When `write` does
    /// not run it is dropped, which for a placeholder guard hands the load to a waiter.
    pub(crate) fn settle(
        &self,
        ticket: Option<Ticket>,
        result: &F::Output,
        write: impl FnOnce(Entry<F::Value>),
    ) {
        let Some(slot) = F::Shape::to_slot(result) else {
            self.stats.add(Counter::LoadError);
            return;
        };
        let null = matches!(slot, Slot::Null);
        if null && !self.policy.caches_nulls() {
            return;
        }
        let entry = Entry {
            slot: slot.cloned(),
            fresh_until_ms: self.policy.deadline_from_now(null),
        };
        match ticket {
            Some(ticket) => {
                self.fence.publish(ticket, || write(entry));
            }
            // A placeholder guard: fenced by the store itself.
            None => write(entry),
        }
    }
}

/// What [`CacheHandle`] needs of a cache, without its key and value types.
pub(crate) trait Erased: Send + Sync {
    fn name(&self) -> &str;
    fn backend(&self) -> &'static str;
    fn stats(&self) -> Stats;
    fn clear(&self);
    fn len(&self) -> usize;
}

impl<F: Function> Erased for Cache<F> {
    fn name(&self) -> &str {
        &self.name
    }
    fn backend(&self) -> &'static str {
        "memory"
    }
    fn stats(&self) -> Stats {
        self.stats.snapshot()
    }
    fn clear(&self) {
        self.fence.invalidate_all(|| self.store.clear());
    }
    fn len(&self) -> usize {
        self.store.len()
    }
}

/// The cache of one `#[cached]` function, as returned by its `f_cache()` companion.
///
/// ```
/// use cache_runtime::cached;
///
/// #[cached(ttl = 60, name = "squares")]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// assert_eq!(square(3), 9);
/// assert_eq!(square(3), 9);
/// let cache = square_cache();
/// assert_eq!(cache.name(), "squares");
/// assert_eq!((cache.stats().misses, cache.stats().hits), (1, 1));
/// cache.clear();
/// assert!(cache.is_empty());
/// ```
#[derive(Clone, Copy)]
pub struct CacheHandle {
    cache: &'static dyn Erased,
}

impl CacheHandle {
    pub(crate) fn new(cache: &'static dyn Erased) -> Self {
        CacheHandle { cache }
    }

    /// The cache's name: the attribute's `name`, or the function's path.
    pub fn name(&self) -> &str {
        self.cache.name()
    }

    /// Where the entries live: `"memory"` or `"redis"`.
    pub fn backend(&self) -> &'static str {
        self.cache.backend()
    }

    /// A snapshot of the cache's counters.
    pub fn stats(&self) -> Stats {
        self.cache.stats()
    }

    /// Removes every entry. Loads in flight when it runs do not write their results back.
    pub fn clear(&self) {
        self.cache.clear();
    }

    /// The number of entries held in process, fresh or expired (expired entries are replaced
    /// on their next miss or evicted when room is needed).
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// Whether the cache holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for CacheHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheHandle")
            .field("name", &self.name())
            .field("backend", &self.backend())
            .field("len", &self.len())
            .field("stats", &self.stats())
            .finish()
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
