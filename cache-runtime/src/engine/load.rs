//! The miss path, as sync and async twins: the store's read, re-entry, single-flight
//! (`flight.rs`), the lease, the body, the publish and the hand-over to this process's waiters.
//! With `lock = "none"` every miss loads.
//!
//! Fencing against invalidation: a local write through a placeholder guard fails by itself
//! once an invalidation removed the placeholder (quick_cache's documented behaviour, held by
//! `tests/invalidate.rs`); a local write without one (`lock = "none"`, a waiter that gave up,
//! `f_refresh`) is fenced by a ticket (`fence.rs`); a backend's write is fenced by its lease.

use crate::body::{AsyncBody, SyncBody};
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

use super::flight::{Flight, Guard, Lead};
use super::lead::{Owner, stored};
use super::phase::Next;
use super::settle::Settled;
use super::shared::Fetched;
use super::{Engine, Key};
use crate::answer::{self, CacheStatus};

/// A call's fence ticket and what the store held for its key (`None`: in process only).
pub(crate) type Read<V> = (Option<Ticket>, Option<Fetched<V>>);

/// What a call does after looking at what the cache holds for its key.
enum Step<F: Function> {
    /// Answer with this (counted).
    Answer(F::Output),
    /// Answer with this (counted) and verify the hit on the entry (`verify`).
    Verify(Entry<F::Value>, F::Output),
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
            // A cache with `verify` reads it too: a load may have put an entry in place since
            // the hit path looked, and a batch's hits come here (it forgets the hit path's
            // picks).
            None if self.policy.has_phases() || self.verifier.every != 0 => {
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
                Next::Answer { entry, counter, .. } => {
                    let hit = matches!(counter, Counter::Hit | Counter::NullHit);
                    // Picked here: a shared store's hit, or an entry found here.
                    let every = self.verifier.every;
                    let verify = hit && every != 0 && self.stats.pick(every);
                    let kept = verify.then(|| entry.clone());
                    match F::Shape::from_slot(entry.slot) {
                        Some(result) => {
                            answer::note_counted(counter, &entry.times);
                            self.stats.add_answer(counter, entry.times.load_us);
                            if Self::L1 && hit {
                                self.stats.add(Counter::L2Answer);
                            }
                            match kept {
                                Some(entry) => Step::Verify(entry, result),
                                None => Step::Answer(result),
                            }
                        }
                        None => Step::Load(None),
                    }
                }
                Next::Load { held } => Step::Load(held),
            }
        }
    }

    /// Whether a read was an unusable entry: the load that follows must overwrite it.
    fn unusable(read: &Option<Fetched<F::Value>>) -> bool {
        matches!(read, Some(Fetched::Unusable))
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
        if let Some((entry, result)) = self.picked_hit(&key) {
            self.verify(&key, &entry, body);
            return result;
        }
        let ticket = self.phase_ticket(&key);
        let read = Self::SHARED.then(|| self.fetch(&key));
        let unusable = Self::unusable(&read);
        let held = match self.found(&key, read, ticket) {
            Step::Answer(result) => return result,
            Step::Verify(entry, result) => {
                self.verify(&key, &entry, body);
                return result;
            }
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

    /// The miss path of an async cached function; the twin of [`Engine::load`]. (A plain
    /// `fn`: an `async fn` around [`Engine::load_read_async`] would nest a second state
    /// machine in every async miss.)
    pub fn load_async(
        &'static self,
        key: Key<F, S>,
        body: impl AsyncBody<F::Output>,
    ) -> impl Future<Output = F::Output> {
        self.load_read_async(key, None, body)
    }

    /// The calls of a batch: their fence tickets, then one read of every key from the store
    /// (`Store::read_many`): what [`Engine::load_read_async`] goes on from, per key.
    pub(crate) async fn read_many_async(&'static self, keys: &[Key<F, S>]) -> Vec<Read<F::Value>> {
        let tickets: Vec<_> = keys.iter().map(|key| self.phase_ticket(key)).collect();
        let reads: Vec<Option<Fetched<F::Value>>> = match Self::SHARED {
            false => keys.iter().map(|_| None).collect(),
            true => self
                .fetch_many_async(keys)
                .await
                .into_iter()
                .map(Some)
                .collect(),
        };
        tickets.into_iter().zip(reads).collect()
    }

    /// [`Engine::load_async`] from `read`, the call's fence ticket and what the store held
    /// (taken in that order; `None`: take them now).
    pub(crate) async fn load_read_async(
        &'static self,
        key: Key<F, S>,
        read: Option<Read<F::Value>>,
        body: impl AsyncBody<F::Output>,
    ) -> F::Output {
        if read.is_none()
            && let Some((entry, result)) = self.picked_hit(&key)
        {
            self.verify_async(&key, &entry, body);
            return result;
        }
        let (ticket, read) = match read {
            Some(given) => given,
            None => {
                let ticket = self.phase_ticket(&key);
                let read = match Self::SHARED {
                    false => None,
                    true => Some(self.fetch_async(&key).await),
                };
                (ticket, read)
            }
        };
        let unusable = Self::unusable(&read);
        let held = match self.found(&key, read, ticket) {
            Step::Answer(result) => return result,
            Step::Verify(entry, result) => {
                self.verify_async(&key, &entry, body);
                return result;
            }
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
        match body.own((key, lead), Owner(self), limit) {
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
        if self.unstored(&result) {
            // Nothing written (a zero `ttl_fn`, a null without null caching): the entry from
            // before must not outlive the write that replaced it.
            self.invalidate_local(&key.local);
            let _ = super::shared::now(self.invalidate_shared(&key, super::shared::Blocking));
            return result;
        }
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
        if self.unstored(&result) {
            self.invalidate_local(&key.local);
            let _ = self.invalidate_shared(&key, super::shared::Awaiting).await;
            return result;
        }
        self.announce_async(&key).await;
        if Self::L1 {
            self.invalidate_local(&key.local);
        }
        result
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

    /// A copy of an entry of the local store, kept while a load runs (to answer if it fails):
    /// checkable against invalidations of its tags for as long as it is kept (see
    /// [`EntryTags::held`]).
    fn held_copy(&self, key: &Key<F, S>, entry: Entry<F::Value>) -> Entry<F::Value> {
        Entry {
            tags: entry.tags.held(&key.tags),
            ..entry
        }
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
