//! Where entries live: the [`Store`] trait, and the stores this crate ships.
//!
//! The engine does every step of cache-aside once, for every store: the hit path on its local
//! store (quick_cache), single-flight, running the body, freshness phases, fail-safe,
//! fencing of local writes, counting, the L1 in front of a shared store and the in-process
//! fallback while a shared store fails. A store answers only for its own storage, through
//! operations that take `&'static self` (its per-cache state) and the call's key and never see
//! the engine:
//!
//! | operation | [`Memory`] (`Tier::Local`) | a shared store (Redis, or your own) |
//! |---|---|---|
//! | [`Store::read`] | never called: the hit path reads the engine's local store | fetch and decode |
//! | [`Store::lease`] | never called: the local placeholder or fence ticket fences | a lease held by one load across processes, or another process's value |
//! | [`Store::publish`] | never called | a write fenced by the lease |
//! | [`Store::invalidate`], [`Store::clear`] | never called | delete, and revoke the leases of loads in flight |
//! | when it fails | – | the engine counts and logs the error and answers from its fallback (`Tier::Shared`) or its L1 (`Tier::Tiered`) |
//!
//! Bring your own store: implement [`Store`] for a type of yours, with `TIER = Tier::Shared`,
//! and name it in the attribute (`#[cached(store = crate::MyStore)]`); `backend = "tiered"`
//! puts the engine's L1 in front of it ([`Tiered`]).

pub(crate) mod drive;
pub(crate) mod error;
pub(crate) mod local;
mod memory;
#[cfg(feature = "redis")]
pub(crate) mod redis;
mod waiting;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use crate::entry::{Slot, Times};
pub use crate::function::Function;
pub use crate::policy::Policy;
pub use crate::registry::Change;
pub use crate::tags::Tags;
pub use error::{SharedMemory, StoreError};
pub use memory::Memory;
pub use waiting::wait_for_another;
pub(crate) use waiting::{note_waiting, watching};

/// An operation of a store: a `'static` future the engine blocks on (sync callers, through
/// [`Store::block`]) or awaits (async callers, on their own task).
pub type Op<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'static>>;

/// An operation that is done already.
pub fn done<T: Send + 'static>(result: Result<T, StoreError>) -> Op<T> {
    Box::pin(std::future::ready(result))
}

/// Where a store's entries live, as the engine's hit path sees it (a `const`: the hit path
/// folds it away).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// In the engine's local store only: the hit path reads it, no operation of the store is
    /// ever called.
    Local,
    /// In a store shared by processes: every call reads it; the engine's local store only
    /// hands a leader's result to its waiters; an outage is answered by the fallback.
    Shared,
    /// A shared store with the engine's L1 in front ([`Tiered`]): the L1 answers while the
    /// store's change feed says it cannot have missed a change.
    Tiered,
}

/// The state of a store's connection, as the engine's fallback and handles read it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Health {
    /// Calls skip the store (its circuit breaker is open).
    pub open: bool,
    /// How many times the store recovered from an outage so far: the fallback is emptied when
    /// this moves, so that copies of an earlier outage are never served.
    pub recoveries: u64,
    /// An outage is under way and the store logged it once: failures are counted, not logged
    /// again.
    pub outage: bool,
}

/// What a cache's store is opened with.
#[derive(Clone, Copy, Debug)]
pub struct Setup<'a> {
    /// The cache's name (`name = "…"`, else the function's path).
    pub name: &'a str,
    /// The cache's settings.
    pub policy: &'a Policy,
    /// The engine keeps an L1 in front of this store ([`Tiered`]): the store reports changes
    /// other processes make to the cache's keys through [`changed`], and announces its own.
    pub l1: bool,
}

/// What a read of a store found.
#[derive(Debug)]
pub enum Read<V> {
    /// An entry, in whatever phase: the engine decides what it answers.
    Hit(Slot<V>, Times),
    /// No entry.
    Miss,
    /// An entry that cannot be used (counted as a store error, with this reason): the load
    /// that follows must overwrite it.
    Unusable(String),
}

/// How a load takes its lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// Read the value, else take the lease if it is free, else wait for the process that holds
    /// it (up to `lock_timeout`), then take it: `lock = "distributed"`.
    Wait,
    /// Read the value, else take the lease: a leader of this process after another's publish,
    /// or a waiter that gave up.
    ReadOrTake,
    /// Take the lease unconditionally: `f_refresh`, `lock = "none"`, an unusable entry.
    Take,
    /// A revalidation or early refresh of the entry fresh until this (cache clock, ms): take
    /// the lease if it is free and the entry was not refreshed since; never wait.
    Refresh(u64),
}

/// What asking for a lease gave.
#[derive(Debug)]
pub enum Leased<L, V> {
    /// Load, then publish under this lease.
    Lease(L),
    /// Another process published meanwhile: its entry.
    Found(Slot<V>, Times),
    /// A refresh found the lease held by another process's load: nothing to do.
    Busy,
}

/// What a publish did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Published {
    /// The lease still held when the entry was written: the result may be kept locally too.
    /// `false` when an invalidation revoked it (this process's waiters then load again).
    pub valid: bool,
    /// The version of the entry written, where the store names it (Redis: a hash of its
    /// bytes, what every reader computes); `None` keeps the load's own.
    pub version: Option<u64>,
}

impl Published {
    /// Written (or nothing to write), the lease valid, the load's own version.
    pub const VALID: Published = Published {
        valid: true,
        version: None,
    };
}

/// A store of entries for the cached function `F`; one value of it per cache (its
/// per-cache state), opened once when the cache is made.
///
/// What each operation must guarantee:
/// - **Fencing.** A publish is written only while its lease holds; [`Store::invalidate`] and
///   [`Store::clear`] revoke every lease in flight of what they delete, so that a load that
///   started before an invalidation never writes its result after it (the publish answers
///   `valid: false`). A lease dropped unpublished is released.
/// - **Leases.** At most one load per key holds a lease across processes; [`Start`] says how
///   to take it. A store without leases across processes may grant every request: the
///   engine's single-flight still holds within the process.
/// - **The change feed** (only with an L1, [`Setup::l1`]): a change another process makes to
///   a key of the cache (an invalidation, a write, a clear) is reported through [`changed`]
///   before it is acknowledged to its caller, or [`Store::serves_local_at`] says the L1 may
///   not answer until it is.
/// - **Tags.** [`Store::key`] is given the call's tags, with their versions in this process
///   when its load started. An entry written under tags that were invalidated since must read
///   as a miss: a store may keep the call's [`Tags`] with the entry and ask
///   [`Tags::current`], which sees every `invalidate_tag` of this process. Tag invalidations
///   across processes need versions kept in the store itself and moved on by `invalidate_tag`
///   (Redis: one key per tag, compared by the scripts that read); that hook is not public yet,
///   so a store of yours carries tags within one process, and [`tag_changed`] applies a tag
///   change its feed reports.
/// - **Building an operation does not block.** The call that returns an [`Op`] runs on the
///   caller's thread (an async caller's executor); the waiting belongs in the future.
/// - **Errors** are values: the engine counts them ([`Stats`](crate::Stats)), logs them
///   (at most one line per cache every 5 s) and answers without the store.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a store of cached entries",
    label = "named by `store = ...`",
    note = "implement `cache_runtime::store::Store` for it (see that trait's documentation)"
)]
pub trait Store<F: Function>: Send + Sync + Sized + 'static {
    /// For handles, metrics and spans (`"memory"`, `"redis"`, `"tiered"`).
    const NAME: &'static str;
    /// The name its change feed reports under ([`changed`]): the L1s in front of this store
    /// listen to it alone.
    const FEED: &'static str = Self::NAME;
    /// Where the entries live.
    const TIER: Tier;
    /// The store's part of a call's key (the engine keeps the in-process key and the tags).
    type Key: Send + Sync + Clone + 'static;
    /// A lease held while the body runs; dropped unpublished, it is released.
    type Lease: Send + Sync + 'static;

    /// The store of a new cache.
    fn open(setup: Setup<'_>) -> Self;

    /// The key of a call carrying `tags` (their versions taken when its load starts); an
    /// error if it has none (the call then goes on without the store).
    fn key(&self, lookup: &F::Lookup<'_>, tags: &Tags) -> Result<Self::Key, StoreError>;

    /// Reads the entry of `key`.
    fn read(&'static self, key: &Self::Key) -> Op<Read<F::Value>>;

    /// Reads many keys at once (a batch load, `Cache::get_many_or_load`): one answer per key,
    /// in the order of `keys`, each with the guarantees of [`Store::read`]. The default runs
    /// one `read` per key, concurrently; a store that reads many keys in one request (Redis:
    /// one `MGET`) overrides it.
    fn read_many(&'static self, keys: &[Self::Key]) -> Op<Vec<Result<Read<F::Value>, StoreError>>> {
        let reads: Vec<_> = keys.iter().map(|key| self.read(key)).collect();
        Box::pin(async move { Ok(drive::join_all(reads).await) })
    }

    /// Takes the lease of a load of `key`.
    fn lease(&'static self, key: &Self::Key, start: Start) -> Op<Leased<Self::Lease, F::Value>>;

    /// Publishes a load's result with its times under its lease (`None`: nothing to store;
    /// only release it).
    fn publish(
        &'static self,
        key: &Self::Key,
        lease: Self::Lease,
        stored: Option<(Slot<&F::Value>, Times)>,
    ) -> Op<Published>;

    /// Writes a kept entry under a lease its load still holds (fail-safe after
    /// `load_timeout`): the load publishes its own result when it ends. Whether the lease
    /// still held.
    fn keep(
        &'static self,
        key: &Self::Key,
        lease: &Self::Lease,
        stored: (Slot<&F::Value>, Times),
    ) -> Op<bool>;

    /// Removes the entry of `key` and revokes the leases of loads of it in flight. A store
    /// that keeps a failed invalidation to replay says so by failing.
    fn invalidate(&'static self, key: &Self::Key) -> Op<()>;

    /// Removes every entry of the cache, revoking leases as `invalidate` does.
    fn clear(&'static self) -> Op<()>;

    /// `f_refresh` wrote `key`: with an L1, the other processes are told.
    fn announce(&'static self, key: &Self::Key) -> Op<()> {
        let _ = key;
        done(Ok(()))
    }

    /// The name under which the change feed reports `key` ([`changed`]). Needed with an L1
    /// ([`Tiered`]): a key without one is never kept in the L1 (nothing could drop it).
    fn feed_key(key: &Self::Key) -> Option<&str> {
        let _ = key;
        None
    }

    /// The cache was made with an L1 in front: start reporting changes (once per cache).
    fn follow(&'static self) {}

    /// Whether the L1 may answer at `coarse` (the coarse cache clock, ms): `false` while the
    /// change feed may have missed a change. Read on every L1 hit: keep it to a load.
    #[inline]
    fn serves_local_at(coarse: u64) -> bool {
        let _ = coarse;
        true
    }

    /// The state of the store's connection; `None` for a store without I/O. A shared store
    /// should report it: without it the fallback is never emptied after a recovery (copies of
    /// an earlier outage could answer the next one), and handles report no breaker.
    fn health(&self) -> Option<Health> {
        None
    }

    /// The bytes of the entries this store wrote for the cache so far (`Stats::bytes_written`);
    /// 0 for a store that does not count them.
    fn bytes_written(&self) -> u64 {
        0
    }

    /// An estimate of what the cache's entries take in the store, made on request
    /// (`CacheHandle::shared_memory`) from a sample of `sample` entries; `None` for a store
    /// that cannot tell.
    fn memory_usage(&'static self, sample: usize) -> Option<Op<SharedMemory>> {
        let _ = sample;
        None
    }

    /// How long a copy the fallback keeps while this store fails lives at most.
    fn fallback_ttl(&self) -> Duration {
        Duration::from_secs(30)
    }

    /// Runs `op` for a sync caller: blocks the calling thread until it is done. The default
    /// polls it on the calling thread, parking between polls: a store whose operations need a
    /// runtime (tokio's I/O, timers) runs them on one of its own here, as Redis does.
    fn block<T: Send + 'static>(&'static self, op: Op<T>) -> Result<T, StoreError> {
        drive::block_on(op)
    }
}

/// The engine's L1 in front of the shared store `S` (`backend = "tiered"`): the L1 answers
/// while `S`'s change feed says it cannot have missed a change; every miss, write and
/// invalidation goes to `S`.
#[derive(Debug)]
pub struct Tiered<S>(S);

impl<F: Function, S: Store<F>> Store<F> for Tiered<S> {
    const NAME: &'static str = "tiered";
    const FEED: &'static str = S::FEED;
    const TIER: Tier = Tier::Tiered;
    type Key = S::Key;
    type Lease = S::Lease;

    fn open(setup: Setup<'_>) -> Self {
        const {
            assert!(
                matches!(S::TIER, Tier::Shared),
                "an L1 goes in front of a shared store"
            )
        };
        Tiered(S::open(Setup { l1: true, ..setup }))
    }

    #[inline]
    fn key(&self, lookup: &F::Lookup<'_>, tags: &Tags) -> Result<S::Key, StoreError> {
        self.0.key(lookup, tags)
    }

    fn read(&'static self, key: &S::Key) -> Op<Read<F::Value>> {
        self.0.read(key)
    }

    fn read_many(&'static self, keys: &[S::Key]) -> Op<Vec<Result<Read<F::Value>, StoreError>>> {
        self.0.read_many(keys)
    }

    fn lease(&'static self, key: &S::Key, start: Start) -> Op<Leased<S::Lease, F::Value>> {
        self.0.lease(key, start)
    }

    fn publish(
        &'static self,
        key: &S::Key,
        lease: S::Lease,
        stored: Option<(Slot<&F::Value>, Times)>,
    ) -> Op<Published> {
        self.0.publish(key, lease, stored)
    }

    fn keep(
        &'static self,
        key: &S::Key,
        lease: &S::Lease,
        stored: (Slot<&F::Value>, Times),
    ) -> Op<bool> {
        self.0.keep(key, lease, stored)
    }

    fn invalidate(&'static self, key: &S::Key) -> Op<()> {
        self.0.invalidate(key)
    }

    fn clear(&'static self) -> Op<()> {
        self.0.clear()
    }

    fn announce(&'static self, key: &S::Key) -> Op<()> {
        self.0.announce(key)
    }

    fn feed_key(key: &S::Key) -> Option<&str> {
        S::feed_key(key)
    }

    fn follow(&'static self) {
        self.0.follow();
    }

    #[inline]
    fn serves_local_at(coarse: u64) -> bool {
        S::serves_local_at(coarse)
    }

    fn health(&self) -> Option<Health> {
        self.0.health()
    }

    fn fallback_ttl(&self) -> Duration {
        self.0.fallback_ttl()
    }

    fn bytes_written(&self) -> u64 {
        self.0.bytes_written()
    }

    fn memory_usage(&'static self, sample: usize) -> Option<Op<SharedMemory>> {
        self.0.memory_usage(sample)
    }

    fn block<T: Send + 'static>(&'static self, op: Op<T>) -> Result<T, StoreError> {
        self.0.block(op)
    }
}

/// Reports a change another process made to the cache(s) named `cache` (`None`: every cache
/// with an L1 on this feed) to their L1s: what a store's change feed calls, with its
/// [`Store::FEED`] (an L1 in front of one store never hears another store's changes).
pub fn changed(feed: &str, cache: Option<&str>, change: Change<'_>) {
    crate::registry::changed(feed, cache, change);
}

/// Reports that another process invalidated the tag `tag`: every entry of this process that
/// carries it is gone (what `invalidate_tag` does in process), without telling any store.
pub fn tag_changed(tag: &str) {
    crate::tags::invalidate_local(tag);
}
