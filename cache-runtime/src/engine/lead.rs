//! One load led by a caller: the lease (or another process's result), the body, the publish,
//! the local write or hand-over; if the load fails, panics or outruns `load_timeout` while an
//! entry is held, the held entry answers (fail-safe, `fail_safe.rs`).
//!
//! The steps are written once; [`Engine::lead`] and [`Engine::lead_async`] are the glue that
//! does their I/O (the store's lease and publish, the body) by blocking or by awaiting.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::Duration;

use crate::answer::{self, CacheStatus};
use crate::body::{AsyncBody, LateAsync, LateSync, LoadJob, Panic, SendFuture, SyncBody, Waited};
use crate::clock;
use crate::entry::{Entry, Times};
use crate::fence::Ticket;
use crate::function::Function;
use crate::reentry::Mark;
use crate::shape::Shape;
use crate::stats::Counter;
use crate::store::{Start, Store};

use super::fail_safe::Failed;
use super::flight::{Guard, Lead};
use super::settle::{LoadWatch, Settled};
use super::shared::{Awaiting, Blocking, Granted, now};
use super::{Engine, Key};
use crate::stopwatch::Stopwatch;

/// What a leader does after asking for its lease.
enum Leading<'g, F: Function, L> {
    /// Load, and publish under this lease (`None`: without one).
    Load(Option<L>, Option<Guard<'g, F>>),
    /// Another process's result answers.
    Answer(F::Output),
    /// Another process's result cannot answer (a null of a shape without nulls): load, and
    /// share the result in process only.
    Unleased(Option<Guard<'g, F>>),
}

/// How a load that ran ends.
enum Ending<'r, V> {
    /// It gave a result: publish (or keep) it.
    Publish(Settled<'r, V>),
    /// It gave no value, and the held entry answers instead.
    FailSafe(Entry<V>),
    /// It gave no value (an error is the answer; a panic is resumed).
    Failed,
}

/// The fixed parts of a load, for its steps.
struct Leader<'g, F: Function> {
    mark: Mark,
    start: Start,
    held: Option<Entry<F::Value>>,
    ticket: Option<Ticket>,
    counted: bool,
    guard: Option<Guard<'g, F>>,
}

impl<F: Function, S: Store<F>> Engine<F, S> {
    /// One load, for a sync caller.
    pub(super) fn lead(
        &'static self,
        key: &Key<F, S>,
        lead: Lead<'_, F>,
        body: impl SyncBody<F::Output>,
    ) -> F::Output {
        let mut load = self.begin_lead(key, lead);
        let granted = self.lease(key, load.start);
        let lease = match self.leading(key, &mut load, granted) {
            Leading::Load(lease, guard) => {
                load.guard = guard;
                lease
            }
            Leading::Answer(result) => return result,
            Leading::Unleased(guard) => {
                let started = Stopwatch::start();
                let result = self.run(load.mark, self.watch(load.mark, &key.local), || body.call());
                self.unleased(key, (guard, load.ticket), &result, started);
                return result;
            }
        };
        let started = Stopwatch::start();
        let result = match self.timed(load.held.as_ref()) {
            Some((answer, limit)) => {
                let watch = self.watch(load.mark, &key.local);
                match body.call_within(limit) {
                    Ok(Waited::Done(done)) => {
                        watch.finish::<F>(&done);
                        done
                    }
                    Ok(Waited::Late(late)) => {
                        let key = key.clone();
                        if let Some(held) = &load.held {
                            let lease = lease.as_ref();
                            let (guard, ticket) = (load.guard, load.ticket);
                            let keep =
                                self.keep(&key, guard, ticket, lease, held, load.counted, Blocking);
                            now(keep);
                        }
                        let ticket = load.ticket;
                        let load = move |result| {
                            watch.finish::<F>(&result);
                            self.late_entry(result, started)
                        };
                        late.finish(load, move |entry| {
                            now(self.finish_late(&key, lease, ticket, entry, Blocking));
                        });
                        return answer;
                    }
                    Err(body) => self.run_caught(load.mark, watch, body),
                }
            }
            None if load.held.is_some() => {
                self.run_caught(load.mark, self.watch(load.mark, &key.local), body)
            }
            None => Ok(self.run(load.mark, self.watch(load.mark, &key.local), || body.call())),
        };
        match self.ending(&result, started, &load) {
            Ending::Publish(mut settled) => {
                let valid = match lease {
                    Some(lease) => settled.published(self.publish(key, lease, settled.stored())),
                    None => true,
                };
                self.published_locally(key, load.guard, load.ticket, &settled, valid);
            }
            Ending::FailSafe(held) => {
                let failed = Failed::of(&result, load.counted);
                let (guard, ticket) = (load.guard, load.ticket);
                let kept = self.fail_safe(key, guard, ticket, lease, held, failed, Blocking);
                if let Some(answer) = now(kept) {
                    return answer;
                }
            }
            Ending::Failed => {}
        }
        answer_or_unwind(result)
    }

    /// One load, for an async caller: the same steps as [`Engine::lead`], awaited.
    pub(super) async fn lead_async(
        &'static self,
        key: &Key<F, S>,
        lead: Lead<'_, F>,
        body: impl AsyncBody<F::Output>,
    ) -> F::Output {
        let mut load = self.begin_lead(key, lead);
        let granted = self.lease_async(key, load.start).await;
        let lease = match self.leading(key, &mut load, granted) {
            Leading::Load(lease, guard) => {
                load.guard = guard;
                lease
            }
            Leading::Answer(result) => return result,
            Leading::Unleased(guard) => {
                let watch = self.watch(load.mark, &key.local);
                let started = Stopwatch::start();
                let result = self.run_async(load.mark, watch, body.start()).await;
                self.unleased(key, (guard, load.ticket), &result, started);
                return result;
            }
        };
        let started = Stopwatch::start();
        let watch = self.watch(load.mark, &key.local);
        let result = match self.timed(load.held.as_ref()) {
            Some((answer, limit)) => match body.call_within(limit).await {
                Ok(Waited::Done(done)) => {
                    watch.finish::<F>(&done);
                    done
                }
                Ok(Waited::Late(late)) => {
                    let key = key.clone();
                    if let Some(held) = &load.held {
                        let lease = lease.as_ref();
                        let (guard, ticket) = (load.guard, load.ticket);
                        self.keep(&key, guard, ticket, lease, held, load.counted, Awaiting)
                            .await;
                    }
                    let ticket = load.ticket;
                    let load = move |result| {
                        watch.finish::<F>(&result);
                        self.late_entry(result, started)
                    };
                    late.finish(load, move |entry| async move {
                        self.finish_late(&key, lease, ticket, entry, Awaiting).await;
                    });
                    return answer;
                }
                Err(body) => self.run_caught_async(load.mark, watch, body.start()).await,
            },
            None if load.held.is_some() => {
                self.run_caught_async(load.mark, watch, body.start()).await
            }
            None => Ok(self.run_async(load.mark, watch, body.start()).await),
        };
        match self.ending(&result, started, &load) {
            Ending::Publish(mut settled) => {
                let valid = match lease {
                    Some(lease) => {
                        let published = self.publish_async(key, lease, settled.stored()).await;
                        settled.published(published)
                    }
                    None => true,
                };
                self.published_locally(key, load.guard, load.ticket, &settled, valid);
            }
            Ending::FailSafe(held) => {
                let failed = Failed::of(&result, load.counted);
                let (guard, ticket) = (load.guard, load.ticket);
                let kept = self.fail_safe(key, guard, ticket, lease, held, failed, Awaiting);
                if let Some(answer) = kept.await {
                    return answer;
                }
            }
            Ending::Failed => {}
        }
        answer_or_unwind(result)
    }

    /// The first step: the load's parts, and its fence ticket if it writes the local store
    /// without its placeholder.
    fn begin_lead<'g>(&self, key: &Key<F, S>, lead: Lead<'g, F>) -> Leader<'g, F> {
        let Lead {
            guard,
            mark,
            start,
            held,
            ticket,
            counted,
        } = lead;
        let ticket = ticket.or_else(|| self.lead_ticket(key, guard.is_some(), held.is_some()));
        Leader {
            mark,
            start,
            held,
            ticket,
            counted,
            guard,
        }
    }

    /// What the store's answer to the lease leaves the leader to do. Another process's
    /// result answers; a refresh that found another process refreshing answers with the held
    /// entry (a refresh always holds one).
    fn leading<'g>(
        &self,
        key: &Key<F, S>,
        load: &mut Leader<'g, F>,
        granted: Granted<S::Lease, F::Value>,
    ) -> Leading<'g, F, S::Lease> {
        let guard = load.guard.take();
        let lease = match granted {
            Granted::Lease(lease) => lease,
            Granted::Found(entry) => {
                return self.shared(key, guard, load.ticket, entry, load.start);
            }
            Granted::Busy => match self.held_answer(load.held.as_ref()) {
                Some(result) => return Leading::Answer(result),
                // The held entry cannot answer (its tag was invalidated, or a null of a shape
                // without nulls): load without a lease.
                None => None,
            },
        };
        if let Start::Refresh(_) = load.start {
            self.stats.add(Counter::Refresh);
        }
        Leading::Load(lease, guard)
    }

    /// A load without a lease after another process's result could not answer: its result is
    /// shared in process only.
    fn unleased(
        &self,
        key: &Key<F, S>,
        (guard, ticket): (Option<Guard<'_, F>>, Option<Ticket>),
        result: &F::Output,
        started: Stopwatch,
    ) {
        let settled = self.settle(result, started.elapsed_us());
        note_load(Some(&settled));
        self.write_local(key, guard, ticket, &settled, true);
    }

    /// How a load that ran ends: its result settled and noted, or the held entry that
    /// answers for it.
    fn ending<'r>(
        &self,
        result: &'r Result<F::Output, Panic>,
        started: Stopwatch,
        load: &Leader<'_, F>,
    ) -> Ending<'r, F::Value> {
        let outcome = match result {
            Ok(result) => Some(self.settle(result, started.elapsed_us())),
            Err(_) => None,
        };
        note_load(outcome.as_ref());
        if let Some(held) = self.kept_for(&outcome, load.held.as_ref()) {
            return Ending::FailSafe(held);
        }
        outcome.map_or(Ending::Failed, Ending::Publish)
    }

    /// The last step of a load that published (`valid`: its lease still held).
    fn published_locally(
        &self,
        key: &Key<F, S>,
        guard: Option<Guard<'_, F>>,
        ticket: Option<Ticket>,
        settled: &Settled<'_, F::Value>,
        valid: bool,
    ) {
        note_load(Some(settled));
        self.write_local(key, guard, ticket, settled, valid);
    }

    /// The fence ticket of a load that writes the local store without its placeholder: one
    /// without a guard, or one that may outlive its caller (`load_timeout`).
    fn lead_ticket(&self, key: &Key<F, S>, guarded: bool, held: bool) -> Option<Ticket> {
        (Self::LOCAL && (!guarded || held)).then(|| self.ticket(&key.local))
    }

    /// The answer a held entry gives, if its shape can.
    pub(super) fn held_answer(&self, held: Option<&Entry<F::Value>>) -> Option<F::Output> {
        let held = held.filter(|h| h.is_current())?;
        answer::note_held(held);
        F::Shape::from_slot(held.slot.clone())
    }

    /// With `load_timeout` and a held entry that can answer: that answer, and how long to
    /// wait for the load before giving it.
    pub(super) fn timed(&self, held: Option<&Entry<F::Value>>) -> Option<(F::Output, Duration)> {
        let limit = self.policy.load_timeout?;
        Some((self.held_answer(held)?, limit))
    }

    /// The held entry that answers in place of a load that gave no value (an error or a
    /// panic), if it may.
    fn kept_for(
        &self,
        outcome: &Option<Settled<'_, F::Value>>,
        held: Option<&Entry<F::Value>>,
    ) -> Option<Entry<F::Value>> {
        let failed = matches!(outcome, None | Some(Settled { share: None, .. }));
        held.filter(|h| failed && self.can_keep(h)).cloned()
    }

    /// Runs the body in place, its panic caught (a held entry may answer instead).
    fn run_caught(
        &self,
        mark: Mark,
        watch: LoadWatch<'_>,
        body: impl SyncBody<F::Output>,
    ) -> Result<F::Output, Panic> {
        catch_unwind(AssertUnwindSafe(|| self.run(mark, watch, || body.call())))
    }

    /// Another process's result, met when asking for the lease: counted as a wait (unless
    /// this was a refresh) and handed to this process's waiters; or, a null for a shape
    /// without nulls, the guard back to load.
    fn shared<'a>(
        &self,
        key: &Key<F, S>,
        guard: Option<Guard<'a, F>>,
        ticket: Option<Ticket>,
        entry: Entry<F::Value>,
        start: Start,
    ) -> Leading<'a, F, S::Lease> {
        let Some(result) = F::Shape::from_slot(entry.slot.clone()) else {
            return Leading::Unleased(guard);
        };
        answer::note(CacheStatus::Miss, stored(&entry.times));
        // A refresh's caller was counted when it found the entry it refreshes.
        if !matches!(start, Start::Refresh(_)) {
            self.stats.add(Counter::Wait);
            if clock::now_ms() < entry.times.retry_at_ms {
                // Another process kept this value after its load failed.
                self.stats.add(Counter::StaleIfErrorHit);
            }
        }
        // With an L1, the value found is kept there too (fenced like every copy), and that is
        // how this process's waiters get it.
        let l1 = Self::L1;
        let share = Settled {
            store: l1.then(|| entry.slot.as_ref()),
            share: Some(entry.slot.as_ref()),
            times: entry.times,
        };
        self.write_local(key, guard, ticket.filter(|_| l1), &share, true);
        Leading::Answer(result)
    }
}

/// The load an async leader runs, made into a task-able future once its body can leave the
/// caller ([`AsyncBody::own`]).
pub(super) struct Owner<F: Function, S: Store<F>>(pub(super) &'static Engine<F, S>);

impl<F: Function, S: Store<F>> LoadJob<F::Output, (Key<F, S>, Lead<'static, F>)> for Owner<F, S> {
    fn start(
        self,
        body: SendFuture<F::Output>,
        (key, lead): (Key<F, S>, Lead<'static, F>),
    ) -> SendFuture<F::Output>
    where
        F::Output: Send + 'static,
    {
        let engine = self.0;
        Box::pin(async move { engine.lead_async(&key, lead, body).await })
    }
}

/// The load's result, or its panic resumed.
fn answer_or_unwind<R>(result: Result<R, Panic>) -> R {
    match result {
        Ok(result) => result,
        Err(panic) => resume_unwind(panic),
    }
}

/// The times of an entry that is stored (`None` for a hand-over that is not: version 0).
pub(super) fn stored(times: &Times) -> Option<&Times> {
    (times.version != 0).then_some(times)
}

/// Notes the answer of this call's own load: a miss, with the times of what it stored; or
/// its failure (a kept value may answer next).
pub(super) fn note_load<V>(outcome: Option<&Settled<'_, V>>) {
    match outcome {
        Some(settled) if settled.share.is_some() => {
            let times = settled.store.as_ref().map(|_| &settled.times);
            answer::note(CacheStatus::Miss, times);
        }
        _ => answer::note_load_failed(),
    }
}
