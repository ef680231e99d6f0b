//! Revalidation (`stale`, stale-while-revalidate, RFC 5861) and early refresh
//! (`early_refresh`, XFetch): one per key, in the background where the body can leave its
//! caller, else in place by the one caller that won it.
//!
//! One per key: in process by [`Refreshing`](super::phase::Refreshing); across processes by
//! the backend's lease, taken only if the entry is still the one this process saw
//! (`Start::Refresh`), so a process that comes after another's refresh does not load again.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::body::{AsyncBody, CatchUnwind, SendFuture, SyncBody};
use crate::entry::Entry;
use crate::fence::Ticket;
use crate::function::Function;
use crate::reentry::Mark;
use crate::stats::Counter;
use crate::store::{Start, Store};

use super::flight::Lead;
use super::phase::RefreshMark;
use super::shared::{Awaiting, Blocking, Granted, now};
use super::{Engine, Key};
use crate::stopwatch::Stopwatch;

impl<F: Function, S: Store<F>> Engine<F, S> {
    /// Answers with `answer` (the entry's value, counted as `counter`) and revalidates the
    /// entry: in the background if the body can leave; else this caller does it and answers
    /// with its result.
    pub(super) fn revalidate(
        &'static self,
        key: Key<F, S>,
        entry: Entry<F::Value>,
        ticket: Option<Ticket>,
        counter: Counter,
        answer: F::Output,
        body: impl SyncBody<F::Output>,
    ) -> F::Output {
        let Some(mark) = self.start_refresh(&key, &entry) else {
            self.stats.add_answer(counter, entry.times.load_us);
            return answer;
        };
        // Counted once: the answer is the entry's value, or (in place) the revalidation's.
        self.stats.add_answer(counter, entry.times.load_us);
        let job = move |body, (key, held, ticket, mark)| {
            self.refresh_in_background(&key, held, ticket, body);
            drop(mark);
        };
        match body.detach((key, entry, ticket, mark), job) {
            Ok(()) => answer,
            Err((body, (key, held, ticket, mark))) => {
                drop(answer);
                let lead = self.refresh_lead(&key, held, ticket);
                let result = self.lead(&key, lead, body);
                drop(mark);
                result
            }
        }
    }

    /// The async twin of `revalidate`: in the background as a task of the caller's tokio
    /// runtime.
    pub(super) async fn revalidate_async(
        &'static self,
        key: Key<F, S>,
        entry: Entry<F::Value>,
        ticket: Option<Ticket>,
        counter: Counter,
        answer: F::Output,
        body: impl AsyncBody<F::Output>,
    ) -> F::Output {
        let Some(mark) = self.start_refresh(&key, &entry) else {
            self.stats.add_answer(counter, entry.times.load_us);
            return answer;
        };
        self.stats.add_answer(counter, entry.times.load_us);
        let job = move |body: SendFuture<F::Output>, (key, held, ticket, mark)| async move {
            self.refresh_in_background_async(key, held, ticket, body)
                .await;
            drop(mark);
        };
        match body.detach((key, entry, ticket, mark), job) {
            Ok(()) => answer,
            Err((body, (key, held, ticket, mark))) => {
                drop(answer);
                let lead = self.refresh_lead(&key, held, ticket);
                let result = self.lead_async(&key, lead, body).await;
                drop(mark);
                result
            }
        }
    }

    /// Marks the refresh of `key`'s entry `seen`, unless one is running, or one ended since
    /// this caller saw the entry (in process: the local store holds a newer entry; on a shared
    /// backend the lease script checks the same, across processes).
    fn start_refresh(
        &'static self,
        key: &Key<F, S>,
        seen: &Entry<F::Value>,
    ) -> Option<RefreshMark<'static, F::Key>> {
        let mark = self.refreshing.claim(&key.local, ())?;
        // In process only: with a shared store its lease script checks the same, and an L1
        // holds shortened copies.
        if !Self::SHARED {
            // Refreshed, re-armed after a failure, or removed since it was seen.
            let now = self.local.get(&key.local)?;
            if now.times != seen.times || !now.is_current() {
                return None;
            }
        }
        Some(mark)
    }

    /// The load of a revalidation that its caller waits for.
    fn refresh_lead(
        &self,
        key: &Key<F, S>,
        held: Entry<F::Value>,
        ticket: Option<Ticket>,
    ) -> Lead<'static, F> {
        Lead {
            guard: None,
            mark: Mark::new(self, &key.local),
            start: Start::Refresh(held.times.fresh_until_ms),
            held: Some(held),
            ticket,
            counted: true,
        }
    }

    /// A revalidation no caller waits for, on a thread of the library's own: the lease
    /// unless another process refreshed or is refreshing, the body, and its entry stored;
    /// if it fails, the held entry kept with the throttle. In process both writes are fenced
    /// by `ticket`, taken before the caller read the entry (an invalidation since wins).
    fn refresh_in_background(
        &'static self,
        key: &Key<F, S>,
        held: Entry<F::Value>,
        ticket: Option<Ticket>,
        body: impl SyncBody<F::Output>,
    ) {
        let lease = match self.lease(key, Start::Refresh(held.times.fresh_until_ms)) {
            Granted::Lease(lease) => lease,
            Granted::Found(_) | Granted::Busy => return,
        };
        self.stats.add(Counter::Refresh);
        let started = Stopwatch::start();
        let mark = Mark::new(self, &key.local);
        let watch = self.watch(mark, &key.local);
        let result = catch_unwind(AssertUnwindSafe(|| {
            let _entered = watch.span().enter();
            mark.run(|| body.call())
        }));
        watch.finish::<F>(&result);
        let entry = self
            .late_entry(result, started)
            .or_else(|| self.rearmed_entry(key, &held));
        now(self.finish_late(key, lease, ticket, entry, Blocking));
    }

    /// The async twin of `refresh_in_background`, as a task of the caller's runtime. The
    /// result is mapped to its entry before the next await, so the task is `Send` whatever
    /// the function returns.
    async fn refresh_in_background_async(
        &'static self,
        key: Key<F, S>,
        held: Entry<F::Value>,
        ticket: Option<Ticket>,
        body: SendFuture<F::Output>,
    ) {
        let start = Start::Refresh(held.times.fresh_until_ms);
        let lease = match self.lease_async(&key, start).await {
            Granted::Lease(lease) => lease,
            Granted::Found(_) | Granted::Busy => return,
        };
        self.stats.add(Counter::Refresh);
        let started = Stopwatch::start();
        let watch = self.watch(Mark::new(self, &key.local), &key.local);
        let body = tracing::Instrument::instrument(body, watch.span().clone());
        // The result is mapped to its entry in one step, with no await while it lives.
        let finish = |result: Result<F::Output, _>| {
            watch.finish::<F>(&result);
            self.late_entry(result, started)
        };
        let entry = finish(CatchUnwind::new(body).await);
        let entry = entry.or_else(|| self.rearmed_entry(&key, &held));
        self.finish_late(&key, lease, ticket, entry, Awaiting).await;
    }
}
