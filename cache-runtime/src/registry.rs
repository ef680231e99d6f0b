//! The process-wide registry of caches: every cache registers its handle when it is made (at
//! the first call of its function, or of one of its companions), and [`caches`] lists them.
//! It is the seam for whatever acts on all caches at once (metrics export, tag invalidation,
//! `clear_all`).

use std::sync::{Mutex, PoisonError};

use crate::handle::CacheHandle;
use crate::invalidation::Invalidation;

static CACHES: Mutex<Vec<CacheHandle>> = Mutex::new(Vec::new());

/// Adds a cache that was just made.
pub(crate) fn register(handle: CacheHandle) {
    #[cfg(feature = "metrics")]
    crate::metrics::start();
    CACHES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(handle);
}

/// Every cache this process has used so far, in the order they were made: name, backend and
/// stats of each.
///
/// A cached function's cache is made at its first call (or the first call of one of its
/// companions), so a function never called is not listed. In a generic `impl`, each type the
/// method was called for has a cache of its own.
///
/// ```
/// use cache_runtime::cached;
///
/// #[cached(name = "registry-doc")]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// square(3);
/// let mine = cache_runtime::caches()
///     .into_iter()
///     .find(|c| c.name() == "registry-doc")
///     .expect("registered at the first call");
/// assert_eq!(mine.backend(), "memory");
/// assert_eq!(mine.stats().misses, 1);
/// ```
pub fn caches() -> Vec<CacheHandle> {
    CACHES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// Clears every cache this process has made so far ([`CacheHandle::clear`] of each of
/// [`caches`]): after a deploy that changes what functions return, or in tests. Loads in flight
/// do not write their results back. `Pending` if Redis could not be reached for one of them
/// (its clear is kept and replayed, as `clear` does).
///
/// A cache this process has not made yet (its function never called here) is not cleared: on
/// Redis its keys stay; `f_cache().clear()` makes and clears one cache.
///
/// ```no_run
/// assert!(cache_runtime::clear_all().is_done());
/// ```
pub fn clear_all() -> Invalidation {
    let mut all = Invalidation::Done;
    for cache in caches() {
        if cache.clear().is_pending() {
            all = Invalidation::Pending;
        }
    }
    all
}

/// The async twin of [`clear_all`]: on Redis the scans run without blocking the caller's
/// thread.
pub async fn clear_all_async() -> Invalidation {
    let mut all = Invalidation::Done;
    for cache in caches() {
        if cache.clear_async().await.is_pending() {
            all = Invalidation::Pending;
        }
    }
    all
}
