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
//! | the types a load, fail-safe and refresh share; joining a key's single-flight | `flight.rs` |
//! | the calls to the store, their errors counted and logged | `shared.rs` |
//! | `f_entry`'s and `f_warm`'s miss paths | `noted.rs` |
//! | `verify`: picked hits re-loaded off the caller's path and compared | `verify.rs` |
//! | the outage fallback in front of a shared store | `fallback.rs` |
//! | the L1 in front of a shared store, fed by its change feed | `l1.rs` |
//!
//! A store ([`Store`]) only reads, leases, publishes, invalidates and clears its own entries,
//! and never sees the engine. An in-process store keeps its entries in the engine's local
//! store; a shared store keeps them elsewhere, the local store only hands a leader's result
//! to this process's waiters, and the engine's fallback answers while the store fails; a
//! tiered store keeps L1 copies in the local store.

mod fail_safe;
mod fallback;
mod flight;
mod l1;
mod lead;
mod load;
mod noted;
mod peek;
mod phase;
mod refresh;
mod settle;
mod shared;
mod verify;
mod waiters;

pub(crate) use verify::SameFn;

/// The key of a call of the cache `Engine<F, S>`.
pub(crate) type Key<F, S> = CallKey<F, S>;

use std::any::TypeId;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use quick_cache::Equivalent;

use crate::answer::{self, CacheStatus, Cached};
use crate::cell::Cell;
use crate::clock;
use crate::entry::{Entry, Slot, Times};
use crate::fence::{Fence, Ticket};
use crate::figures::Measured;
use crate::function::{Function, Types};
use crate::handle::{CacheHandle, Erased};
use crate::invalidation::{self, Invalidated, Invalidation};
use crate::policy::Policy;
use crate::shape::Shape;
use crate::stats::{Counter, Counters, Stats};
use crate::store::local::{Budget, Counts, Local, new_local, slot_bytes};
use crate::store::{Setup, Store, Tier};
use crate::tags::Tags;
use crate::weigh::Weigher;

/// The cache behind one `#[cached]` function `F` on the store `S`: generated code keeps one
/// per owner type in the function's [`Cell`].
pub struct Engine<F: Types, S> {
    name: &'static str,
    policy: Policy,
    /// The entries (in process), the L1 copies (tiered), or the hand-overs to waiters (shared).
    local: Local<F::Key, F::Value>,
    /// Where entries live besides: its per-cache state.
    store: S,
    fence: Fence,
    stats: Counters,
    /// Entries the local store evicted to make room, and values too heavy for it.
    counts: Counts,
    /// The callers waiting for each load in flight (`cache.load` spans).
    waiters: waiters::Waiters,
    /// Keys with a revalidation or early refresh running in this process.
    refreshing: phase::Refreshing<F::Key>,
    /// Entries held for fail-safe by loads in flight in this process.
    kept: phase::Kept<F::Key, F::Value>,
    /// A shared store's outage fallback: an in-process engine (`fallback.rs`).
    fallback: Option<fallback::Fallback<F>>,
    /// Tiered: where the L1 copies are, by the name the store's change feed gives them.
    l1: l1::Index<F::Key>,
    /// Store errors logged at most once every few seconds.
    warnings: shared::RateLimit,
    handle: OnceLock<CacheHandle>,
    /// `ttl_fn`: the lifetime of each stored value, chosen from the value (replaces `ttl`).
    ttl_fn: Option<TtlFn<F::Value>>,
    /// The longest life `ttl_fn` may give (a fallback's `fallback_ttl`); `None` for none.
    ttl_cap: Option<Duration>,
    /// `verify`: which hits are verified, and how.
    verifier: verify::Verifier<F::Value>,
    /// Load durations, verified ages and invalidations, for [`crate::report`].
    measured: Measured,
}

/// A lifetime chosen from the value to be stored (`ttl_fn`): inside `Ok`, inside `Some`.
/// `Duration::ZERO` means do not store.
pub(crate) type TtlFn<V> = fn(&V) -> Duration;

/// What makes an engine: its name, its settings, its `ttl_fn`, with `max_bytes` the weigher
/// of its keys and values, and with `verify` how its values are compared.
pub(crate) type Init<K, V> = (
    String,
    Policy,
    Option<TtlFn<V>>,
    Option<Weigher<K, V>>,
    Option<SameFn<V>>,
);

/// The key of one call on a miss: the in-process key (single-flight, the local store), the
/// call's tags with their versions when its load started, and the store's part (`None`: the
/// call has none, and goes on without the store).
pub struct CallKey<F: Function, S: Store<F>> {
    local: F::Key,
    tags: Tags,
    store: Option<S::Key>,
}

impl<F: Function, S: Store<F>> Clone for CallKey<F, S> {
    fn clone(&self) -> Self {
        CallKey {
            local: self.local.clone(),
            tags: self.tags.clone(),
            store: self.store.clone(),
        }
    }
}

/// Hand-overs in flight of a shared store: a few per key at most.
const HAND_OVER_CAPACITY: u64 = 1024;

impl<F: Function, S: Store<F>> Engine<F, S> {
    /// Entries (or L1 copies) live in the local store: the hit path reads it.
    const LOCAL: bool = !matches!(S::TIER, Tier::Shared);
    /// Entries live in a shared store: a miss reads it, and changes go to it.
    const SHARED: bool = !matches!(S::TIER, Tier::Local);
    /// The local store is an L1 in front of a shared store.
    const L1: bool = matches!(S::TIER, Tier::Tiered);

    /// An engine named `name` with the settings of `policy`.
    pub(crate) fn new((name, policy, ttl_fn, weigher, same): Init<F::Key, F::Value>) -> Self {
        clock::start();
        let budget = match Self::LOCAL {
            true => Budget {
                max_entries: policy.max_entries,
                max_bytes: policy.max_bytes.zip(weigher),
            },
            false => Budget {
                max_entries: HAND_OVER_CAPACITY,
                max_bytes: None,
            },
        };
        let counts = Counts::default();
        let verifier = verify::Verifier::new(policy.verify, same);
        let local = new_local(budget, &counts);
        let fence = Fence::new(local.num_shards());
        let store = S::open(Setup {
            name: &name,
            policy: &policy,
            l1: Self::L1,
        });
        let fallback = matches!(S::TIER, Tier::Shared).then(|| {
            fallback::Fallback::new(&name, &policy, (ttl_fn, weigher), store.fallback_ttl())
        });
        Engine {
            store,
            // Engines live as long as the process (each is made once per cache and leaked):
            // so does its name, which answers then carry without a reference count.
            name: Box::leak(name.into_boxed_str()),
            policy,
            local,
            fence,
            stats: Counters::new(verifier.every),
            counts,
            waiters: waiters::Waiters::default(),
            refreshing: phase::Refreshing::new(),
            kept: phase::Kept::new(),
            fallback,
            l1: l1::Index::new(),
            warnings: shared::RateLimit::new(),
            handle: OnceLock::new(),
            ttl_fn,
            ttl_cap: None,
            verifier,
            measured: Measured::new(),
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
        self.with_fresh(lookup, |entry| self.hit(entry.slot, entry.times.load_us))
    }

    /// [`Engine::get`] for a call that has no load to verify a hit with (a peek).
    pub(crate) fn get_unpicked(&self, lookup: &F::Lookup<'_>) -> Option<F::Output> {
        self.with_fresh(lookup, |e| self.hit_picking(e.slot, e.times.load_us, 0))
    }

    /// `f_entry`'s hit path: [`Engine::get`] with how the entry answered.
    pub fn get_entry(&self, lookup: &F::Lookup<'_>) -> Option<Cached<F::Output>> {
        let (result, status, times) = self.with_fresh(lookup, |entry| self.hit_noting(entry))?;
        let noted = answer::Noted::new(status, Some(times));
        Some(self.answer(result, Some(noted)))
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
        if !Self::LOCAL {
            return None;
        }
        let coarse = clock::coarse_ms();
        if Self::L1 && !S::serves_local_at(coarse) {
            return None;
        }
        let entry = self.local.get(lookup)?;
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
        Some((self.hit(entry.slot, times.load_us)?, status, times))
    }

    /// The result of a hit on `slot`, whose load took `load_us`, counted with the time it
    /// saved; `None` for a null of a shape without nulls, and for a hit `verify` picked (the
    /// miss path answers and verifies it).
    #[inline(always)]
    pub(crate) fn hit(&self, slot: Slot<F::Value>, load_us: u32) -> Option<F::Output> {
        self.hit_picking(slot, load_us, self.stats.verify_every())
    }

    /// [`Engine::hit`], where `verify` picks every `every`-th hit (0: none, for a call with
    /// no load to verify with, such as a peek).
    #[inline(always)]
    pub(crate) fn hit_picking(
        &self,
        slot: Slot<F::Value>,
        load_us: u32,
        every: u64,
    ) -> Option<F::Output> {
        let counter = match slot {
            Slot::Value(_) => Counter::Hit,
            Slot::Null => Counter::NullHit,
        };
        let result = F::Shape::from_slot(slot)?;
        if !self.stats.add_hit(counter, load_us, every) && self.picked(counter, load_us) {
            return None;
        }
        Some(result)
    }

    /// A hit `verify` picked: marked for the miss path, which answers and verifies it; or,
    /// when the cache has as many verifications in flight as it may, counted here as a hit
    /// and a skipped verification (`false`: this path answers).
    #[cold]
    #[inline(never)]
    fn picked(&self, counter: Counter, load_us: u32) -> bool {
        if self.verifier.has_room() {
            verify::pick(self.address());
            return true;
        }
        self.stats.add_answer(counter, load_us);
        self.measured.verify_skipped.fetch_add(1, Relaxed);
        false
    }

    /// The key of a call, built on a miss, with the call's tags (their versions taken now,
    /// before its load starts).
    pub fn key(&self, lookup: &F::Lookup<'_>, tags: Tags) -> CallKey<F, S> {
        let store = match Self::SHARED {
            false => None,
            true => match self.store.key(lookup, &tags) {
                Ok(key) => Some(key),
                Err(e) => {
                    self.store_error(&e);
                    None
                }
            },
        };
        CallKey {
            local: F::to_key(lookup),
            tags,
            store,
        }
    }

    /// Removes the entry of `lookup` everywhere it lives, and fences the loads of it in flight
    /// (in process by the fence, elsewhere by the store's leases), so none of them writes
    /// its result back.
    pub fn invalidate(&'static self, lookup: &F::Lookup<'_>) -> Invalidation {
        if !Self::SHARED {
            self.invalidate_local(lookup);
            self.tell(Invalidated::Key { cache: self.name });
            return Invalidation::Done;
        }
        let done = shared::now(self.invalidate_with(lookup, shared::Blocking));
        self.tell(Invalidated::Key { cache: self.name });
        done
    }

    /// The async twin of [`Engine::invalidate`].
    pub async fn invalidate_async(&'static self, lookup: &F::Lookup<'_>) -> Invalidation {
        let done = self.invalidate_with(lookup, shared::Awaiting).await;
        self.tell(Invalidated::Key { cache: self.name });
        done
    }

    /// `f_entry`'s answer of `result` by `noted`, with this cache's name and stale windows.
    pub(crate) fn answer<R>(&self, result: R, noted: Option<answer::Noted>) -> Cached<R> {
        Cached::new(result, noted, self.policy.windows()).of_cache(self.name)
    }

    /// Tells the invalidation hooks (`on_invalidate`) of `what`, done in this process.
    fn tell(&self, what: Invalidated<'_>) {
        self.measured.invalidations.fetch_add(1, Relaxed);
        invalidation::tell(what);
    }

    /// An invalidation: the local copy and the fallback's dropped, then the store's entry;
    /// then, with an L1, the local copy again (one read from the store before its deletion may
    /// have landed since).
    async fn invalidate_with(
        &'static self,
        lookup: &F::Lookup<'_>,
        wait: impl shared::Wait,
    ) -> Invalidation {
        self.invalidate_local(lookup);
        if !Self::SHARED {
            return Invalidation::Done;
        }
        let key = self.key(lookup, Tags::NONE);
        self.invalidate_shared(&key, wait).await
    }

    /// The shared half of an invalidation of `key`, whose local copy is dropped already: the
    /// fallback's copy, the store's entry, then, with an L1, the local copy again.
    async fn invalidate_shared(
        &'static self,
        key: &CallKey<F, S>,
        wait: impl shared::Wait,
    ) -> Invalidation {
        if let Some(fallback) = self.fallback() {
            fallback.invalidate_local(&key.local);
        }
        let done = match &key.store {
            Some(at) => Some(wait.wait(&self.store, self.store.invalidate(at)).await),
            None => None,
        };
        let done = self.invalidated(done);
        if Self::L1 {
            self.invalidate_local(&key.local);
        }
        done
    }

    /// Fences every load and copy in flight, dropping nothing: another process changed a key,
    /// and a copy of it being made now must not be kept.
    pub(crate) fn fence_all(&self) {
        self.fence.invalidate_all(|| {});
    }

    pub(crate) fn invalidate_local<Q: Hash + Equivalent<F::Key> + ?Sized>(&self, lookup: &Q) {
        let stripe = self.local.shard_index(lookup);
        self.fence.invalidate(stripe, || {
            self.local.remove(lookup);
        });
    }

    /// Taken before a load without a placeholder runs the body; see [`Fence`].
    pub(crate) fn ticket(&self, key: &F::Key) -> Ticket {
        self.fence.ticket(self.local.shard_index(key))
    }

    /// Runs `write` unless the key was invalidated since `ticket`.
    pub(crate) fn fenced(&self, ticket: Ticket, write: impl FnOnce()) {
        self.fence.publish(ticket, write);
    }

    /// Empties the in-process stores (the local one and the fallback), fencing loads in
    /// flight.
    pub(crate) fn clear_local(&self) {
        self.fence.invalidate_all(|| self.local.clear());
        if let Some(fallback) = &self.fallback {
            fallback.engine().clear_local();
        }
    }

    /// The handle to this cache without its types, for `f_cache()`.
    pub fn handle(&'static self) -> &'static CacheHandle {
        self.handle.get_or_init(|| CacheHandle::new(self))
    }
}

impl<F: Function, S: Store<F>> Engine<F, S> {
    /// A clear, after the in-process stores were emptied: the store's entries; then, with an
    /// L1, the local store again (copies read from the store during the clear may have landed
    /// since).
    async fn clear_with(&'static self, wait: impl shared::Wait) -> Invalidation {
        if !Self::SHARED {
            return Invalidation::Done;
        }
        let done = wait.wait(&self.store, self.store.clear()).await;
        let done = self.invalidated(Some(done));
        if Self::L1 {
            self.clear_local();
        }
        done
    }
}

impl<F: Function, S: Store<F>> Erased for Engine<F, S> {
    fn name(&self) -> &str {
        self.name
    }

    fn backend(&self) -> &'static str {
        S::NAME
    }

    fn figures(&self) -> crate::figures::Figures {
        self.measured.snapshot(self.policy.verify)
    }

    /// This engine's counts, plus its fallback's.
    fn stats(&self) -> Stats {
        let mut own = self.stats.snapshot();
        // A shared store's engine has only hand-overs here: not a cache.
        if Self::LOCAL {
            self.memory(&mut own);
        }
        own.bytes_written = self.store.bytes_written();
        self.measured.add_to(&mut own);
        own.size = u64::try_from(self.len()).unwrap_or(u64::MAX);
        // With an L1, every hit not answered from the L2 was the L1's.
        own.l1_hits = match Self::L1 {
            true => (own.hits + own.null_hits).saturating_sub(own.l1_hits),
            false => 0,
        };
        match self.current_fallback() {
            Some(fallback) => {
                let mut fallback_stats = fallback.stats.snapshot();
                fallback.memory(&mut fallback_stats);
                own + fallback_stats
            }
            None => own,
        }
    }

    fn clear(&'static self) -> Invalidation {
        self.clear_local();
        let done = shared::now(self.clear_with(shared::Blocking));
        self.tell(Invalidated::Cache { cache: self.name });
        done
    }

    /// The in-process stores are emptied at the call, the store's entries when the future
    /// runs.
    fn clear_async(&'static self) -> Pin<Box<dyn Future<Output = Invalidation> + Send>> {
        self.clear_local();
        Box::pin(async move {
            let done = self.clear_with(shared::Awaiting).await;
            self.tell(Invalidated::Cache { cache: self.name });
            done
        })
    }

    fn shared_memory(
        &'static self,
        sample: usize,
    ) -> Option<Result<crate::store::SharedMemory, crate::store::StoreError>> {
        let op = self.store.memory_usage(sample)?;
        Some(self.store.block(op))
    }

    fn shared_memory_async(&'static self, sample: usize) -> crate::handle::Sizing {
        let op = self.store.memory_usage(sample);
        Box::pin(async move {
            match op {
                Some(op) => Some(op.await),
                None => None,
            }
        })
    }

    fn breaker(&self) -> Option<crate::handle::BreakerState> {
        use crate::handle::BreakerState;
        let health = self.store.health()?;
        Some(match health.open {
            true => BreakerState::Open,
            false => BreakerState::Closed,
        })
    }

    /// Entries held in process: the local store's, plus the fallback's (for a shared store,
    /// only the fallback holds entries, while the store is unavailable).
    fn len(&self) -> usize {
        let fallback = self.current_fallback().map_or(0, |f| f.local.len());
        if Self::LOCAL {
            self.local.len() + fallback
        } else {
            fallback
        }
    }
}

/// Forgets an XFetch draw of the hit path that fired on this thread, and a hit `verify`
/// picked (it is answered, unverified): a batch reads many keys
/// before it loads any, and the mark would reach another key's load (its keys are not
/// refreshed early).
pub(crate) fn forget_fired() {
    let _ = phase::take_fired();
    let _ = verify::take_picked(0);
}

/// The engine of `owner` in `cell`, made from `init`'s name and policy and registered at first
/// use: what every store's constructor does once its bounds are checked. An L1 starts
/// listening to its store's change feed.
#[inline]
pub(crate) fn in_cell<F: Function, S: Store<F>>(
    cell: &'static Cell,
    owner: TypeId,
    init: impl FnOnce() -> Init<F::Key, F::Value>,
) -> &'static Engine<F, S> {
    cell.get_or_init(owner, || Engine::new(init()), Engine::opened)
}

/// An engine made at run time (a [`Cache`](crate::Cache)): it lives as long as the process,
/// like the engine of a cached function, and is registered at once.
pub(crate) fn leaked<F: Function, S: Store<F>>(
    init: Init<F::Key, F::Value>,
) -> &'static Engine<F, S> {
    let engine: &'static Engine<F, S> = Box::leak(Box::new(Engine::new(init)));
    engine.opened();
    engine
}

impl<F: Function, S: Store<F>> Engine<F, S> {
    /// Adds the local store's memory figures to `stats`: its evictions, oversized values,
    /// bytes held and budget.
    fn memory(&self, stats: &mut Stats) {
        stats.evictions = self.counts.evictions.load(Relaxed);
        stats.oversized = self.counts.oversized.load(Relaxed);
        stats.max_bytes = self.policy.max_bytes.map_or(0, |_| self.local.capacity());
        stats.memory_bytes = match self.policy.max_bytes {
            Some(_) => self.local.weight(),
            // The entries' slots only: without a weigher, what values own is not known.
            None => {
                let slot = slot_bytes::<F::Key, F::Value>();
                u64::try_from(self.local.len().saturating_mul(slot)).unwrap_or(u64::MAX)
            }
        };
    }

    /// A new engine is registered; an L1 starts listening to its store's change feed.
    fn opened(&'static self) {
        #[cfg(feature = "metrics")]
        crate::metrics::start();
        crate::registry::register(*self.handle());
        self.created();
    }
}
