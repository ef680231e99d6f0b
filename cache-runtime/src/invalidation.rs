//! [`Invalidation`]: what `f_invalidate` and `clear()` report; and the hooks told of every
//! invalidation ([`on_invalidate`]), for the caches in front of this one.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

/// Whether an invalidation (`f_invalidate`, [`CacheHandle::clear`](crate::CacheHandle::clear))
/// reached every store of the cache, or waits to be replayed.
///
/// In process it is always [`Done`](Invalidation::Done). On Redis it is
/// [`Pending`](Invalidation::Pending) when Redis could not be reached (an outage, the breaker
/// open, or settings that name no usable Redis, when nothing is kept since Redis is never
/// used): the entry is already gone from this process, and the invalidation is kept and
/// replayed before this process reads from Redis again, so this process never serves a value
/// older than it; other processes see it once it is replayed. A caller that must know that
/// every process sees it (after a database write, say) checks
/// [`is_pending`](Invalidation::is_pending) and retries or reports.
///
/// ```
/// use cache_runtime::{Invalidation, cached};
///
/// #[cached(ttl = 60, key = "{id}")]
/// fn price(id: u32) -> u64 {
///     u64::from(id) * 100
/// }
///
/// assert_eq!(price(7), 700);
/// assert_eq!(price_invalidate(7), Invalidation::Done);
/// ```
#[must_use = "an invalidation may be pending (Redis unreachable): check it, or write `let _ =`"]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Invalidation {
    /// Removed from every store of the cache.
    Done,
    /// Removed from this process; the backend (Redis) could not be reached, so it is kept
    /// and replayed when it answers again.
    Pending,
}

impl Invalidation {
    /// Whether every store of the cache was reached.
    pub fn is_done(self) -> bool {
        self == Invalidation::Done
    }

    /// Whether the invalidation waits to be replayed on the backend.
    pub fn is_pending(self) -> bool {
        self == Invalidation::Pending
    }
}

/// What was invalidated, as [`on_invalidate`]'s hooks are told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Invalidated<'a> {
    /// [`invalidate_tag`](crate::invalidate_tag) or [`invalidate_tags`](crate::invalidate_tags):
    /// the rendered tags, as given.
    Tags(&'a [String]),
    /// One key of the cache named `cache` (`f_invalidate`,
    /// [`Cache::invalidate`](crate::Cache::invalidate)).
    #[non_exhaustive]
    Key {
        /// The cache's name.
        cache: &'a str,
    },
    /// Every entry of the cache named `cache` ([`CacheHandle::clear`](crate::CacheHandle::clear),
    /// [`clear_all`](crate::clear_all)).
    #[non_exhaustive]
    Cache {
        /// The cache's name.
        cache: &'a str,
    },
}

/// What is told of every invalidation this process makes: the seam between the application
/// cache and the caches in front of it (an HTTP cache, a CDN), installed by [`on_invalidate`].
///
/// A hook runs on the invalidating thread after the invalidation is done in this process,
/// whatever the shared store answered (a [`Pending`](Invalidation::Pending) invalidation is
/// already in force here, so the responses this process makes from now on are new). It must
/// be quick and must not block: hand the work to a queue (as `http::VarnishPurger` does). A
/// panic in a hook is caught and logged; it never fails the invalidation.
///
/// Any `Fn(Invalidated<'_>) + Send + Sync + 'static` is a hook; a closure needs its parameter's
/// type written out (`|what: Invalidated<'_>| …`), or Rust infers one lifetime and refuses it.
/// `Key` and `Cache` may gain fields: match them with `..` (`Invalidated::Key { cache, .. }`).
pub trait InvalidationHook: Send + Sync + 'static {
    /// Told of one invalidation.
    fn invalidated(&self, what: Invalidated<'_>);
}

impl<F: Fn(Invalidated<'_>) + Send + Sync + 'static> InvalidationHook for F {
    fn invalidated(&self, what: Invalidated<'_>) {
        self(what);
    }
}

/// The hooks installed, with their ids.
static HOOKS: RwLock<Vec<(u64, Arc<dyn InvalidationHook>)>> = RwLock::new(Vec::new());
/// Whether a hook is installed: an invalidation without hooks takes no lock.
static ANY_HOOK: AtomicBool = AtomicBool::new(false);
static NEXT_HOOK: AtomicU64 = AtomicU64::new(1);

/// Installs `hook`, told of every invalidation this process makes from now on: tags, keys and
/// clears of every cache. Returns its handle, to remove it ([`Hook::remove`]); dropping the
/// handle keeps the hook.
///
/// ```
/// use std::sync::Mutex;
/// use cache_runtime::{Invalidated, invalidate_tag, on_invalidate};
///
/// static TOLD: Mutex<Vec<String>> = Mutex::new(Vec::new());
///
/// let hook = on_invalidate(|what: Invalidated<'_>| {
///     if let Invalidated::Tags(tags) = what {
///         TOLD.lock().unwrap().extend(tags.iter().cloned());
///     }
/// });
/// let _ = invalidate_tag("hook-doc:1");
/// assert!(TOLD.lock().unwrap().contains(&"hook-doc:1".to_owned()));
/// hook.remove();
/// ```
pub fn on_invalidate(hook: impl InvalidationHook) -> Hook {
    let id = NEXT_HOOK.fetch_add(1, Ordering::Relaxed);
    let mut hooks = HOOKS.write().unwrap_or_else(PoisonError::into_inner);
    hooks.push((id, Arc::new(hook)));
    ANY_HOOK.store(true, Ordering::SeqCst);
    Hook(id)
}

/// An installed [`InvalidationHook`], from [`on_invalidate`].
#[derive(Debug)]
#[must_use = "dropping the handle keeps the hook; call `remove` to remove it"]
pub struct Hook(u64);

impl Hook {
    /// Removes the hook: it is not told of invalidations that start after this call.
    pub fn remove(self) {
        let mut hooks = HOOKS.write().unwrap_or_else(PoisonError::into_inner);
        hooks.retain(|(id, _)| *id != self.0);
        ANY_HOOK.store(!hooks.is_empty(), Ordering::SeqCst);
    }
}

/// Tells every hook of `what`. A panicking hook is logged and skipped.
pub(crate) fn tell(what: Invalidated<'_>) {
    if !ANY_HOOK.load(Ordering::SeqCst) {
        return;
    }
    let hooks: Vec<Arc<dyn InvalidationHook>> = HOOKS
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|(_, hook)| Arc::clone(hook))
        .collect();
    for hook in hooks {
        let told =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook.invalidated(what)));
        if told.is_err() {
            tracing::error!(
                ?what,
                "cache-runtime: an invalidation hook panicked; skipped"
            );
        }
    }
}
