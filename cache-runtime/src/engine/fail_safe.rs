//! Fail-safe (stale-if-error, DESIGN §10): a held entry answers in place of a load that
//! failed, panicked or outran `load_timeout`, and is kept with a throttle (`retry_at`) so that
//! no load of its key starts until the throttle ends. The idea is FusionCache's fail-safe and
//! RFC 5861's `stale-if-error`.
//!
//! A load that outran `load_timeout` keeps running where it runs (a thread of the library's
//! own, or a task of the caller's runtime) and stores its result when it ends: in process
//! through the fence ticket it took when it started, on a shared backend under the lease it
//! still holds, so an invalidation meanwhile still wins.

use crate::body::Panic;
use crate::clock;
use crate::entry::Entry;
use crate::fence::Ticket;
use crate::function::Function;
use crate::stats::Counter;
use crate::store::Store;
use crate::tags::EntryTags;

use super::flight::Guard;
use super::settle::Settled;
use super::shared::Wait;
use super::{Engine, Key};
use crate::stopwatch::Stopwatch;

/// Why a load gave no value, and whether its caller's answer was counted already.
#[derive(Clone, Copy)]
pub(super) struct Failed<'a> {
    pub(super) why: &'a str,
    pub(super) counted: bool,
}

impl Failed<'static> {
    /// The failure of a load's `result` (an error, or a panic).
    pub(super) fn of<R>(result: &Result<R, Panic>, counted: bool) -> Self {
        let why = match result {
            Ok(_) => "returned an error",
            Err(_) => "panicked",
        };
        Failed { why, counted }
    }
}

impl<F: Function, S: Store<F>> Engine<F, S> {
    /// Whether `held` may still answer for a failed load.
    pub(super) fn can_keep(&self, held: &Entry<F::Value>) -> bool {
        self.policy.can_answer(held, clock::now_ms())
    }

    /// What the held entry leaves after a failure: the same value, re-armed with the
    /// throttle, and the failure logged. It is written back only under the tags it was loaded
    /// with (a call of the same key whose tags render otherwise answers with it, and leaves it).
    fn rearm<'h>(
        &self,
        key: &Key<F, S>,
        held: &'h Entry<F::Value>,
        why: &str,
    ) -> Settled<'h, F::Value> {
        let now = clock::now_ms();
        let times = self.policy.rearmed(held, now);
        tracing::warn!(
            cache = %self.name,
            retry_in_ms = times.retry_at_ms.saturating_sub(now),
            "cache-runtime: a load {why}; the value kept by `stale_if_error` answers, and \
             no load of this key starts until the throttle ends"
        );
        Settled {
            store: held.tags.is_of(&key.tags).then(|| held.slot.as_ref()),
            share: Some(held.slot.as_ref()),
            times,
        }
    }

    /// The held entry answers a failed load: kept (re-armed) locally and on the backend,
    /// handed to this process's waiters, the lease released. `None` if this shape cannot
    /// answer with it (then the failure stands).
    #[allow(
        clippy::too_many_arguments,
        reason = "the parts of a load, and how it waits"
    )]
    pub(super) async fn fail_safe(
        &'static self,
        key: &Key<F, S>,
        guard: Option<Guard<'_, F>>,
        ticket: Option<Ticket>,
        lease: Option<S::Lease>,
        held: Entry<F::Value>,
        failed: Failed<'_>,
        wait: impl Wait,
    ) -> Option<F::Output> {
        let mut settled = self.rearm(key, &held, failed.why);
        let valid = match lease {
            Some(lease) => {
                let published = self.publish_with(key, lease, settled.stored(), wait);
                settled.published(published.await)
            }
            None => true,
        };
        self.write_local(key, guard, ticket, &settled, valid);
        self.kept_answer(held, failed.counted)
    }

    fn kept_answer(&self, held: Entry<F::Value>, counted: bool) -> Option<F::Output> {
        crate::answer::note_held(&held);
        let answer = <F::Shape as crate::shape::Shape<F::Output>>::from_slot(held.slot);
        if answer.is_some() && !counted {
            self.stats.add(Counter::StaleIfErrorHit);
        }
        answer
    }

    /// A load outran `load_timeout`: the held entry is kept (re-armed) locally and on the
    /// backend without releasing the lease, which the load still holds, and handed to this
    /// process's waiters. The caller answers with it (counted here).
    #[allow(
        clippy::too_many_arguments,
        reason = "the parts of a load, and how it waits"
    )]
    pub(super) async fn keep(
        &'static self,
        key: &Key<F, S>,
        guard: Option<Guard<'_, F>>,
        ticket: Option<Ticket>,
        lease: Option<&S::Lease>,
        held: &Entry<F::Value>,
        counted: bool,
        wait: impl Wait,
    ) {
        let why = "outran `load_timeout` and goes on in the background";
        let settled = self.rearm(key, held, why);
        let valid = match (lease, settled.stored()) {
            (Some(lease), Some(stored)) => self.keep_shared_with(key, lease, stored, wait).await,
            _ => true,
        };
        self.write_local(key, guard, ticket, &settled, valid);
        if !counted {
            self.stats.add(Counter::StaleIfErrorHit);
        }
    }

    /// What a load that no caller waits for leaves: its entry, or `None` (an error or a
    /// panic, counted). Runs where the load ran, with nothing borrowed.
    pub(super) fn late_entry(
        &self,
        result: Result<F::Output, Panic>,
        started: Stopwatch,
    ) -> Option<Entry<F::Value>> {
        match result {
            Ok(result) => {
                let settled = self.settle(&result, started.elapsed_us());
                let times = settled.times;
                // The tags are the key's, set when it is stored (`store_late`).
                settled.store.map(|slot| Entry {
                    slot: slot.cloned(),
                    times,
                    tags: EntryTags::NONE,
                })
            }
            // Counted by the load's watch.
            Err(_) => None,
        }
    }

    /// The held entry re-armed after a failed background load, if it may still answer.
    pub(super) fn rearmed_entry(
        &self,
        key: &Key<F, S>,
        held: &Entry<F::Value>,
    ) -> Option<Entry<F::Value>> {
        if !self.can_keep(held) {
            return None;
        }
        let settled = self.rearm(key, held, "failed in the background");
        let times = settled.times;
        // The tags are the key's, set when it is stored (`store_late`).
        settled.store.map(|slot| Entry {
            slot: slot.cloned(),
            times,
            tags: EntryTags::NONE,
        })
    }

    /// Stores what a load that no caller waits for left, under its lease and fence ticket;
    /// nothing (the lease released) if it left nothing.
    pub(super) async fn finish_late(
        &'static self,
        key: &Key<F, S>,
        lease: Option<S::Lease>,
        ticket: Option<Ticket>,
        entry: Option<Entry<F::Value>>,
        wait: impl Wait,
    ) {
        let Some(mut entry) = entry else {
            return;
        };
        let valid = match lease {
            Some(lease) => {
                let stored = Some((entry.slot.as_ref(), entry.times));
                let published = self.publish_with(key, lease, stored, wait).await;
                entry.times.version = published.version.unwrap_or(entry.times.version);
                published.valid
            }
            None => true,
        };
        self.store_late(key, ticket, entry, valid);
    }

    fn store_late(
        &self,
        key: &Key<F, S>,
        ticket: Option<Ticket>,
        entry: Entry<F::Value>,
        valid: bool,
    ) {
        if let (true, true, Some(ticket)) = (Self::LOCAL, valid, ticket) {
            let entry = self.local_entry(key, entry.slot, entry.times);
            self.insert_local(key, ticket, entry);
        }
    }
}
