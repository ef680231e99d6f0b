//! The process-wide registry of caches: every cache registers its handle when it is made (at
//! the first call of its function, or of one of its companions), and [`caches`] lists them.
//! It is the seam for whatever acts on all caches at once (metrics export, `clear_all`), and for
//! what stores tell caches: the L1s listen for their shared store's change feed here
//! ([`changed`]), and `invalidate_tag` reaches every store through the tag sinks (installed by `lib.rs`).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};

use crate::handle::CacheHandle;
use crate::invalidation::Invalidation;

static CACHES: Mutex<Vec<CacheHandle>> = Mutex::new(Vec::new());

/// What a store's change feed reports of one cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change<'a> {
    /// The key the feed names so changed (invalidated or written): its L1 copy is dropped.
    Key(&'a str),
    /// The key was written by this process and holds the entry of this version now: a copy of
    /// that version is kept, any other dropped.
    Written(&'a str, u64),
    /// Every key may have changed (a clear, or the feed lost changes): every copy is dropped.
    All,
}

/// What listens to a store's change feed: an L1.
pub(crate) trait Listener: Send + Sync {
    fn change(&self, change: Change<'_>);
}

/// The L1s of this process: by the feed they listen to (a store's `FEED`), then by cache name.
type Listeners = HashMap<&'static str, HashMap<String, Vec<&'static dyn Listener>>>;

static LISTENERS: Mutex<Option<Listeners>> = Mutex::new(None);

/// Listens to the changes the feed `feed` reports of the cache named `name`.
pub(crate) fn listen(feed: &'static str, name: &str, listener: &'static dyn Listener) {
    let mut all = LISTENERS.lock().unwrap_or_else(PoisonError::into_inner);
    let feeds = all.get_or_insert_with(HashMap::new);
    let caches = feeds.entry(feed).or_default();
    caches.entry(name.to_owned()).or_default().push(listener);
}

/// Hands `change`, reported by the feed `feed`, to the listeners of the cache named `cache`
/// (`None`: of every cache on that feed).
pub(crate) fn changed(feed: &str, cache: Option<&str>, change: Change<'_>) {
    let all = LISTENERS.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(caches) = all.as_ref().and_then(|feeds| feeds.get(feed)) else {
        return;
    };
    match cache {
        Some(name) => caches
            .get(name)
            .into_iter()
            .flatten()
            .for_each(|l| l.change(change)),
        None => caches.values().flatten().for_each(|l| l.change(change)),
    }
}

/// The names of the caches that listen to the feed `feed`.
#[cfg_attr(
    not(feature = "redis"),
    allow(dead_code, reason = "only Redis tracks the keys of caches by name")
)]
pub(crate) fn listening(feed: &str) -> Vec<String> {
    let all = LISTENERS.lock().unwrap_or_else(PoisonError::into_inner);
    all.as_ref()
        .and_then(|feeds| feeds.get(feed))
        .map(|caches| caches.keys().cloned().collect())
        .unwrap_or_default()
}

/// A store that keeps tag versions of its own, told of every `invalidate_tag` (installed in
/// `lib.rs`, whether or not a cache on it was made in this process).
pub(crate) trait TagSink: Sync {
    /// Moves the tags `names` on in the store; `Pending` if it keeps them to replay.
    fn invalidate(&self, names: &[String]) -> Invalidation;

    /// The async twin of `invalidate`.
    fn invalidate_async<'a>(
        &'a self,
        names: &'a [String],
    ) -> Pin<Box<dyn Future<Output = Invalidation> + Send + 'a>>;
}

/// Adds a cache that was just made.
pub(crate) fn register(handle: CacheHandle) {
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
