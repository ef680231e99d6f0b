//! The miss path, as sync and async twins: the store's read, re-entry, single-flight
//! (`flight.rs`), the lease, the body, the publish and the hand-over to this process's waiters.
//! With `lock = "none"` every miss loads.
//!
//! Fencing against invalidation: a local write through a placeholder guard fails by itself
//! once an invalidation removed the placeholder (quick_cache's documented behaviour, held by
//! `tests/invalidate.rs`); a local write without one (`lock = "none"`, a waiter that gave up,
//! `f_refresh`) is fenced by a ticket (`fence.rs`); a backend's write is fenced by its lease.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::Duration;

use crate::body::{
    AsyncBody, CatchUnwind, LateAsync, LateSync, LoadJob, Panic, SendFuture, SyncBody, Waited,
};
use crate::clock;
use crate::entry::{Entry, Slot, Times};
use crate::fence::Ticket;
use crate::function::Function;
use crate::policy::Lock;
use crate::reentry::Mark;
use crate::shape::Shape;
use crate::stats::Counter;
use crate::store::{Start, Store};
use crate::tags::EntryTags;

use super::fail_safe::Failed;
use super::flight::{Flight, Guard, Lead, LoadClock};
use super::phase::Next;
use super::settle::{LoadWatch, Settled};
use super::shared::{Fetched, Granted};
use super::{Engine, Key};
use crate::answer::{self, CacheStatus, Cached};
use crate::warm::Warm;

/// What a call does after looking at what the cache holds for its key.
enum Step<F: Function> {
    /// Answer with this (counted).
    Answer(F::Output),
    /// Answer with this (counted as `Counter`) and revalidate or refresh the entry.
    Refresh(Entry<F::Value>, Counter, F::Output),
    /// Load; the entry, if any, answers if the load fails.
    Load(Option<Entry<F::Value>>),
    /// The shared store failed: the fallback answers.
    Fallback,
}

impl<F: Function, S: Store<F>> Engine<F, S> {
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

    /// What the cache holds for `key`: in the local store (only when the policy keeps
    /// expired entries or refreshes early: otherwise the hit path has said all), or in the
    /// shared store; `Err` when the shared store failed (the call goes to the fallback; with an
    /// L1, the L1 is the fallback: the call loads in process). An entry read from the shared
    /// store fills an L1 (fenced by `ticket`, taken before the read).
    fn found(
        &self,
        key: &Key<F, S>,
        read: Option<Fetched<F::Value>>,
        ticket: Option<Ticket>,
    ) -> Step<F> {
        let entry = match read {
            None if self.policy.has_phases() => {
                self.local.get(&key.local).map(|e| self.held_copy(key, e))
            }
            None => None,
            Some(Fetched::Hit(entry)) => Some(entry),
            Some(Fetched::Miss) => None,
            Some(Fetched::Unusable) => return Step::Load(None),
            // With an L1, the L1 is the fallback: the call loads in process.
            Some(Fetched::Failed) if Self::L1 => return Step::Load(None),
            Some(Fetched::Failed) => return Step::Fallback,
        };
        let Some(entry) = entry else {
            return Step::Load(None);
        };
        // The hit path drew XFetch's number for an entry of the local store already, and said
        // whether it fired; an entry read from the shared store draws here.
        let fired = super::phase::take_fired();
        let xfetch = match Self::SHARED {
            false => super::phase::Xfetch::Fired(fired),
            true => super::phase::Xfetch::Roll,
        };
        if Self::L1 {
            self.stats.add(Counter::L2Hit);
            if let Some(ticket) = ticket
                && entry.is_fresh()
            {
                self.fill_local(key, ticket, &entry);
            }
        }
        {
            match Next::of(&self.policy, entry, clock::now_ms(), xfetch) {
                Next::Answer {
                    entry,
                    counter,
                    refresh: true,
                } => match F::Shape::from_slot(entry.slot.clone()) {
                    Some(result) => {
                        answer::note_counted(counter, &entry.times);
                        if Self::L1 && matches!(counter, Counter::Hit | Counter::NullHit) {
                            self.stats.add(Counter::L2Answer);
                        }
                        Step::Refresh(entry, counter, result)
                    }
                    None => Step::Load(None),
                },
                Next::Answer { entry, counter, .. } => match F::Shape::from_slot(entry.slot) {
                    Some(result) => {
                        answer::note_counted(counter, &entry.times);
                        self.stats.add(counter);
                        if Self::L1 && matches!(counter, Counter::Hit | Counter::NullHit) {
                            self.stats.add(Counter::L2Answer);
                        }
                        Step::Answer(result)
                    }
                    None => Step::Load(None),
                },
                Next::Load { held } => Step::Load(held),
            }
        }
    }

    /// Whether a read was an unusable entry: the load that follows must overwrite it.
    fn unusable(read: &Option<Fetched<F::Value>>) -> bool {
        matches!(read, Some(Fetched::Unusable))
    }

    /// `f_entry`'s miss path: [`Engine::load`] with how the call was answered.
    pub fn load_entry(
        &'static self,
        key: Key<F, S>,
        body: impl SyncBody<F::Output>,
    ) -> Cached<F::Output> {
        let (result, noted) = answer::noting(|| self.load(key, body));
        Cached::new(result, noted, self.policy.stale)
    }

    /// The async twin of [`Engine::load_entry`].
    pub async fn load_entry_async(
        &'static self,
        key: Key<F, S>,
        body: impl AsyncBody<F::Output>,
    ) -> Cached<F::Output> {
        let (result, noted) = answer::noting_async(self.load_async(key, body)).await;
        Cached::new(result, noted, self.policy.stale)
    }

    /// `f_warm`'s call for one key (its hit path found no fresh entry in process): loaded,
    /// skipped (fresh in the shared store), or failed (an error or a panic, caught).
    pub fn warm_load(&'static self, key: Key<F, S>, body: impl SyncBody<F::Output>) -> Warm {
        let loaded = catch_unwind(AssertUnwindSafe(|| self.load_entry(key, body)));
        Self::warmed(loaded.ok())
    }

    /// The async twin of [`Engine::warm_load`].
    pub async fn warm_load_async(
        &'static self,
        key: Key<F, S>,
        body: impl AsyncBody<F::Output>,
    ) -> Warm {
        let loaded = CatchUnwind::new(self.load_entry_async(key, body)).await;
        Self::warmed(loaded.ok())
    }

    /// A stale key counts as loaded: its revalidation started (or was running).
    fn warmed(answer: Option<Cached<F::Output>>) -> Warm {
        match answer {
            Some(a) if a.load_failed => Warm::Failed,
            Some(a) if matches!(a.status(), CacheStatus::Hit | CacheStatus::NullHit) => {
                Warm::Skipped
            }
            Some(a) if F::Shape::to_slot(a.value()).is_some() => Warm::Loaded,
            _ => Warm::Failed,
        }
    }

    /// Counts a miss of `key`; its re-entry mark, and whether this thread (task) is running
    /// its load already. A caller about to join a load is first counted among its waiters,
    /// while `cache.load` spans may be recorded: a load that has seen a miss counted has seen
    /// it arrive (`waiters.rs`).
    fn miss(&self, key: &Key<F, S>) -> (Mark, bool) {
        let mark = Mark::new(self, &key.local);
        let running = mark.is_running();
        if !running
            && self.policy.lock != Lock::None
            && tracing::level_enabled!(tracing::Level::DEBUG)
        {
            self.waiters.arrive(mark);
        }
        self.stats.add(Counter::Miss);
        (mark, running)
    }

    /// The miss path of a sync cached function: load `key` with `body` once per key, or wait
    /// for the load already running; answer with an expired entry where its phase says so.
    pub fn load(&'static self, key: Key<F, S>, body: impl SyncBody<F::Output>) -> F::Output {
        let ticket = self.phase_ticket(&key);
        let read = Self::SHARED.then(|| self.fetch(&key));
        let unusable = Self::unusable(&read);
        let held = match self.found(&key, read, ticket) {
            Step::Answer(result) => return result,
            Step::Refresh(entry, counter, result) => {
                return self.revalidate(key, entry, ticket, counter, result, body);
            }
            Step::Load(held) => held,
            Step::Fallback => return self.fallback_load(key, body),
        };
        let (mark, running) = self.miss(&key);
        if running {
            // This thread is loading this key: waiting for it would wait for ourselves.
            return self.run(mark, self.watch(mark, &key.local), || body.call());
        }
        let lead = |guard, start, held| Lead {
            guard,
            mark,
            start,
            held,
            ticket,
            counted: false,
        };
        if self.policy.lock == Lock::None {
            return self.lead(&key, lead(None, Start::Take, held), body);
        }
        match self.join(&key.local) {
            Flight::Lead(guard) => {
                let start = self.leader_start(unusable);
                let _shown = self.kept.show(&key.local, held.as_ref());
                self.lead(&key, lead(Some(guard), start, held), body)
            }
            Flight::Joined(entry) => match self.joined(entry) {
                Some(result) => result,
                None => self.lead(&key, lead(None, Start::Take, held), body),
            },
            Flight::TimedOut => {
                let held = held.or_else(|| self.kept.get(&key.local));
                let held = held.map(|e| self.held_copy(&key, e));
                self.lead(&key, lead(None, Start::ReadOrTake, held), body)
            }
        }
    }

    /// The miss path of an async cached function; the twin of [`Engine::load`].
    pub async fn load_async(
        &'static self,
        key: Key<F, S>,
        body: impl AsyncBody<F::Output>,
    ) -> F::Output {
        let ticket = self.phase_ticket(&key);
        let read = match Self::SHARED {
            false => None,
            true => Some(self.fetch_async(&key).await),
        };
        let unusable = Self::unusable(&read);
        let held = match self.found(&key, read, ticket) {
            Step::Answer(result) => return result,
            Step::Refresh(entry, counter, result) => {
                return self
                    .revalidate_async(key, entry, ticket, counter, result, body)
                    .await;
            }
            Step::Load(held) => held,
            Step::Fallback => return self.fallback_load_async(key, body).await,
        };
        let (mark, running) = self.miss(&key);
        if running {
            // This task is loading this key: waiting for it would wait for ourselves.
            let watch = self.watch(mark, &key.local);
            return self.run_async(mark, watch, body.start()).await;
        }
        let lead = |guard, start, held| Lead {
            guard,
            mark,
            start,
            held,
            ticket,
            counted: false,
        };
        if self.policy.lock == Lock::None {
            // No waiters to answer: a cancelled caller's load is dropped with it.
            let lead = lead(None, Start::Take, held);
            return self.lead_async(&key, lead, body).await;
        }
        match self.join_async(&key.local).await {
            Flight::Lead(guard) => {
                let start = self.leader_start(unusable);
                let _shown = self.kept.show(&key.local, held.as_ref());
                let lead = lead(Some(guard), start, held);
                self.lead_owned(key, lead, body).await
            }
            Flight::Joined(entry) => match self.joined(entry) {
                Some(result) => result,
                None => {
                    let lead = lead(None, Start::Take, held);
                    self.lead_owned(key, lead, body).await
                }
            },
            Flight::TimedOut => {
                let held = held.or_else(|| self.kept.get(&key.local));
                let held = held.map(|e| self.held_copy(&key, e));
                let lead = lead(None, Start::ReadOrTake, held);
                self.lead_owned(key, lead, body).await
            }
        }
    }

    /// Leads a load for an async caller so that it belongs to the key, not to the caller:
    /// where the body can leave the caller, a caller cancelled while it leads leaves the load
    /// running on its runtime (for at most [`Policy::detached_limit`]), and its result is
    /// stored and answers the waiters (issue 22). Elsewhere the load runs in place.
    ///
    /// [`Policy::detached_limit`]: crate::policy::Policy
    async fn lead_owned(
        &'static self,
        key: Key<F, S>,
        lead: Lead<'static, F>,
        body: impl AsyncBody<F::Output>,
    ) -> F::Output {
        if self.timed(lead.held.as_ref()).is_some() {
            // With `load_timeout`, a load that outruns it goes on in the background already,
            // as a task of its own (`AsyncBody::call_within`).
            return self.lead_async(&key, lead, body).await;
        }
        let limit = self.policy.detached_limit();
        match body.own((key, lead), Leader(self), limit) {
            Ok(owned) => owned.await,
            Err((body, (key, lead))) => self.lead_async(&key, lead, body).await,
        }
    }

    /// The result a waiter took from its key's flight (counted); `None` for a null of a
    /// shape without nulls (the waiter loads).
    fn joined(&self, entry: Entry<F::Value>) -> Option<F::Output> {
        if !entry.is_current() {
            // A tag of the leader's load was invalidated while it ran.
            return None;
        }
        // Noted first (the slot moves into the answer); a null for a shape without nulls
        // answers nothing: that caller loads, and is not a wait.
        let kept = clock::now_ms() < entry.times.retry_at_ms;
        if kept {
            answer::note_held(&entry);
        } else {
            answer::note(CacheStatus::Miss, stored(&entry.times));
        }
        let result = F::Shape::from_slot(entry.slot)?;
        self.stats.add(Counter::Wait);
        if kept {
            self.stats.add(Counter::StaleIfErrorHit);
        }
        Some(result)
    }

    /// Runs the body now and stores its result (write-through), fenced like every load; with an
    /// L1, the other processes drop their copies.
    pub fn refresh(&'static self, key: Key<F, S>, body: impl SyncBody<F::Output>) -> F::Output {
        let mark = Mark::new(self, &key.local);
        let lead = Lead {
            guard: None,
            mark,
            start: Start::Take,
            held: None,
            ticket: None,
            counted: false,
        };
        let result = self.lead(&key, lead, body);
        self.announce(&key);
        if Self::L1 {
            // A copy read from Redis before the refresh's write may have landed after it.
            self.invalidate_local(&key.local);
        }
        result
    }

    /// The async twin of [`Engine::refresh`].
    pub async fn refresh_async(
        &'static self,
        key: Key<F, S>,
        body: impl AsyncBody<F::Output>,
    ) -> F::Output {
        let mark = Mark::new(self, &key.local);
        let lead = Lead {
            guard: None,
            mark,
            start: Start::Take,
            held: None,
            ticket: None,
            counted: false,
        };
        let result = self.lead_async(&key, lead, body).await;
        self.announce_async(&key).await;
        if Self::L1 {
            self.invalidate_local(&key.local);
        }
        result
    }

    /// One load: the lease (or another process's result), the body, the publish, the local
    /// write or hand-over; if it fails, panics or outruns `load_timeout` while an entry is
    /// held, the held entry answers (fail-safe).
    pub(super) fn lead(
        &'static self,
        key: &Key<F, S>,
        lead: Lead<'_, F>,
        body: impl SyncBody<F::Output>,
    ) -> F::Output {
        let Lead {
            guard,
            mark,
            start,
            held,
            ticket,
            counted,
        } = lead;
        let ticket = ticket.or_else(|| self.lead_ticket(key, guard.is_some(), held.is_some()));
        let lease = match self.lease(key, start) {
            Granted::Lease(lease) => lease,
            Granted::Found(entry) => match self.shared(key, guard, ticket, entry, start) {
                Ok(result) => return result,
                Err(guard) => {
                    let result = self.run(mark, self.watch(mark, &key.local), || body.call());
                    let settled = self.settle(&result, 0);
                    note_load(Some(&settled));
                    self.write_local(key, guard, ticket, &settled, true);
                    return result;
                }
            },
            // Another process refreshes: the held entry answers (a refresh always holds one).
            Granted::Busy => match self.held_answer(held.as_ref()) {
                Some(result) => return result,
                None => None,
            },
        };
        if let Start::Refresh(_) = start {
            self.stats.add(Counter::Refresh);
        }
        let started = LoadClock::start(&self.policy);
        let result = match self.timed(held.as_ref()) {
            Some((answer, limit)) => {
                let watch = self.watch(mark, &key.local);
                match body.call_within(limit) {
                    Ok(Waited::Done(done)) => {
                        watch.finish::<F>(&done);
                        done
                    }
                    Ok(Waited::Late(late)) => {
                        let key = key.clone();
                        if let Some(held) = &held {
                            self.keep(&key, guard, ticket, lease.as_ref(), held, counted);
                        }
                        let load = move |result| {
                            watch.finish::<F>(&result);
                            self.late_entry(result, started)
                        };
                        late.finish(load, move |entry| {
                            self.finish_late(&key, lease, ticket, entry);
                        });
                        return answer;
                    }
                    Err(body) => self.run_caught(mark, watch, body),
                }
            }
            None if held.is_some() => self.run_caught(mark, self.watch(mark, &key.local), body),
            None => Ok(self.run(mark, self.watch(mark, &key.local), || body.call())),
        };
        let outcome = match &result {
            Ok(result) => Some(self.settle(result, started.elapsed_ms())),
            Err(_) => None,
        };
        note_load(outcome.as_ref());
        if let Some(held) = self.kept_for(&outcome, held.as_ref()) {
            let why = failure(&result);
            let failed = Failed { why, counted };
            if let Some(answer) = self.fail_safe(key, guard, ticket, lease, held, failed) {
                return answer;
            }
            return answer_or_unwind(result);
        }
        let Some(mut settled) = outcome else {
            return answer_or_unwind(result);
        };
        let valid = match lease {
            Some(lease) => settled.published(self.publish(key, lease, settled.stored())),
            None => true,
        };
        note_load(Some(&settled));
        self.write_local(key, guard, ticket, &settled, valid);
        answer_or_unwind(result)
    }

    /// The async twin of `lead`.
    pub(super) async fn lead_async(
        &'static self,
        key: &Key<F, S>,
        lead: Lead<'_, F>,
        body: impl AsyncBody<F::Output>,
    ) -> F::Output {
        let Lead {
            guard,
            mark,
            start,
            held,
            ticket,
            counted,
        } = lead;
        let ticket = ticket.or_else(|| self.lead_ticket(key, guard.is_some(), held.is_some()));
        let lease = match self.lease_async(key, start).await {
            Granted::Lease(lease) => lease,
            Granted::Found(entry) => match self.shared(key, guard, ticket, entry, start) {
                Ok(result) => return result,
                Err(guard) => {
                    let watch = self.watch(mark, &key.local);
                    let result = self.run_async(mark, watch, body.start()).await;
                    let settled = self.settle(&result, 0);
                    note_load(Some(&settled));
                    self.write_local(key, guard, ticket, &settled, true);
                    return result;
                }
            },
            // Another process refreshes: the held entry answers (a refresh always holds one).
            Granted::Busy => match self.held_answer(held.as_ref()) {
                Some(result) => return result,
                None => None,
            },
        };
        if let Start::Refresh(_) = start {
            self.stats.add(Counter::Refresh);
        }
        let started = LoadClock::start(&self.policy);
        let result = match self.timed(held.as_ref()) {
            Some((answer, limit)) => {
                let watch = self.watch(mark, &key.local);
                match body.call_within(limit).await {
                    Ok(Waited::Done(done)) => {
                        watch.finish::<F>(&done);
                        done
                    }
                    Ok(Waited::Late(late)) => {
                        let key = key.clone();
                        if let Some(held) = &held {
                            let lease = lease.as_ref();
                            self.keep_async(&key, guard, ticket, lease, held, counted)
                                .await;
                        }
                        let load = move |result| {
                            watch.finish::<F>(&result);
                            self.late_entry(result, started)
                        };
                        late.finish(load, move |entry| async move {
                            self.finish_late_async(&key, lease, ticket, entry).await;
                        });
                        return answer;
                    }
                    Err(body) => self.run_caught_async(mark, watch, body.start()).await,
                }
            }
            None if held.is_some() => {
                let watch = self.watch(mark, &key.local);
                self.run_caught_async(mark, watch, body.start()).await
            }
            None => {
                let watch = self.watch(mark, &key.local);
                Ok(self.run_async(mark, watch, body.start()).await)
            }
        };
        let outcome = match &result {
            Ok(result) => Some(self.settle(result, started.elapsed_ms())),
            Err(_) => None,
        };
        note_load(outcome.as_ref());
        if let Some(held) = self.kept_for(&outcome, held.as_ref()) {
            let why = failure(&result);
            let failed = Failed { why, counted };
            if let Some(answer) = self
                .fail_safe_async(key, guard, ticket, lease, held, failed)
                .await
            {
                return answer;
            }
            return answer_or_unwind(result);
        }
        let Some(mut settled) = outcome else {
            return answer_or_unwind(result);
        };
        let valid = match lease {
            Some(lease) => {
                let published = self.publish_async(key, lease, settled.stored()).await;
                settled.published(published)
            }
            None => true,
        };
        note_load(Some(&settled));
        self.write_local(key, guard, ticket, &settled, valid);
        answer_or_unwind(result)
    }

    /// In process, with freshness phases or an L1: the fence ticket taken before the call
    /// reads its entry, so that neither a kept copy of it nor an L1 copy is ever written back
    /// over an invalidation.
    fn phase_ticket(&self, key: &Key<F, S>) -> Option<Ticket> {
        (Self::LOCAL && (Self::SHARED || self.policy.has_phases())).then(|| self.ticket(&key.local))
    }

    /// An L1 copy of an entry read from the shared store, unless an invalidation came since
    /// `ticket` (in this process, or from another through the log: a received change fences
    /// its key, or every key if this process holds no copy of it).
    fn fill_local(&self, key: &Key<F, S>, ticket: Ticket, entry: &Entry<F::Value>) {
        let copy = self.local_entry(key, entry.slot.clone(), entry.times);
        self.insert_local(key, ticket, copy);
    }

    /// The entry a load of `key` leaves in the local store: its times made local, and the
    /// tags of the load (with their versions when it started).
    pub(super) fn local_entry(
        &self,
        key: &Key<F, S>,
        slot: Slot<F::Value>,
        times: Times,
    ) -> Entry<F::Value> {
        Entry {
            slot,
            times: self.local_times(times),
            tags: EntryTags::of(&key.tags),
        }
    }

    /// Inserts `entry` (made by `local_entry`) into the local store without a placeholder,
    /// unless an invalidation came since `ticket`.
    pub(super) fn insert_local(&self, key: &Key<F, S>, ticket: Ticket, entry: Entry<F::Value>) {
        if !entry.is_current() {
            return;
        }
        let local = key.local.clone();
        self.fenced(ticket, || {
            self.keep_local(key, || self.local.insert(local, entry));
        });
    }

    /// The times of an entry in the local store: as they are, or, for an L1, ending within
    /// `l1_ttl` (its life in the L1; the shared store keeps the rest).
    pub(super) fn local_times(&self, times: Times) -> Times {
        if !Self::SHARED {
            return times;
        }
        let end = clock::now_ms().saturating_add(crate::policy::ms(self.policy.l1_life()));
        Times {
            fresh_until_ms: times.fresh_until_ms.min(end),
            stale_until_ms: times.stale_until_ms.min(end),
            retry_at_ms: times.retry_at_ms.min(end),
            ..times
        }
    }

    /// The fence ticket of a load that writes the local store without its placeholder: one
    /// without a guard, or one that may outlive its caller (`load_timeout`).
    fn lead_ticket(&self, key: &Key<F, S>, guarded: bool, held: bool) -> Option<Ticket> {
        (Self::LOCAL && (!guarded || held)).then(|| self.ticket(&key.local))
    }

    /// A copy of an entry of the local store, kept while a load runs (to answer if it fails):
    /// checkable against invalidations of its tags for as long as it is kept (see
    /// [`EntryTags::held`]).
    fn held_copy(&self, key: &Key<F, S>, entry: Entry<F::Value>) -> Entry<F::Value> {
        Entry {
            tags: entry.tags.held(&key.tags),
            ..entry
        }
    }

    /// The answer a held entry gives, if its shape can.
    fn held_answer(&self, held: Option<&Entry<F::Value>>) -> Option<F::Output> {
        let held = held.filter(|h| h.is_current())?;
        answer::note_held(held);
        F::Shape::from_slot(held.slot.clone())
    }

    /// With `load_timeout` and a held entry that can answer: that answer, and how long to
    /// wait for the load before giving it.
    fn timed(&self, held: Option<&Entry<F::Value>>) -> Option<(F::Output, Duration)> {
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
    ) -> Result<F::Output, Option<Guard<'a, F>>> {
        let Some(result) = F::Shape::from_slot(entry.slot.clone()) else {
            return Err(guard);
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
        Ok(result)
    }

    /// What a load leaves in the local store. In process: the entry, through the guard
    /// (fenced by the placeholder) or the ticket. Elsewhere: the result handed to this
    /// process's waiters through the guard, unless the publish found its lease revoked (an
    /// invalidation: they load again), then removed. Without a result the guard is dropped,
    /// which hands the load to one waiter.
    pub(super) fn write_local(
        &self,
        key: &Key<F, S>,
        guard: Option<Guard<'_, F>>,
        ticket: Option<Ticket>,
        settled: &Settled<'_, F::Value>,
        valid: bool,
    ) {
        // A load that started before an invalidation of one of its tags writes nothing; its
        // waiters load again. (A write that races the check is not current either, and never
        // read.)
        let valid = valid && key.tags.current();
        if Self::LOCAL {
            // Not over a lease an invalidation revoked (an L1 in front of a shared store).
            let (Some(slot), true) = (settled.store.clone(), valid) else {
                return;
            };
            let entry = self.local_entry(key, slot.cloned(), settled.times);
            // A kept copy of an entry read before the load, or any copy in an L1 (another
            // process's change may have come since it was read or loaded): only if no
            // invalidation came since the ticket (the placeholder may be newer than it).
            let fenced = settled.times.retry_at_ms != 0 || Self::SHARED;
            match (guard, ticket) {
                (Some(guard), Some(ticket)) if fenced => {
                    self.fenced(ticket, || {
                        self.keep_local(key, || {
                            let _ = guard.insert(entry);
                        });
                    });
                }
                // Err: the placeholder was removed (an invalidation or `clear`).
                (Some(guard), _) => {
                    self.keep_local(key, || {
                        let _ = guard.insert(entry);
                    });
                }
                (None, Some(ticket)) => self.insert_local(key, ticket, entry),
                (None, None) => {}
            }
            return;
        }
        if let (Some(guard), Some(slot), true) = (guard, settled.share.clone(), valid) {
            // A result that is shared but not stored (a null while null caching is off) names
            // no entry: version 0.
            let version = if settled.store.is_some() {
                settled.times.version
            } else {
                0
            };
            let entry = Entry {
                slot: slot.cloned(),
                times: Times {
                    version,
                    ..settled.times
                },
                tags: EntryTags::of(&key.tags),
            };
            if guard.insert(entry).is_ok() {
                self.local.remove(&key.local);
            }
        }
    }
}

/// The load an async leader runs, made into a task-able future once its body can leave the
/// caller ([`AsyncBody::own`]).
struct Leader<F: Function, S: Store<F>>(&'static Engine<F, S>);

impl<F: Function, S: Store<F>> LoadJob<F::Output, (Key<F, S>, Lead<'static, F>)> for Leader<F, S> {
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

/// Why a load gave no value, for the log.
fn failure<R>(result: &Result<R, Panic>) -> &'static str {
    match result {
        Ok(_) => "returned an error",
        Err(_) => "panicked",
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
fn stored(times: &Times) -> Option<&Times> {
    (times.version != 0).then_some(times)
}

/// Notes the answer of this call's own load: a miss, with the times of what it stored; or
/// its failure (a kept value may answer next).
fn note_load<V>(outcome: Option<&Settled<'_, V>>) {
    match outcome {
        Some(settled) if settled.share.is_some() => {
            let times = settled.store.as_ref().map(|_| &settled.times);
            answer::note(CacheStatus::Miss, times);
        }
        _ => answer::note_load_failed(),
    }
}
