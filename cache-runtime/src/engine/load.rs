//! The miss path, as sync and async twins: the backend's read, re-entry, single-flight, the
//! lease, the body, the publish and the hand-over to this process's waiters.
//!
//! Single-flight uses placeholders of the local store (quick_cache): the first caller that
//! misses a key gets a guard and leads the load; later callers of the key wait on it and take
//! the leader's result from the placeholder itself. If the leader's load returns an error,
//! panics, or its future is dropped, the guard is dropped without a result and quick_cache
//! hands it to one waiter, which loads next. A caller that has waited `lock_timeout` loads by
//! itself. With `lock = "none"` every miss loads.
//!
//! Fencing against invalidation: a local write through a placeholder guard fails by itself
//! once an invalidation removed the placeholder (quick_cache's documented behaviour, held by
//! `tests/invalidate.rs`); a local write without one (`lock = "none"`, a waiter that gave up,
//! `f_refresh`) is fenced by a ticket (`fence.rs`); a backend's write is fenced by its lease.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::task::Poll;
use std::time::Duration;

use quick_cache::sync::{EntryAction, EntryResult, GuardResult};

use crate::backend::{Backend, Leased, Read, Start};
use crate::entry::{Entry, Slot};
use crate::function::Function;
use crate::policy::Lock;
use crate::reentry::Mark;
use crate::shape::Shape;
use crate::stats::Counter;

use super::Engine;
use super::settle::Settled;

/// Polls `fut` for at most `limit`; `None` if the time ran out first. The timer is armed only
/// if `fut` does not finish on its first poll, so an uncontended miss starts no timer.
async fn within<F: Future>(limit: Duration, fut: F) -> Option<F::Output> {
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

/// The placeholder guard of a load this caller leads.
type Guard<'a, F> = quick_cache::sync::PlaceholderGuard<
    'a,
    <F as crate::function::Types>::Key,
    Entry<<F as crate::function::Types>::Value>,
    quick_cache::UnitWeighter,
    quick_cache::DefaultHashBuilder,
    quick_cache::sync::DefaultLifecycle<
        <F as crate::function::Types>::Key,
        Entry<<F as crate::function::Types>::Value>,
    >,
>;

/// How a caller joined the single-flight of its key.
enum Flight<'a, F: Function> {
    /// It leads the load.
    Lead(Guard<'a, F>),
    /// Another caller's load finished meanwhile: its result.
    Joined(Slot<F::Value>),
    /// It waited `lock_timeout` for another caller's load.
    TimedOut,
}

/// Keeps an entry that is still fresh (taking a copy), or swaps an expired one for a guard.
fn fresh_or_guard<V: Clone>(entry: &Entry<V>) -> EntryAction<Entry<V>> {
    if entry.is_fresh() {
        EntryAction::Retain(entry.clone())
    } else {
        EntryAction::ReplaceWithGuard
    }
}

impl<F: Function, B: Backend<F>> Engine<F, B> {
    /// How the leader of a key starts its lease: after an unusable entry it must overwrite it;
    /// with `lock = "distributed"` it waits for another process's load; else it takes the lease
    /// unless another leader of this process published meanwhile.
    fn leader_start(&self, unusable: bool) -> Start {
        match (unusable, self.policy.lock) {
            (true, _) => Start::Take,
            (false, Lock::Distributed) => Start::Wait,
            (false, Lock::Local | Lock::None) => Start::ReadOrTake,
        }
    }

    /// Joins the single-flight of `key` (sync). On the in-process backend the store holds the
    /// entries, so an expired one is swapped for a guard; elsewhere it holds only hand-overs,
    /// which waiters take from the placeholder.
    fn join(&self, key: &F::Key) -> Flight<'_, F> {
        let timeout = Some(self.policy.lock_timeout);
        if B::LOCAL {
            match self.store.entry(key, timeout, |_, e| fresh_or_guard(e)) {
                EntryResult::Vacant(g) | EntryResult::Replaced(g, _) => Flight::Lead(g),
                EntryResult::Retained(entry) => Flight::Joined(entry.slot),
                EntryResult::Timeout | EntryResult::Removed(..) => Flight::TimedOut,
            }
        } else {
            match self.store.get_value_or_guard(key, timeout) {
                GuardResult::Guard(g) => Flight::Lead(g),
                GuardResult::Value(entry) => Flight::Joined(entry.slot),
                GuardResult::Timeout => Flight::TimedOut,
            }
        }
    }

    /// The async twin of `join`; waits at most `lock_timeout`.
    async fn join_async(&self, key: &F::Key) -> Flight<'_, F> {
        let limit: Duration = self.policy.lock_timeout;
        if B::LOCAL {
            let found = self.store.entry_async(key, |_, e| fresh_or_guard(e));
            match within(limit, found).await {
                Some(EntryResult::Vacant(g) | EntryResult::Replaced(g, _)) => Flight::Lead(g),
                Some(EntryResult::Retained(entry)) => Flight::Joined(entry.slot),
                None | Some(EntryResult::Timeout | EntryResult::Removed(..)) => Flight::TimedOut,
            }
        } else {
            match within(limit, self.store.get_value_or_guard_async(key)).await {
                Some(Err(g)) => Flight::Lead(g),
                Some(Ok(entry)) => Flight::Joined(entry.slot),
                None => Flight::TimedOut,
            }
        }
    }

    /// The read of a backend whose entries live elsewhere: `Ok(hit)`, or `Err(unusable)` for a
    /// miss; `None` when the backend failed (the call goes to the fallback).
    fn remote_hit(&self, read: Read<F::Value>) -> Option<Result<F::Output, bool>> {
        match read {
            Read::Hit(slot) => Some(self.hit(slot).ok_or(true)),
            Read::Miss => Some(Err(false)),
            Read::Unusable => Some(Err(true)),
            Read::Failed => None,
        }
    }

    /// The miss path of a sync cached function: load `key` with `body` once per key, or wait
    /// for the load already running.
    pub fn load(&self, key: B::Key, body: impl FnOnce() -> F::Output) -> F::Output {
        let unusable = match B::LOCAL {
            true => false,
            false => match self.remote_hit(B::read(self, &key)) {
                Some(Ok(hit)) => return hit,
                Some(Err(unusable)) => unusable,
                None => return self.fallback_load(key, body),
            },
        };
        self.stats.add(Counter::Miss);
        let mark = Mark::new(self, B::local(&key));
        if mark.is_running() {
            // This thread is loading this key: waiting for it would wait for ourselves.
            return self.run(mark, body);
        }
        if self.policy.lock == Lock::None {
            return self.lead(&key, None, mark, Start::Take, body);
        }
        match self.join(B::local(&key)) {
            Flight::Lead(guard) => {
                let start = self.leader_start(unusable);
                self.lead(&key, Some(guard), mark, start, body)
            }
            Flight::Joined(slot) => {
                self.stats.add(Counter::Wait);
                match F::Shape::from_slot(slot) {
                    Some(result) => result,
                    None => self.lead(&key, None, mark, Start::Take, body),
                }
            }
            Flight::TimedOut => {
                self.stats.add(Counter::Wait);
                self.lead(&key, None, mark, Start::ReadOrTake, body)
            }
        }
    }

    /// The miss path of an async cached function; the twin of [`Engine::load`].
    pub async fn load_async(
        &self,
        key: B::Key,
        body: impl Future<Output = F::Output>,
    ) -> F::Output {
        let unusable = match B::LOCAL {
            true => false,
            false => match self.remote_hit(B::read_async(self, &key).await) {
                Some(Ok(hit)) => return hit,
                Some(Err(unusable)) => unusable,
                None => return self.fallback_load_async(key, body).await,
            },
        };
        self.stats.add(Counter::Miss);
        let mark = Mark::new(self, B::local(&key));
        if mark.is_running() {
            // This task is loading this key: waiting for it would wait for ourselves.
            return self.run_async(mark, body).await;
        }
        if self.policy.lock == Lock::None {
            return self.lead_async(&key, None, mark, Start::Take, body).await;
        }
        match self.join_async(B::local(&key)).await {
            Flight::Lead(guard) => {
                let start = self.leader_start(unusable);
                self.lead_async(&key, Some(guard), mark, start, body).await
            }
            Flight::Joined(slot) => {
                self.stats.add(Counter::Wait);
                match F::Shape::from_slot(slot) {
                    Some(result) => result,
                    None => self.lead_async(&key, None, mark, Start::Take, body).await,
                }
            }
            Flight::TimedOut => {
                self.stats.add(Counter::Wait);
                self.lead_async(&key, None, mark, Start::ReadOrTake, body)
                    .await
            }
        }
    }

    /// Runs the body now and stores its result (write-through), fenced like every load.
    pub fn refresh(&self, key: B::Key, body: impl FnOnce() -> F::Output) -> F::Output {
        let mark = Mark::new(self, B::local(&key));
        self.lead(&key, None, mark, Start::Take, body)
    }

    /// The async twin of [`Engine::refresh`].
    pub async fn refresh_async(
        &self,
        key: B::Key,
        body: impl Future<Output = F::Output>,
    ) -> F::Output {
        let mark = Mark::new(self, B::local(&key));
        self.lead_async(&key, None, mark, Start::Take, body).await
    }

    /// One load: the lease (or another process's result), the body, the publish, the local
    /// write or hand-over.
    fn lead(
        &self,
        key: &B::Key,
        guard: Option<Guard<'_, F>>,
        mark: Mark,
        start: Start,
        body: impl FnOnce() -> F::Output,
    ) -> F::Output {
        let ticket = (B::LOCAL && guard.is_none()).then(|| self.ticket(B::local(key)));
        let lease = match B::lease(self, key, start) {
            Leased::Lease(lease) => lease,
            Leased::Found(slot) => match self.found(key, guard, slot) {
                Ok(result) => return result,
                Err(guard) => {
                    let result = self.run(mark, body);
                    let settled = self.settle(&result);
                    self.write_local(key, guard, ticket, &settled, true);
                    return result;
                }
            },
        };
        let result = self.run(mark, body);
        let settled = self.settle(&result);
        let valid = match lease {
            Some(lease) => B::publish(self, key, lease, settled.store.clone()),
            None => true,
        };
        self.write_local(key, guard, ticket, &settled, valid);
        result
    }

    /// The async twin of `lead`.
    async fn lead_async(
        &self,
        key: &B::Key,
        guard: Option<Guard<'_, F>>,
        mark: Mark,
        start: Start,
        body: impl Future<Output = F::Output>,
    ) -> F::Output {
        let ticket = (B::LOCAL && guard.is_none()).then(|| self.ticket(B::local(key)));
        let lease = match B::lease_async(self, key, start).await {
            Leased::Lease(lease) => lease,
            Leased::Found(slot) => match self.found(key, guard, slot) {
                Ok(result) => return result,
                Err(guard) => {
                    let result = self.run_async(mark, body).await;
                    let settled = self.settle(&result);
                    self.write_local(key, guard, ticket, &settled, true);
                    return result;
                }
            },
        };
        let result = self.run_async(mark, body).await;
        let settled = self.settle(&result);
        let valid = match lease {
            Some(lease) => B::publish_async(self, key, lease, settled.store.clone()).await,
            None => true,
        };
        self.write_local(key, guard, ticket, &settled, valid);
        result
    }

    /// Another process's result, met when asking for the lease: counted as a wait and handed
    /// to this process's waiters; or, a null for a shape without nulls, the guard back to load.
    fn found<'a>(
        &self,
        key: &B::Key,
        guard: Option<Guard<'a, F>>,
        slot: Slot<F::Value>,
    ) -> Result<F::Output, Option<Guard<'a, F>>> {
        let Some(result) = F::Shape::from_slot(slot.clone()) else {
            return Err(guard);
        };
        self.stats.add(Counter::Wait);
        let share = Settled {
            store: None,
            share: Some(match &slot {
                Slot::Value(v) => Slot::Value(v),
                Slot::Null => Slot::Null,
            }),
        };
        self.write_local(key, guard, None, &share, true);
        Ok(result)
    }

    /// What a load leaves in the local store. In process: the entry, through the guard
    /// (fenced by the placeholder) or the ticket. Elsewhere: the result handed to this
    /// process's waiters through the guard, unless the publish found its lease revoked (an
    /// invalidation: they load again), then removed. Without a result the guard is dropped,
    /// which hands the load to one waiter.
    fn write_local(
        &self,
        key: &B::Key,
        guard: Option<Guard<'_, F>>,
        ticket: Option<crate::fence::Ticket>,
        settled: &Settled<'_, F::Value>,
        valid: bool,
    ) {
        if B::LOCAL {
            let Some(slot) = settled.store.clone() else {
                return;
            };
            let entry = self.entry(slot);
            match (guard, ticket) {
                // Err: the placeholder was removed (an invalidation or `clear`).
                (Some(guard), _) => {
                    let _ = guard.insert(entry);
                }
                (None, Some(ticket)) => {
                    let local = B::local(key).clone();
                    self.fenced(ticket, || self.store.insert(local, entry));
                }
                (None, None) => {}
            }
            return;
        }
        if let (Some(guard), Some(slot), true) = (guard, settled.share.clone(), valid) {
            let entry = Entry {
                slot: slot.cloned(),
                fresh_until_ms: u64::MAX,
            };
            if guard.insert(entry).is_ok() {
                self.store.remove(B::local(key));
            }
        }
    }

    /// A call while the backend is unavailable: its in-process fallback.
    fn fallback_load(&self, key: B::Key, body: impl FnOnce() -> F::Output) -> F::Output {
        let local = B::into_local(key);
        match B::fallback(self) {
            Some(fallback) => match fallback.get_key(&local) {
                Some(hit) => hit,
                None => fallback.load(local, body),
            },
            None => self.run(Mark::new(self, &local), body),
        }
    }

    /// The async twin of `fallback_load`.
    async fn fallback_load_async(
        &self,
        key: B::Key,
        body: impl Future<Output = F::Output>,
    ) -> F::Output {
        let local = B::into_local(key);
        match B::fallback(self) {
            // Boxed: the fallback's own (never taken) fallback path would make this future
            // contain itself.
            Some(fallback) => match fallback.get_key(&local) {
                Some(hit) => hit,
                None => Box::pin(fallback.load_async(local, body)).await,
            },
            None => self.run_async(Mark::new(self, &local), body).await,
        }
    }
}
