//! The types a load, fail-safe and refresh share, and joining a key's single-flight.
//!
//! Single-flight uses placeholders of the local store (quick_cache): the first caller that
//! misses a key gets a guard and leads the load; later callers of the key wait on it and take
//! the leader's result from the placeholder itself. If the leader's load returns an error,
//! panics, or its future is dropped, the guard is dropped without a result and quick_cache
//! hands it to one waiter, which loads next. A caller that has waited `lock_timeout` loads by
//! itself.

use std::time::Duration;

use quick_cache::sync::{EntryAction, EntryResult, GuardResult};

use crate::body::within_noting;
use crate::clock;
use crate::entry::Entry;
use crate::fence::Ticket;
use crate::function::Function;
use crate::reentry::Mark;
use crate::store::{Start, Store, note_waiting};

use super::Engine;

/// The placeholder guard of a load this caller leads.
pub(super) type Guard<'a, F> = quick_cache::sync::PlaceholderGuard<
    'a,
    <F as crate::function::Types>::Key,
    Entry<<F as crate::function::Types>::Value>,
    crate::store::local::Weights<
        <F as crate::function::Types>::Key,
        <F as crate::function::Types>::Value,
    >,
    quick_cache::DefaultHashBuilder,
    crate::store::local::Evictions<
        <F as crate::function::Types>::Key,
        <F as crate::function::Types>::Value,
    >,
>;

/// How a caller joined the single-flight of its key.
pub(super) enum Flight<'a, F: Function> {
    /// It leads the load.
    Lead(Guard<'a, F>),
    /// Another caller's load finished meanwhile: its result.
    Joined(Entry<F::Value>),
    /// It waited `lock_timeout` for another caller's load.
    TimedOut,
}

/// Keeps an entry that is still fresh, or kept after a failed load until its throttle ends
/// (taking a copy); swaps any other for a guard, and every entry when the local store may not
/// answer (an L1 whose invalidation log is not caught up).
pub(super) fn fresh_or_guard<V: Clone>(entry: &Entry<V>, trusted: bool) -> EntryAction<Entry<V>> {
    let answers = entry.is_fresh() || clock::now_ms() < entry.times.retry_at_ms;
    if trusted && answers && entry.is_current() {
        EntryAction::Retain(entry.clone())
    } else {
        EntryAction::ReplaceWithGuard
    }
}

/// One load led by a caller: how it started and what answers if it fails.
pub(super) struct Lead<'g, F: Function> {
    /// The single-flight placeholder, if the caller holds one.
    pub(super) guard: Option<Guard<'g, F>>,
    pub(super) mark: Mark,
    pub(super) start: Start,
    /// The entry that answers if the load fails (fail-safe), with its times.
    pub(super) held: Option<Entry<F::Value>>,
    /// In process, the fence ticket taken before `held` was read: a kept (re-armed) `held` is
    /// written back only if no invalidation came since.
    pub(super) ticket: Option<Ticket>,
    /// The caller's answer was counted already (a revalidation run in place): a fail-safe
    /// answer is not counted again.
    pub(super) counted: bool,
}

impl<F: Function, S: Store<F>> Engine<F, S> {
    /// Joins the single-flight of `key` (sync). On the in-process backend the store holds the
    /// entries, so an expired one is swapped for a guard; elsewhere it holds only hand-overs,
    /// which waiters take from the placeholder.
    pub(super) fn join(&self, key: &F::Key) -> Flight<'_, F> {
        let timeout = Some(self.policy.lock_timeout);
        if Self::LOCAL {
            let trusted = Self::serves_local();
            match self
                .local
                .entry(key, timeout, |_, e| fresh_or_guard(e, trusted))
            {
                EntryResult::Vacant(g) | EntryResult::Replaced(g, _) => Flight::Lead(g),
                EntryResult::Retained(entry) => Flight::Joined(entry),
                EntryResult::Timeout | EntryResult::Removed(..) => Flight::TimedOut,
            }
        } else {
            match self.local.get_value_or_guard(key, timeout) {
                GuardResult::Guard(g) => Flight::Lead(g),
                GuardResult::Value(entry) => Flight::Joined(entry),
                GuardResult::Timeout => Flight::TimedOut,
            }
        }
    }

    /// The async twin of `join`; waits at most `lock_timeout`.
    pub(super) async fn join_async(&self, key: &F::Key) -> Flight<'_, F> {
        let limit: Duration = self.policy.lock_timeout;
        if Self::LOCAL {
            let trusted = Self::serves_local();
            let found = self
                .local
                .entry_async(key, |_, e| fresh_or_guard(e, trusted));
            match within_noting(limit, found, note_waiting).await {
                Some(EntryResult::Vacant(g) | EntryResult::Replaced(g, _)) => Flight::Lead(g),
                Some(EntryResult::Retained(entry)) => Flight::Joined(entry),
                None | Some(EntryResult::Timeout | EntryResult::Removed(..)) => Flight::TimedOut,
            }
        } else {
            let found = self.local.get_value_or_guard_async(key);
            match within_noting(limit, found, note_waiting).await {
                Some(Err(g)) => Flight::Lead(g),
                Some(Ok(entry)) => Flight::Joined(entry),
                None => Flight::TimedOut,
            }
        }
    }
}
