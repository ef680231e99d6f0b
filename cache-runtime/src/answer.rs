//! `f_entry`: a call's result with what an HTTP handler needs to tell clients how long they may
//! keep it (`Cache-Control`, `Age`, `ETag`).
//!
//! The hit path of `f_entry` is its own (`Engine::get_entry`); `f`'s hit path does not pay for
//! it. On a miss, the engine notes how it answered (a hit or stale entry read from Redis, a
//! wait, a load, a kept value after a failure) in a thread-local slot that only `f_entry`'s
//! calls turn on; while a body runs, noting is off, so the calls the body makes do not speak
//! for the outer one. An async call is noted around each poll of it, on whatever thread polls.

use std::cell::Cell;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use crate::clock;
use crate::entry::{Entry, Slot, Times};
use crate::stats::Counter;

/// How a call of `f_entry` was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CacheStatus {
    /// From a fresh entry.
    Hit,
    /// From a fresh cached null (`None`, `Ok(None)`).
    NullHit,
    /// From an expired entry: within `stale` (stale-while-revalidate, one revalidation runs),
    /// or within `stale_if_error` in place of a load that failed (fail-safe).
    Stale,
    /// By a load: this call's, or another caller's it waited for. Also an error (not cached).
    Miss,
}

/// The result of a `#[cached]` function with how it was answered, from `f_entry`.
///
/// ```
/// use cache_runtime::{CacheStatus, cached};
///
/// #[cached(ttl = 60)]
/// fn price(sku: u32) -> u64 {
///     u64::from(sku) * 100
/// }
///
/// let first = price_entry(7);
/// assert_eq!((first.status(), *first.value()), (CacheStatus::Miss, 700));
/// let again = price_entry(7);
/// assert_eq!(again.status(), CacheStatus::Hit);
/// // Fresh for the rest of its ttl (60 s at most: jitter only shortens it, by up to 10% by
/// // default).
/// assert!(again.fresh_for().as_secs() <= 60);
/// // The same stored entry, the same version.
/// assert_eq!(again.version(), first.version());
/// assert_eq!(again.into_inner(), 700);
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct Cached<R> {
    value: R,
    status: CacheStatus,
    age: Duration,
    fresh_for: Duration,
    lifetime: Duration,
    stale_while_revalidate: Duration,
    stale_if_error: Duration,
    version: Option<u64>,
    /// The entry's rendered tags.
    tags: Vec<String>,
    /// The name of the cache that answered.
    cache: Option<&'static str>,
    /// This call's own load failed (a kept value may have answered): `f_warm`'s count.
    pub(crate) load_failed: bool,
}

impl<R> Cached<R> {
    /// How the call was answered.
    pub fn status(&self) -> CacheStatus {
        self.status
    }

    /// How long ago the answer was produced by its load (an HTTP `Age`); zero for this call's
    /// own load, or when no entry answers (an error).
    pub fn age(&self) -> Duration {
        self.age
    }

    /// How long the entry is fresh in all, from its load to its expiry (its jittered ttl):
    /// an HTTP `max-age` to send *with* [`age`](Cached::age), since an HTTP cache counts a
    /// response fresh while `max-age > Age` (RFC 9111 §4.2). Zero when nothing was stored.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// How much longer the answer is fresh: `lifetime() − age()`, zero once it has expired (a
    /// `Stale` answer) and when nothing was stored (an error, or a null while null caching is
    /// off). For a `tiered` L1 copy, at most its life in the L1. As an HTTP `max-age`, send it
    /// without `Age`.
    pub fn fresh_for(&self) -> Duration {
        self.fresh_for
    }

    /// The function's `stale` window (an HTTP `stale-while-revalidate`): how long after
    /// expiring an entry is still served while one revalidation runs; zero without `stale`.
    pub fn stale_while_revalidate(&self) -> Duration {
        self.stale_while_revalidate
    }

    /// The function's `stale_if_error` window (an HTTP `stale-if-error`, RFC 5861 §4): how
    /// long after expiring an entry still answers in place of a load that fails; zero without
    /// `stale_if_error`.
    pub fn stale_if_error(&self) -> Duration {
        self.stale_if_error
    }

    /// The entry's tags, rendered from the call's arguments (`tags = [..]`; a
    /// [`Cache`](crate::Cache)'s `tags` function): what an HTTP response carries as surrogate
    /// keys, so that `invalidate_tag` can purge it at the edge too. Empty without tags.
    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// The name of the cache that answered (its name in [`caches`](crate::caches), in
    /// metrics and in invalidation hooks): an HTTP surrogate key that `clear` and
    /// `f_invalidate` purge.
    pub fn cache_name(&self) -> &str {
        self.cache.unwrap_or_default()
    }

    /// The same answer, from the cache named `name`.
    pub(crate) fn of_cache(mut self, name: &'static str) -> Self {
        self.cache = Some(name);
        self
    }

    /// The same answer, reporting `tags` as its entry's tags (the hit path renders them only
    /// for `f_entry`).
    pub(crate) fn tagged(mut self, tags: Vec<String>) -> Self {
        self.tags = tags;
        self
    }

    /// Names the stored entry that answered: another value of the key, or the same value
    /// loaded again, has another version (an HTTP `ETag` is made from the content instead, by
    /// [`http::CacheHeaders`](crate::http::CacheHeaders), so a reload of the same content keeps
    /// it). On Redis it is a hash of the entry's
    /// bytes, the same in every process that reads it; in process (`memory`, and the copy a
    /// `tiered` process keeps of its own load) it is drawn at random when the entry is stored.
    /// `None` when no stored entry answers (an error; a null while null caching is off).
    pub fn version(&self) -> Option<u64> {
        self.version
    }

    /// The result.
    pub fn value(&self) -> &R {
        &self.value
    }

    /// The result, owned.
    pub fn into_inner(self) -> R {
        self.value
    }

    /// The same answer with its value mapped by `f` (a [`Cache`](crate::Cache)'s own value
    /// out of the engine's).
    pub(crate) fn map<U>(self, f: impl FnOnce(R) -> U) -> Cached<U> {
        Cached {
            value: f(self.value),
            status: self.status,
            age: self.age,
            fresh_for: self.fresh_for,
            lifetime: self.lifetime,
            stale_while_revalidate: self.stale_while_revalidate,
            stale_if_error: self.stale_if_error,
            version: self.version,
            tags: self.tags,
            cache: self.cache,
            load_failed: self.load_failed,
        }
    }

    /// An answer of `value` by `noted`, with the function's stale windows: `stale` and
    /// `stale_if_error`.
    pub(crate) fn new(value: R, noted: Option<Noted>, windows: (Duration, Duration)) -> Self {
        let (stale, stale_if_error) = windows;
        let noted = noted.unwrap_or(Noted {
            status: CacheStatus::Miss,
            times: None,
            load_failed: false,
        });
        let now = clock::now_ms();
        let (age, fresh_for, lifetime, version) = match noted.times {
            Some(t) => (
                now.saturating_sub(t.written_ms),
                t.fresh_until_ms.saturating_sub(now),
                t.fresh_until_ms.saturating_sub(t.written_ms),
                (t.version != 0).then_some(t.version),
            ),
            None => (0, 0, 0, None),
        };
        Cached {
            value,
            status: noted.status,
            age: Duration::from_millis(age),
            fresh_for: Duration::from_millis(fresh_for),
            lifetime: Duration::from_millis(lifetime),
            stale_while_revalidate: stale,
            stale_if_error,
            version,
            tags: Vec::new(),
            cache: None,
            load_failed: noted.load_failed,
        }
    }
}

/// `f_entry`'s hit `hit`, reporting the call's rendered `tags` (emitted by `#[cached]` with
/// `tags`).
pub fn tagged<R>(hit: Cached<R>, tags: Vec<String>) -> Cached<R> {
    hit.tagged(tags)
}

/// How the engine answered a call: its status and the times of the entry that answered.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Noted {
    status: CacheStatus,
    times: Option<Times>,
    /// Kept by later notes: a kept value answering in place of a failed load is `Stale`, and
    /// still a failure for `f_warm`.
    load_failed: bool,
}

impl Noted {
    pub(crate) fn new(status: CacheStatus, times: Option<Times>) -> Self {
        Noted {
            status,
            times,
            load_failed: false,
        }
    }
}

impl Noted {
    /// The same note, without its entry's times if the answer came from a load (`Miss`) whose
    /// stored entry `kept(version)` says is no longer there: an answer nothing keeps.
    pub(crate) fn unless_kept(mut self, kept: impl FnOnce(u64) -> bool) -> Noted {
        if self.status == CacheStatus::Miss
            && let Some(times) = self.times
            && times.version != 0
            && !kept(times.version)
        {
            self.times = None;
        }
        self
    }
}

thread_local! {
    /// Whether the call running on this thread is an `f_entry` call.
    static WANTED: Cell<bool> = const { Cell::new(false) };
    /// What the engine noted about its answer.
    static NOTED: Cell<Option<Noted>> = const { Cell::new(None) };
}

/// Notes that the call is answered with `status`, by the entry of `times` (`None`: nothing
/// stored answers). Nothing unless an `f_entry` call is running.
pub(crate) fn note(status: CacheStatus, times: Option<&Times>) {
    if WANTED.get() {
        let load_failed = NOTED.get().is_some_and(|n| n.load_failed);
        NOTED.set(Some(Noted {
            status,
            times: times.copied(),
            load_failed,
        }));
    }
}

/// Notes that this call's own load failed (an error or a panic).
pub(crate) fn note_load_failed() {
    if WANTED.get() {
        NOTED.set(Some(Noted {
            status: CacheStatus::Miss,
            times: None,
            load_failed: true,
        }));
    }
}

/// Notes an answer counted as `counter` (a hit, null hit or stale answer) by the entry of
/// `times`.
pub(crate) fn note_counted(counter: Counter, times: &Times) {
    let status = match counter {
        Counter::Hit => CacheStatus::Hit,
        Counter::NullHit => CacheStatus::NullHit,
        Counter::StaleHit | Counter::StaleIfErrorHit => CacheStatus::Stale,
        _ => CacheStatus::Miss,
    };
    note(status, Some(times));
}

/// Notes an answer by a kept entry: a hit while it is fresh, else stale.
pub(crate) fn note_held<V>(entry: &Entry<V>) {
    let status = match (entry.is_fresh(), &entry.slot) {
        (true, Slot::Value(_)) => CacheStatus::Hit,
        (true, Slot::Null) => CacheStatus::NullHit,
        (false, _) => CacheStatus::Stale,
    };
    note(status, Some(&entry.times));
}

/// The noting state of the thread, restored when dropped (also when the call panics).
struct Saved(bool, Option<Noted>);

impl Saved {
    fn set(wanted: bool) -> Self {
        Saved(WANTED.replace(wanted), NOTED.take())
    }
}

impl Drop for Saved {
    fn drop(&mut self) {
        WANTED.set(self.0);
        NOTED.set(self.1.take());
    }
}

/// Runs `call` (an `f_entry` miss) with its answer noted.
pub(crate) fn noting<R>(call: impl FnOnce() -> R) -> (R, Option<Noted>) {
    let _saved = Saved::set(true);
    let result = call();
    (result, NOTED.take())
}

/// The async twin of [`noting`]: noted around each poll, kept across polls.
pub(crate) async fn noting_async<F: Future>(call: F) -> (F::Output, Option<Noted>) {
    let mut call = pin!(call);
    let mut noted = None;
    poll_fn(|cx| {
        let _saved = Saved::set(true);
        let polled = call.as_mut().poll(cx);
        if let Some(now) = NOTED.take() {
            noted = Some(now);
        }
        match polled {
            Poll::Ready(result) => Poll::Ready((result, noted)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Runs a body with noting off: its own cached calls do not answer for the outer call.
pub(crate) fn quiet<R>(body: impl FnOnce() -> R) -> R {
    if !WANTED.get() {
        return body();
    }
    let _saved = Saved::set(false);
    body()
}

/// The async twin of [`quiet`], around each poll.
pub(crate) async fn quiet_async<F: Future>(body: F) -> F::Output {
    let mut body = pin!(body);
    poll_fn(|cx| {
        if !WANTED.get() {
            return body.as_mut().poll(cx);
        }
        let _saved = Saved::set(false);
        body.as_mut().poll(cx)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_noting_calls_note_and_bodies_are_quiet() {
        let times = Times::FOREVER;
        note(CacheStatus::Hit, Some(&times));
        assert!(NOTED.take().is_none(), "not an f_entry call");
        let ((), noted) = noting(|| {
            note(CacheStatus::Stale, Some(&times));
            quiet(|| note(CacheStatus::Hit, None));
        });
        let noted = noted.map(|n| n.status);
        assert_eq!(noted, Some(CacheStatus::Stale));
        assert!(!WANTED.get(), "restored");
    }
}
