//! [`CacheHandle`]: a cache without its types, as `f_cache()` and [`caches`](crate::caches)
//! return it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::figures::Figures;
use crate::invalidation::Invalidation;

use crate::stats::Stats;
use crate::store::error::{SharedMemory, StoreError};

/// What [`CacheHandle`] needs of a cache, without its key and value types.
pub(crate) trait Erased: Send + Sync {
    fn name(&self) -> &str;
    fn backend(&self) -> &'static str;
    fn stats(&self) -> Stats;
    fn figures(&self) -> Figures;
    fn clear(&'static self) -> Invalidation;
    fn clear_async(&'static self) -> Pin<Box<dyn Future<Output = Invalidation> + Send>>;
    fn len(&self) -> usize;
    fn breaker(&self) -> Option<BreakerState>;
    fn shared_memory(&'static self, sample: usize) -> Option<Result<SharedMemory, StoreError>>;
    fn shared_memory_async(&'static self, sample: usize) -> Sizing;
}

/// What [`Erased::shared_memory_async`] answers.
pub(crate) type Sizing =
    Pin<Box<dyn Future<Output = Option<Result<SharedMemory, StoreError>>> + Send>>;

/// The state of the circuit breaker in front of a cache's Redis, from
/// [`CacheHandle::breaker`]. One breaker guards the process's Redis connection, so every
/// Redis-backed cache reports the same state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BreakerState {
    /// Calls use Redis.
    Closed,
    /// Calls skip Redis and are answered through the in-process fallback: Redis failed
    /// `breaker_threshold` times in a row (one call per `breaker_cooldown` probes it), or the
    /// settings name no usable Redis.
    Open,
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
/// assert_eq!(cache.hit_ratio(), Some(0.5));
/// assert_eq!((cache.backend(), cache.len(), cache.breaker()), ("memory", 1, None));
/// assert!(cache.clear().is_done());
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

    /// Where the entries live: `"memory"`, `"redis"` or `"tiered"`.
    pub fn backend(&self) -> &'static str {
        self.cache.backend()
    }

    /// A snapshot of the cache's counters, with its size.
    pub fn stats(&self) -> Stats {
        self.cache.stats()
    }

    /// What [`crate::report`] reads besides the stats.
    pub(crate) fn figures(&self) -> Figures {
        self.cache.figures()
    }

    /// The share of calls answered from the cache, `None` before the first call: see
    /// [`Stats::hit_ratio`].
    pub fn hit_ratio(&self) -> Option<f64> {
        self.stats().hit_ratio()
    }

    /// The circuit breaker in front of the cache's Redis; `None` for `"memory"`, which has
    /// none.
    pub fn breaker(&self) -> Option<BreakerState> {
        self.cache.breaker()
    }

    /// Removes every entry. Loads in flight when it runs do not write their results back.
    ///
    /// On Redis this also deletes the cache's keys and leases there (a `SCAN` of the cache's
    /// key pattern, then `UNLINK`), blocking the calling thread; if Redis cannot be reached, the
    /// clear is kept and replayed before this process uses Redis again, and the answer is
    /// [`Invalidation::Pending`].
    pub fn clear(&self) -> Invalidation {
        self.cache.clear()
    }

    /// The async twin of [`clear`](CacheHandle::clear): on Redis the scan runs without
    /// blocking the caller's thread (on the library's I/O runtime, so any executor works).
    pub fn clear_async(&self) -> impl Future<Output = Invalidation> + Send + 'static {
        self.cache.clear_async()
    }

    /// The number of entries this process holds, fresh or expired (expired entries are
    /// replaced on their next miss or evicted when room is needed). Per backend:
    ///
    /// - `"memory"`: the entries of the cache.
    /// - `"redis"`: the entries of this process's outage fallback: copies of what this process
    ///   read from or wrote to Redis in the last `fallback_ttl` (bounded by `max_entries`),
    ///   plus what it loaded while Redis was unavailable. It is **not** the number of keys in
    ///   Redis, which other processes share (counting those would take a `SCAN` of the
    ///   keyspace); it is `0` before the first call.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// An estimate of what the cache's entries take in its shared store, made now: on Redis,
    /// its value keys counted with `SCAN` (never `KEYS`; a walk of the whole keyspace, 500
    /// keys a step) and `MEMORY USAGE` of the first `sample` of them (see [`SharedMemory`]).
    /// Blocks the calling thread for the walk. `None` for a cache without a shared store
    /// (`"memory"`); an error if the store could not be reached. Counting what this process
    /// wrote costs nothing: [`Stats::bytes_written`].
    ///
    /// ```no_run
    /// # #[cfg(feature = "redis")] {
    /// use cache_runtime::cached;
    ///
    /// #[cached(ttl = 60, backend = "redis")]
    /// fn page(id: u64) -> String {
    ///     format!("page {id}")
    /// }
    ///
    /// page(1);
    /// if let Some(Ok(used)) = page_cache().shared_memory(100) {
    ///     assert!(used.sampled <= used.keys.min(100));
    ///     let _about = used.estimated_bytes; // e.g. a gauge of yours
    /// }
    /// # }
    /// ```
    pub fn shared_memory(&self, sample: usize) -> Option<Result<SharedMemory, StoreError>> {
        self.cache.shared_memory(sample)
    }

    /// The async twin of [`shared_memory`](CacheHandle::shared_memory).
    pub fn shared_memory_async(
        &self,
        sample: usize,
    ) -> impl Future<Output = Option<Result<SharedMemory, StoreError>>> + Send + 'static {
        self.cache.shared_memory_async(sample)
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
            .field("breaker", &self.breaker())
            .field("stats", &self.stats())
            .finish()
    }
}
