//! `f_warm`: filling a cache for many keys at once, after a deploy or a restart.
//!
//! Each item is one call of `f_entry`'s path: a key already fresh (in process, or in Redis
//! because another instance warmed it) is skipped without running the body; the others load,
//! single-flight like any call, so two instances warming at once load each key once. Bounded
//! concurrency: [`set_warm_concurrency`] workers (threads for a sync function, futures of the
//! calling task for an async one) pull the items in turn. Expiries are spread by the
//! function's `jitter` (10% of the ttl by default), so keys warmed together do not expire
//! together.

use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};
use std::task::Poll;
use std::time::Instant;

use crate::body::CatchUnwind;

/// What `f_warm` did, from its return value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Warmed {
    /// Keys whose body ran (or whose load another caller ran while this one waited).
    pub loaded: u64,
    /// Keys already fresh: nothing ran.
    pub skipped: u64,
    /// Keys whose load returned an error or panicked (nothing stored).
    pub failed: u64,
}

/// What warming one key did.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Warm {
    Loaded,
    Skipped,
    Failed,
}

static CONCURRENCY: AtomicUsize = AtomicUsize::new(8);

/// Sets how many keys `f_warm` loads at once (default 8; at least 1): threads for a sync
/// function, concurrent futures of the calling task for an async one.
///
/// ```
/// cache_runtime::set_warm_concurrency(16);
/// ```
pub fn set_warm_concurrency(workers: usize) {
    CONCURRENCY.store(workers.max(1), Relaxed);
}

/// Counts and reports the outcomes of one warming.
struct Tally<'a> {
    cache: &'a str,
    loaded: AtomicU64,
    skipped: AtomicU64,
    failed: AtomicU64,
    started: Instant,
}

/// Progress is logged (debug) every this many keys.
const PROGRESS_EVERY: u64 = 1_000;

impl<'a> Tally<'a> {
    fn new(cache: &'a str) -> Self {
        tracing::debug!(cache = %cache, "cache-runtime: warming");
        Tally {
            cache,
            loaded: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    fn add(&self, outcome: Warm) {
        let counter = match outcome {
            Warm::Loaded => &self.loaded,
            Warm::Skipped => &self.skipped,
            Warm::Failed => &self.failed,
        };
        counter.fetch_add(1, Relaxed);
        let done =
            self.loaded.load(Relaxed) + self.skipped.load(Relaxed) + self.failed.load(Relaxed);
        if done.is_multiple_of(PROGRESS_EVERY) {
            tracing::debug!(cache = %self.cache, done, "cache-runtime: warming");
        }
    }

    fn finish(self) -> Warmed {
        let warmed = Warmed {
            loaded: self.loaded.into_inner(),
            skipped: self.skipped.into_inner(),
            failed: self.failed.into_inner(),
        };
        tracing::debug!(
            cache = %self.cache,
            loaded = warmed.loaded,
            skipped = warmed.skipped,
            failed = warmed.failed,
            duration_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "cache-runtime: warmed"
        );
        warmed
    }
}

/// Warms the cache named `cache`: `one` for each item, on up to [`set_warm_concurrency`]
/// threads.
#[doc(hidden)]
pub fn warm<I>(cache: &str, items: I, one: impl Fn(I::Item) -> Warm + Sync) -> Warmed
where
    I: IntoIterator<IntoIter: Send, Item: Send>,
{
    let tally = Tally::new(cache);
    let items = items.into_iter();
    // No more workers than items, when the iterator knows how many.
    let workers = match items.size_hint() {
        (_, Some(most)) => CONCURRENCY.load(Relaxed).min(most.max(1)),
        _ => CONCURRENCY.load(Relaxed),
    };
    let items = Mutex::new(items);
    let next = || items.lock().unwrap_or_else(PoisonError::into_inner).next();
    let work = || {
        while let Some(item) = next() {
            // A panic in the key's or tags' code is this key's failure, not the warming's.
            let outcome = catch_unwind(AssertUnwindSafe(|| one(item)));
            tally.add(outcome.unwrap_or(Warm::Failed));
        }
    };
    std::thread::scope(|s| {
        for _ in 1..workers {
            // A thread that cannot be made leaves its share to the others.
            if std::thread::Builder::new()
                .name("cache-runtime-warm".into())
                .spawn_scoped(s, work)
                .is_err()
            {
                break;
            }
        }
        work();
    });
    tally.finish()
}

/// The async twin of [`warm`]: up to [`set_warm_concurrency`] calls at once, as futures of
/// the calling task.
#[doc(hidden)]
pub async fn warm_async<I, W>(cache: &str, items: I, one: impl Fn(I::Item) -> W) -> Warmed
where
    I: IntoIterator,
    W: Future<Output = Warm>,
{
    let tally = Tally::new(cache);
    let mut items = items.into_iter();
    let mut running: Vec<Pin<Box<CatchUnwind<W>>>> = Vec::new();
    let workers = CONCURRENCY.load(Relaxed);
    loop {
        while running.len() < workers {
            match items.next() {
                Some(item) => match catch_unwind(AssertUnwindSafe(|| one(item))) {
                    Ok(call) => running.push(Box::pin(CatchUnwind::new(call))),
                    Err(_) => tally.add(Warm::Failed),
                },
                None => break,
            }
        }
        if running.is_empty() {
            break;
        }
        let outcome = poll_fn(|cx| {
            for (i, call) in running.iter_mut().enumerate() {
                if let Poll::Ready(outcome) = call.as_mut().poll(cx) {
                    return Poll::Ready((i, outcome));
                }
            }
            Poll::Pending
        })
        .await;
        let (done, outcome) = outcome;
        drop(running.swap_remove(done));
        tally.add(outcome.unwrap_or(Warm::Failed));
    }
    tally.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_is_warmed_once_across_threads() {
        let seen = Mutex::new(Vec::new());
        let warmed = warm("test", 0..100u32, |i| {
            seen.lock().unwrap_or_else(PoisonError::into_inner).push(i);
            match i % 10 {
                0 => Warm::Failed,
                1..=3 => Warm::Skipped,
                _ => Warm::Loaded,
            }
        });
        assert_eq!((warmed.loaded, warmed.skipped, warmed.failed), (60, 30, 10));
        let mut seen = seen.into_inner().unwrap_or_else(PoisonError::into_inner);
        seen.sort_unstable();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
    }
}
