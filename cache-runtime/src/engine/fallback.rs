//! The outage fallback in front of a shared store (`Tier::Shared`): an in-process engine of
//! its own that answers while the store fails, with local single-flight and entries that live
//! at most the store's `fallback_ttl`.
//!
//! It is kept warm: what this process reads from and writes to the store is copied into it,
//! so that an outage serves the keys this process already had instead of loading them again.
//! A copy is fenced by a ticket taken before the store's operation (an invalidation of the key
//! in this process meanwhile drops it). After the store recovers from an outage (its
//! [`Health::recoveries`](crate::store::Health) moves) the fallback starts empty, so entries
//! of an earlier outage are never served. An L1 (`Tier::Tiered`) is its own fallback: its
//! copies live at most `l1_ttl`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::body::{AsyncBody, SyncBody};
use crate::entry::{Entry, Slot, Times};
use crate::fence::Ticket;
use crate::function::Function;
use crate::policy::{Lock, Policy};
use crate::reentry::Mark;
use crate::store::{Memory, Store};
use crate::tags::EntryTags;

use super::{CallKey, Engine, Key};

/// What the cache chose per value: its `ttl_fn` and its weigher, if any.
type Chosen<F> = (
    Option<super::TtlFn<<F as crate::function::Types>::Value>>,
    Option<
        crate::weigh::Weigher<
            <F as crate::function::Types>::Key,
            <F as crate::function::Types>::Value,
        >,
    >,
);

/// A shared store's fallback engine, and the store's recoveries when it was last used.
pub(super) struct Fallback<F: crate::function::Types> {
    engine: Box<Engine<F, Memory>>,
    epoch: AtomicU64,
}

impl<F: Function> Fallback<F> {
    /// The fallback of the cache `name`: `ttl` bounds a copy's whole life (no stale phase
    /// after it, and jitter only shortens it).
    /// A `ttl_fn` of the cache chooses copies' lives too, within `ttl`.
    pub(super) fn new(
        name: &str,
        policy: &Policy,
        (ttl_fn, weigher): Chosen<F>,
        ttl: Duration,
    ) -> Self {
        let policy = Policy {
            ttl: Some(policy.ttl.map_or(ttl, |own| own.min(ttl))),
            null_ttl: policy.null_ttl.min(ttl),
            lock: Lock::Local,
            stale: Duration::ZERO,
            stale_if_error: Duration::ZERO,
            load_timeout: None,
            // The outage fallback answers while the store fails: its hits are not verified.
            verify: 0.0,
            ..*policy
        };
        let mut engine = Engine::new((name.to_owned(), policy, ttl_fn, weigher, None));
        engine.ttl_cap = Some(ttl);
        Fallback {
            engine: Box::new(engine),
            epoch: AtomicU64::new(0),
        }
    }

    pub(super) fn engine(&self) -> &Engine<F, Memory> {
        &self.engine
    }
}

/// Keeps what a read or publish found in the fallback, fenced by the ticket taken before it.
pub(super) struct Warm<'a, F: Function> {
    fallback: Option<(&'a Engine<F, Memory>, Ticket)>,
    key: &'a F::Key,
    tags: &'a crate::tags::Tags,
}

impl<F: Function> Warm<'_, F> {
    /// After a read: keeps a hit on a fresh entry.
    pub(super) fn read(self, entry: &Entry<F::Value>) {
        if entry.is_fresh() {
            self.keep(entry.slot.as_ref(), entry.times.version);
        }
    }

    /// After a publish that held its lease: keeps what it wrote (of `version`, the store's name
    /// of the entry, if it gave one), unless a kept (re-armed) value.
    pub(super) fn published(self, slot: Slot<&F::Value>, times: Times, version: Option<u64>) {
        if times.retry_at_ms == 0 {
            self.keep(slot, version.unwrap_or(0));
        }
    }

    /// Copies `slot`, the entry the store names `version` (0: unnamed), for the fallback's own
    /// life. A copy of the same entry with more than half its life ahead is left as it is: a
    /// hit would otherwise pay an insert (and a lock) only to push its end a little further.
    fn keep(self, slot: Slot<&F::Value>, version: u64) {
        let Some((fallback, ticket)) = self.fallback else {
            return;
        };
        if version != 0
            && let Some(copy) = fallback.local.peek(self.key)
            && copy.times.version == version
            && copy.is_current()
            && young(&copy.times)
        {
            return;
        }
        let (null, chosen, stored) = fallback.lifetime(&slot);
        if !stored {
            return;
        }
        let mut times = fallback.policy.times_from_now(null, chosen, 0);
        if version != 0 {
            // The store's name of the entry: what `f_entry` reports during an outage too.
            times.version = version;
        }
        let entry = Entry {
            times,
            slot: slot.cloned(),
            tags: EntryTags::of(self.tags),
        };
        let key = self.key.clone();
        fallback.fenced(ticket, || fallback.local.insert(key, entry));
    }
}

/// Whether a copy has more than half of its life ahead.
fn young(times: &Times) -> bool {
    let life = times.fresh_until_ms.saturating_sub(times.written_ms);
    crate::clock::before(times.written_ms.saturating_add(life / 2))
}

impl<F: Function, S: Store<F>> Engine<F, S> {
    /// The fallback, emptied first if the store recovered since its last use; `None` but for
    /// a shared store.
    pub(super) fn fallback(&'static self) -> Option<&'static Engine<F, Memory>> {
        self.current_fallback()
    }

    /// [`Engine::fallback`] for a caller that only reads it (stats, `len`).
    pub(super) fn current_fallback(&self) -> Option<&Engine<F, Memory>> {
        let fallback = self.fallback.as_ref()?;
        let recoveries = self.store.health().map_or(0, |h| h.recoveries);
        // A load first: every call of a shared store passes here, and a write per call would
        // bounce the line between cores; only the first call after a recovery swaps and
        // empties.
        if fallback.epoch.load(Relaxed) != recoveries
            && fallback.epoch.swap(recoveries, Relaxed) != recoveries
        {
            fallback.engine.clear_local();
        }
        Some(&fallback.engine)
    }

    /// Starts a copy of what the store's operation on `key` finds into the fallback.
    pub(super) fn warm<'k>(&'static self, key: &'k Key<F, S>) -> Warm<'k, F> {
        let fallback = self.fallback().map(|f| (f, f.ticket(&key.local)));
        Warm {
            fallback,
            key: &key.local,
            tags: &key.tags,
        }
    }

    /// A call while the store is unavailable: its in-process fallback.
    pub(super) fn fallback_load(
        &'static self,
        key: Key<F, S>,
        body: impl SyncBody<F::Output>,
    ) -> F::Output {
        match self.fallback() {
            Some(fallback) => match fallback.get_key_noted(&key.local) {
                Some(hit) => hit,
                None => fallback.load(in_process(key), body),
            },
            None => {
                let mark = Mark::new(self, &key.local);
                self.run(mark, self.watch(mark, &key.local), || body.call())
            }
        }
    }

    /// The async twin of `fallback_load`.
    pub(super) async fn fallback_load_async(
        &'static self,
        key: Key<F, S>,
        body: impl AsyncBody<F::Output>,
    ) -> F::Output {
        match self.fallback() {
            // Boxed: the fallback's own (never taken) fallback path would make this future
            // contain itself.
            Some(fallback) => match fallback.get_key_noted(&key.local) {
                Some(hit) => hit,
                None => Box::pin(fallback.load_async(in_process(key), body)).await,
            },
            None => {
                let mark = Mark::new(self, &key.local);
                let watch = self.watch(mark, &key.local);
                self.run_async(mark, watch, body.start()).await
            }
        }
    }
}

/// The key of a call as the in-process fallback takes it.
fn in_process<F: Function, S: Store<F>>(key: CallKey<F, S>) -> CallKey<F, Memory> {
    CallKey {
        local: key.local,
        tags: key.tags,
        store: Some(()),
    }
}
