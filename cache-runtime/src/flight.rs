//! The miss path: per-key single-flight loads, as sync and async twins.
//!
//! With `lock = "local"` the first caller that misses a key puts a placeholder in the store
//! (quick_cache's `entry` / `entry_async`) and runs the body; later callers of that key wait
//! on the placeholder and take the value when it is inserted. If the loader returns an error,
//! panics, or its future is dropped, the placeholder guard is dropped without a value and
//! quick_cache hands it to one waiter, which loads next; the others keep waiting. A caller
//! that has waited `lock_timeout` loads by itself. With `lock = "none"` every miss loads.
//!
//! An invalidation during a load keeps its result out of the cache. A load that holds a
//! placeholder is fenced by the placeholder itself: `remove` (invalidation) and `clear` take
//! it out of the store, and the guard's insert then fails (quick_cache's documented behaviour,
//! held by `tests/invalidate.rs`). Loads without one (`lock = "none"`, a waiter that gave up,
//! `f_refresh`) take a fence ticket before the body runs (see `fence.rs`).

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::task::Poll;
use std::time::Duration;

use quick_cache::sync::{EntryAction, EntryResult};

use crate::cache::Cache;
use crate::clock;
use crate::entry::Entry;
use crate::function::Function;
use crate::policy::Lock;
use crate::reentry::Mark;
use crate::shape::Shape;
use crate::stats::{Counter, Counters};

/// Keeps an entry that is still fresh (taking a copy), or swaps an expired one for a guard.
fn fresh_or_guard<V: Clone>(entry: &Entry<V>, now_ms: u64) -> EntryAction<Entry<V>> {
    if entry.is_fresh(now_ms) {
        EntryAction::Retain(entry.clone())
    } else {
        EntryAction::ReplaceWithGuard
    }
}

/// Counts a load that panicked (dropped during unwinding before the body returned).
pub(crate) struct PanicCounter<'a> {
    stats: &'a Counters,
    returned: bool,
}

impl<'a> PanicCounter<'a> {
    pub(crate) fn new(stats: &'a Counters) -> Self {
        PanicCounter {
            stats,
            returned: false,
        }
    }

    /// The body returned `result` (it did not panic).
    pub(crate) fn returned<R>(mut self, result: R) -> R {
        self.returned = true;
        result
    }
}

impl Drop for PanicCounter<'_> {
    fn drop(&mut self) {
        if !self.returned && std::thread::panicking() {
            self.stats.add(Counter::LoadError);
        }
    }
}

/// Polls `fut` for at most `limit`; `None` if the time ran out first. The timer is armed only
/// if `fut` does not finish on its first poll, so an uncontended miss starts no timer.
pub(crate) async fn within<F: Future>(limit: Duration, fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    let mut timer: Option<futures_timer::Delay> = None;
    poll_fn(|cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        let timer = timer.get_or_insert_with(|| futures_timer::Delay::new(limit));
        match Pin::new(timer).poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

impl<F: Function> Cache<F> {
    fn run(&self, mark: Mark, body: impl FnOnce() -> F::Output) -> F::Output {
        self.stats.add(Counter::Load);
        let counter = PanicCounter::new(&self.stats);
        counter.returned(mark.run(body))
    }

    async fn run_async(&self, mark: Mark, body: impl Future<Output = F::Output>) -> F::Output {
        self.stats.add(Counter::Load);
        let counter = PanicCounter::new(&self.stats);
        counter.returned(mark.run_async(body).await)
    }

    /// The miss path of a sync cached function: load `key` with `body` once per key, or wait
    /// for the load already running.
    pub fn load(&self, key: F::Key, body: impl FnOnce() -> F::Output) -> F::Output {
        self.stats.add(Counter::Miss);
        let mark = Mark::new(self, &key);
        if mark.is_running() {
            // This thread is loading this key: waiting for it would wait for ourselves.
            return self.run(mark, body);
        }
        if self.policy.lock == Lock::None {
            return self.refresh(key, body);
        }
        let now = clock::coarse_ms();
        let timeout = Some(self.policy.lock_timeout);
        match self
            .store
            .entry(&key, timeout, |_, e| fresh_or_guard(e, now))
        {
            EntryResult::Vacant(guard) | EntryResult::Replaced(guard, _) => {
                let result = self.run(mark, body);
                self.settle(None, &result, |entry| {
                    // Err: the placeholder was removed (an invalidation or `clear`).
                    let _ = guard.insert(entry);
                });
                result
            }
            EntryResult::Retained(entry) => match F::Shape::from_slot(entry.slot) {
                Some(result) => {
                    self.stats.add(Counter::Wait);
                    result
                }
                None => self.refresh(key, body),
            },
            EntryResult::Timeout => {
                self.stats.add(Counter::Wait);
                self.refresh(key, body)
            }
            // Never asked for: the callback does not return `EntryAction::Remove`.
            EntryResult::Removed(..) => self.refresh(key, body),
        }
    }

    /// The miss path of an async cached function; the twin of [`Cache::load`].
    pub async fn load_async(
        &self,
        key: F::Key,
        body: impl Future<Output = F::Output>,
    ) -> F::Output {
        self.stats.add(Counter::Miss);
        let mark = Mark::new(self, &key);
        if mark.is_running() {
            // This task is loading this key: waiting for it would wait for ourselves.
            return self.run_async(mark, body).await;
        }
        if self.policy.lock == Lock::None {
            return self.refresh_async(key, body).await;
        }
        let now = clock::coarse_ms();
        let found = self.store.entry_async(&key, |_, e| fresh_or_guard(e, now));
        match within(self.policy.lock_timeout, found).await {
            Some(EntryResult::Vacant(guard) | EntryResult::Replaced(guard, _)) => {
                let result = self.run_async(mark, body).await;
                self.settle(None, &result, |entry| {
                    let _ = guard.insert(entry);
                });
                result
            }
            Some(EntryResult::Retained(entry)) => match F::Shape::from_slot(entry.slot) {
                Some(result) => {
                    self.stats.add(Counter::Wait);
                    result
                }
                None => self.refresh_async(key, body).await,
            },
            None | Some(EntryResult::Timeout) => {
                self.stats.add(Counter::Wait);
                self.refresh_async(key, body).await
            }
            Some(EntryResult::Removed(..)) => self.refresh_async(key, body).await,
        }
    }

    /// Runs `body` now and stores its result (write-through), fenced like every load.
    pub fn refresh(&self, key: F::Key, body: impl FnOnce() -> F::Output) -> F::Output {
        let ticket = self.ticket(&key);
        let result = self.run(Mark::new(self, &key), body);
        self.settle(Some(ticket), &result, |entry| self.store.insert(key, entry));
        result
    }

    /// The async twin of [`Cache::refresh`].
    pub async fn refresh_async(
        &self,
        key: F::Key,
        body: impl Future<Output = F::Output>,
    ) -> F::Output {
        let ticket = self.ticket(&key);
        let result = self.run_async(Mark::new(self, &key), body).await;
        self.settle(Some(ticket), &result, |entry| self.store.insert(key, entry));
        result
    }
}
