//! The cache-aside engine: every step written once, for every backend.
//!
//! | step | where |
//! |---|---|
//! | the hit path on the local store, invalidation, `clear`, the handle | this file |
//! | the miss path: backend read, re-entry, single-flight, lease, publish, hand-over | `load.rs` |
//! | running the body (panic accounting), shape mapping and the null policy | `settle.rs` |
//! | freshness phases: what a call does with the entry it found; XFetch | `phase.rs` |
//! | revalidation and early refresh, in the background or in place | `refresh.rs` |
//! | fail-safe: a kept value answers a failed or late load; the throttle | `fail_safe.rs` |
//! | the local store | `store.rs` |
//!
//! A backend ([`Backend`]) only reads, leases, publishes, invalidates and clears its own
//! entries. The in-process backend keeps its entries in the engine's local store; Redis keeps
//! them in Redis, uses the local store only to hand a leader's result to this process's
//! waiters, and answers through an in-process engine of its own (the fallback) while Redis is
//! unavailable.

mod fail_safe;
mod load;
mod phase;
mod refresh;
mod settle;
pub(crate) mod store;
mod waiters;

pub(crate) use load::within;

use std::any::TypeId;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use quick_cache::Equivalent;

use crate::answer::{self, CacheStatus, Cached};
use crate::backend::{Backend, BackendState, Memory};
use crate::bounds::CachedValue;
use crate::cell::Cell;
use crate::clock;
use crate::entry::{Entry, Slot, Times};
use crate::fence::{Fence, Ticket};
use crate::function::{Function, KeyFn, Shaped, Types};
use crate::handle::{CacheHandle, Erased};
use crate::invalidation::Invalidation;
use crate::policy::Policy;
use crate::shape::{Picked, Shape};
use crate::stats::{Counter, Counters, Stats};
use crate::tags::Tags;
use store::{Store, new_store};

/// The cache behind one `#[cached]` function `F` on the backend `B`: generated code keeps one
/// per owner type in the function's [`Cell`].
pub struct Engine<F: Types, B: BackendState<F>> {
    pub(crate) name: String,
    pub(crate) policy: Policy,
    pub(crate) store: Store<F::Key, F::Value>,
    fence: Fence,
    pub(crate) stats: Counters,
    /// Entries the store evicted to make room.
    evictions: Arc<AtomicU64>,
    /// The callers waiting for each load in flight (`cache.load` spans).
    waiters: waiters::Waiters,
    /// Keys with a revalidation or early refresh running in this process.
    refreshing: phase::Refreshing<F::Key>,
    /// Entries held for fail-safe by loads in flight in this process.
    kept: phase::Kept<F::Key, F::Value>,
    #[cfg_attr(
        not(feature = "redis"),
        allow(dead_code, reason = "the in-process backend keeps no state")
    )]
    pub(crate) state: B::State,
    handle: OnceLock<CacheHandle>,
}

/// Hand-overs in flight of a backend whose entries live elsewhere: a few per key at most.
const HAND_OVER_CAPACITY: u64 = 1024;

impl<F: Function, B: Backend<F>> Engine<F, B> {
    /// An engine named `name` with the settings of `policy`.
    pub(crate) fn new(name: String, policy: Policy) -> Self {
        clock::start();
        let capacity = if B::LOCAL {
            policy.max_entries
        } else {
            HAND_OVER_CAPACITY
        };
        let evictions = Arc::default();
        let store = new_store(capacity, &evictions);
        let fence = Fence::new(store.num_shards());
        Engine {
            state: B::state(&name, &policy),
            name,
            policy,
            store,
            fence,
            stats: Counters::new(),
            evictions,
            waiters: waiters::Waiters::default(),
            refreshing: phase::Refreshing::new(),
            kept: phase::Kept::new(),
            handle: OnceLock::new(),
        }
    }

    /// The hit path, for a backend whose entries live in the local store (for the others it
    /// is `None` at once, and the backend's read in [`Engine::load`] is the hit path).
    ///
    /// One shard read lock, one clone of the entry (the returned value), one clock load and
    /// one striped counter; no allocation and no lock shared by all keys. A miss is not
    /// counted here: the load that follows counts it. An entry that is not fresh, or whose
    /// XFetch draw says to refresh it early, goes to [`Engine::load`] too, which answers by
    /// its phase.
    #[inline]
    pub fn get(&self, lookup: &F::Lookup<'_>) -> Option<F::Output> {
        self.with_fresh(lookup, |entry| self.hit(entry.slot))
    }

    /// `f_entry`'s hit path: [`Engine::get`] with how the entry answered.
    pub fn get_entry(&self, lookup: &F::Lookup<'_>) -> Option<Cached<F::Output>> {
        let (result, status, times) = self.with_fresh(lookup, |entry| self.hit_noting(entry))?;
        let noted = answer::Noted::new(status, Some(times));
        Some(Cached::new(result, Some(noted), self.policy.stale))
    }

    /// [`Engine::get`] by an owned key (the fallback's hit path), noted for `f_entry`.
    pub(crate) fn get_key_noted(&self, key: &F::Key) -> Option<F::Output> {
        let (result, status, times) = self.with_fresh(key, |entry| self.hit_noting(entry))?;
        answer::note(status, Some(&times));
        Some(result)
    }

    /// `then` of the entry of `lookup` that answers a hit now: in the local store of a
    /// backend that keeps entries there (and, for an L1, may answer: it cannot have missed an
    /// invalidation), fresh, current, and not drawn by XFetch for an early refresh. One read
    /// of the coarse clock serves every check. (A closure, not a returned entry: moving the
    /// entry out through an `Option` cost the hit path about 5 ns here.)
    #[inline(always)]
    fn with_fresh<Q: Hash + Equivalent<F::Key> + ?Sized, R>(
        &self,
        lookup: &Q,
        then: impl FnOnce(Entry<F::Value>) -> Option<R>,
    ) -> Option<R> {
        if !B::LOCAL {
            return None;
        }
        let coarse = clock::coarse_ms();
        if B::REMOTE && !B::serves_local_at(coarse) {
            return None;
        }
        let entry = self.store.get(lookup)?;
        if !clock::before_at(coarse, entry.times.fresh_until_ms) || !entry.is_current() {
            return None;
        }
        if self.policy.early_refresh > 0.0 && self.policy.early(&entry.times, coarse) {
            phase::fire();
            return None;
        }
        then(entry)
    }

    /// A hit on `entry` (counted), with its status and times for `f_entry`.
    fn hit_noting(&self, entry: Entry<F::Value>) -> Option<(F::Output, CacheStatus, Times)> {
        let status = match entry.slot {
            Slot::Value(_) => CacheStatus::Hit,
            Slot::Null => CacheStatus::NullHit,
        };
        let times = entry.times;
        Some((self.hit(entry.slot)?, status, times))
    }

    /// The result of a hit on `slot`, counted; `None` for a null of a shape without nulls.
    #[inline]
    pub(crate) fn hit(&self, slot: Slot<F::Value>) -> Option<F::Output> {
        let counter = match slot {
            Slot::Value(_) => Counter::Hit,
            Slot::Null => Counter::NullHit,
        };
        let result = F::Shape::from_slot(slot)?;
        self.stats.add(counter);
        Some(result)
    }

    /// The key of a call, built on a miss, with the call's tags (their versions taken now,
    /// before its load starts).
    pub fn key(&self, lookup: &F::Lookup<'_>, tags: Tags) -> B::Key {
        B::key(self, lookup, tags)
    }

    /// Removes the entry of `lookup` everywhere it lives, and fences the loads of it in flight
    /// (in process by the fence, elsewhere by the backend's leases), so none of them writes
    /// its result back.
    pub fn invalidate(&self, lookup: &F::Lookup<'_>) -> Invalidation {
        self.invalidate_local(lookup);
        if !B::REMOTE {
            return Invalidation::Done;
        }
        if let Some(fallback) = B::fallback(self) {
            let _ = fallback.invalidate(lookup);
        }
        let done = B::invalidate(self, &B::key(self, lookup, Tags::NONE));
        if B::LOCAL {
            // An L1 copy read from Redis before its deletion may have landed since.
            self.invalidate_local(lookup);
        }
        done
    }

    /// The async twin of [`Engine::invalidate`].
    pub async fn invalidate_async(&self, lookup: &F::Lookup<'_>) -> Invalidation {
        self.invalidate_local(lookup);
        if !B::REMOTE {
            return Invalidation::Done;
        }
        if let Some(fallback) = B::fallback(self) {
            let _ = fallback.invalidate(lookup);
        }
        let done = B::invalidate_async(self, &B::key(self, lookup, Tags::NONE)).await;
        if B::LOCAL {
            self.invalidate_local(lookup);
        }
        done
    }

    /// Drops the local copy of `key` (an L1 copy another process invalidated), fenced.
    #[cfg_attr(
        not(feature = "redis"),
        allow(dead_code, reason = "only an L1 is told")
    )]
    pub(crate) fn drop_local(&self, key: &F::Key) {
        self.invalidate_local(key);
    }

    /// Fences every load and copy in flight, dropping nothing: another process changed a key,
    /// and a copy of it being made now must not be kept.
    #[cfg_attr(
        not(feature = "redis"),
        allow(dead_code, reason = "only an L1 is told")
    )]
    pub(crate) fn fence_all(&self) {
        self.fence.invalidate_all(|| {});
    }

    pub(crate) fn invalidate_local<Q: Hash + Equivalent<F::Key> + ?Sized>(&self, lookup: &Q) {
        let stripe = self.store.shard_index(lookup);
        self.fence.invalidate(stripe, || {
            self.store.remove(lookup);
        });
    }

    /// Taken before a load without a placeholder runs the body; see [`Fence`].
    pub(crate) fn ticket(&self, key: &F::Key) -> Ticket {
        self.fence.ticket(self.store.shard_index(key))
    }

    /// Runs `write` unless the key was invalidated since `ticket`.
    pub(crate) fn fenced(&self, ticket: Ticket, write: impl FnOnce()) {
        self.fence.publish(ticket, write);
    }

    /// Empties the in-process stores (the local one and the fallback), fencing loads in
    /// flight.
    pub(crate) fn clear_local(&self) {
        self.fence.invalidate_all(|| self.store.clear());
        if let Some(fallback) = B::fallback(self) {
            fallback.clear_local();
        }
    }

    /// The handle to this cache without its types, for `f_cache()`.
    pub fn handle(&'static self) -> &'static CacheHandle {
        self.handle.get_or_init(|| CacheHandle::new(self))
    }
}

impl<F: Function, B: Backend<F>> Erased for Engine<F, B> {
    fn name(&self) -> &str {
        &self.name
    }

    fn backend(&self) -> &'static str {
        B::NAME
    }

    /// This engine's counts, plus its fallback's.
    fn stats(&self) -> Stats {
        let mut own = self.stats.snapshot();
        // A backend whose entries live elsewhere has only hand-overs here: not a cache.
        own.evictions = if B::LOCAL {
            self.evictions.load(Relaxed)
        } else {
            0
        };
        own.size = u64::try_from(self.len()).unwrap_or(u64::MAX);
        // With an L1, every hit not answered from the L2 was the L1's.
        own.l1_hits = match (B::LOCAL, B::REMOTE) {
            (true, true) => (own.hits + own.null_hits).saturating_sub(own.l1_hits),
            _ => 0,
        };
        match B::fallback(self) {
            Some(fallback) => {
                let mut fallback_stats = fallback.stats.snapshot();
                fallback_stats.evictions = fallback.evictions.load(Relaxed);
                own + fallback_stats
            }
            None => own,
        }
    }

    fn clear(&self) -> Invalidation {
        self.clear_local();
        let done = B::clear(self);
        if B::LOCAL && B::REMOTE {
            // Copies read from Redis during the clear may have landed since.
            self.clear_local();
        }
        done
    }

    fn clear_async(&self) -> Pin<Box<dyn Future<Output = Invalidation> + Send + '_>> {
        self.clear_local();
        Box::pin(async move {
            let done = B::clear_async(self).await;
            if B::LOCAL && B::REMOTE {
                self.clear_local();
            }
            done
        })
    }

    /// Entries held in process: the local store's, plus the fallback's (for Redis, only the
    /// fallback holds entries, while Redis is unavailable).
    fn breaker(&self) -> Option<crate::handle::BreakerState> {
        B::breaker()
    }

    fn len(&self) -> usize {
        let fallback = B::fallback(self).map_or(0, |f| f.store.len());
        if B::LOCAL {
            self.store.len() + fallback
        } else {
            fallback
        }
    }
}

/// The in-process cache of the cached function `S` for `owner` (`Self` of a method), kept in
/// `cell`; `shape` is the shape the type checker picked for its return type. Registered at
/// first use.
#[inline]
pub fn memory_cache<S, M>(
    cell: &'static Cell,
    owner: TypeId,
    signature: S,
    shape: Picked<M>,
    init: impl FnOnce() -> (String, Policy),
) -> &'static Engine<Shaped<S, M>, Memory>
where
    S: KeyFn,
    M: Shape<S::Output> + 'static,
    M::Value: CachedValue,
{
    let _ = (signature, shape);
    in_cell(cell, owner, init)
}

/// The engine of `owner` in `cell`, made from `init`'s name and policy and registered at first
/// use: what every backend's constructor does once its bounds are checked.
#[inline]
pub(crate) fn in_cell<F: Function, B: Backend<F>>(
    cell: &'static Cell,
    owner: TypeId,
    init: impl FnOnce() -> (String, Policy),
) -> &'static Engine<F, B> {
    let make = || {
        let (name, policy) = init();
        Engine::new(name, policy)
    };
    cell.get_or_init(owner, make, |engine: &'static Engine<F, B>| {
        crate::registry::register(*engine.handle());
        B::on_create(engine);
    })
}
