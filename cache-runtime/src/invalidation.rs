//! [`Invalidation`]: what `f_invalidate` and `clear()` report.

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
