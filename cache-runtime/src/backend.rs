//! The seam between the engine and where entries live.
//!
//! The engine (`engine/`) does every step of cache-aside once: the hit path on the local
//! store, single-flight, running the body, shape mapping and the null policy, fencing of local
//! writes, counting and the handle. A backend answers only for its own storage:
//!
//! | step | [`Memory`] | `Redis` (feature `redis`) |
//! |---|---|---|
//! | where entries live | the engine's local store | Redis (the local store only hands results to waiters) |
//! | `read` | – (the hit path reads the local store) | `GET` and decode |
//! | `lease` | – (the local placeholder or fence ticket fences) | a Redis lease (`SET NX PX`), or another process's value |
//! | `publish` | – (the engine writes the local store) | a write fenced by the lease |
//! | `invalidate`, `clear` | – (the engine clears the local store) | `DEL` value and lock; `SCAN` + `UNLINK` |
//! | when it fails | – | the call goes to the state's in-process fallback, itself an engine over [`Memory`] |
//!
//! The per-cache state a backend needs ([`BackendState::State`]) and its key form are named
//! with no bound on the function but [`Types`], so that a cache's type is well-formed for any
//! function; the operations ([`Backend`]) need the function's full bounds.

// The trait is public only so that generated code can name the engine's backend type; its
// operations, and the enums they take, are the crate's own.
#![allow(private_interfaces, private_bounds)]

use std::future::Future;

use crate::engine::Engine;
use crate::entry::{Entry, Slot, Times};
use crate::function::{Function, Types};
use crate::invalidation::Invalidation;
use crate::policy::Policy;
use crate::tags::Tags;

/// What a publish did.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Published {
    /// The lease still held: the result may be kept locally too.
    pub(crate) valid: bool,
    /// The version of the entry written, where the backend names it (Redis: a hash of its
    /// bytes, what every reader computes); `None` keeps the load's own.
    pub(crate) version: Option<u64>,
}

impl Published {
    /// Nothing to publish: the entry lives in process.
    pub(crate) const IN_PROCESS: Published = Published {
        valid: true,
        version: None,
    };
}

/// What a backend keeps per cache, and the key of one call.
pub trait BackendState<F: Types>: Sized + Send + Sync + 'static {
    /// Per-cache state.
    type State;
    /// The key of one call: the local key and whatever the backend needs besides.
    type Key;
}

/// What a read of the backend found.
#[cfg_attr(
    not(feature = "redis"),
    allow(dead_code, reason = "only backends whose entries live elsewhere read")
)]
pub(crate) enum Read<V> {
    /// An entry, in whatever phase: the engine decides what it answers.
    Hit(Entry<V>),
    Miss,
    /// An entry that cannot be used (counted): the load that follows must overwrite it.
    Unusable,
    /// The backend did not answer: the call goes to the fallback.
    Failed,
}

/// How a load takes its lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Start {
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
#[cfg_attr(
    not(feature = "redis"),
    allow(
        dead_code,
        reason = "only shared backends meet another process's value"
    )
)]
pub(crate) enum Leased<L, V> {
    /// Load, then publish under this lease (`None`: the backend failed; load without one).
    Lease(Option<L>),
    /// Another process published meanwhile.
    Found(Entry<V>),
    /// A refresh found the lease held by another process's load: nothing to do.
    Busy,
}

/// The operations of a backend, for a function with every bound.
pub trait Backend<F: Function>:
    BackendState<F, State: Send + Sync + 'static, Key: Send + Sync + Clone + 'static>
{
    /// `"memory"` or `"redis"`, for handles.
    const NAME: &'static str;
    /// Entries live in the engine's local store: the hit path reads it, and loads write it.
    const LOCAL: bool;
    /// Entries also live in a shared store: a miss of the local store reads it, and changes
    /// go to it (Redis, and tiered's L2).
    const REMOTE: bool;
    /// A lease held while the body runs; dropped unpublished, it is released.
    type Lease: Send + Sync + 'static;

    /// The state of a new cache.
    fn state(name: &str, policy: &Policy) -> Self::State;

    /// The key of a call carrying `tags` (taken when its load starts).
    fn key(engine: &Engine<F, Self>, lookup: &F::Lookup<'_>, tags: Tags) -> Self::Key;

    /// The local part of a key (single-flight and the local store).
    fn local(key: &Self::Key) -> &F::Key;

    /// The tags of a key's call, with their versions when its load started.
    fn tags(key: &Self::Key) -> &Tags;

    /// The key as the in-process fallback takes it.
    fn into_local(key: Self::Key) -> Tagged<F::Key>;

    /// Reads the entry (sync).
    fn read(engine: &Engine<F, Self>, key: &Self::Key) -> Read<F::Value>;

    /// Reads the entry (async).
    fn read_async(
        engine: &Engine<F, Self>,
        key: &Self::Key,
    ) -> impl Future<Output = Read<F::Value>> + Send;

    /// Takes the lease of a load (sync).
    fn lease(
        engine: &Engine<F, Self>,
        key: &Self::Key,
        start: Start,
    ) -> Leased<Self::Lease, F::Value>;

    /// Takes the lease of a load (async).
    fn lease_async(
        engine: &Engine<F, Self>,
        key: &Self::Key,
        start: Start,
    ) -> impl Future<Output = Leased<Self::Lease, F::Value>> + Send;

    /// Publishes a load's result with its times under its lease (`None`: nothing to store;
    /// only release it). Returns whether the lease still held (an invalidation revokes it),
    /// and the version of what it wrote.
    fn publish(
        engine: &Engine<F, Self>,
        key: &Self::Key,
        lease: Self::Lease,
        stored: Option<(Slot<&F::Value>, Times)>,
    ) -> Published;

    /// The async twin of [`Backend::publish`].
    fn publish_async(
        engine: &Engine<F, Self>,
        key: &Self::Key,
        lease: Self::Lease,
        stored: Option<(Slot<&F::Value>, Times)>,
    ) -> impl Future<Output = Published> + Send;

    /// Writes a kept entry under a lease that its load still holds (fail-safe after
    /// `load_timeout`): the load publishes its own result when it ends.
    fn keep(
        engine: &Engine<F, Self>,
        key: &Self::Key,
        lease: &Self::Lease,
        stored: (Slot<&F::Value>, Times),
    ) -> bool;

    /// The async twin of [`Backend::keep`].
    fn keep_async(
        engine: &Engine<F, Self>,
        key: &Self::Key,
        lease: &Self::Lease,
        stored: (Slot<&F::Value>, Times),
    ) -> impl Future<Output = bool> + Send;

    /// Removes the entry and revokes the leases of loads in flight (sync); `Pending` when
    /// the backend could not be reached (then it is kept to replay).
    fn invalidate(engine: &Engine<F, Self>, key: &Self::Key) -> Invalidation;

    /// The async twin of [`Backend::invalidate`].
    fn invalidate_async(
        engine: &Engine<F, Self>,
        key: &Self::Key,
    ) -> impl Future<Output = Invalidation> + Send;

    /// Removes every entry of the cache from the backend; `Pending` as for `invalidate`.
    fn clear(engine: &Engine<F, Self>) -> Invalidation;

    /// The async twin of [`Backend::clear`].
    fn clear_async(engine: &Engine<F, Self>) -> impl Future<Output = Invalidation> + Send;

    /// The in-process engine that answers while the backend fails.
    fn fallback(engine: &Engine<F, Self>) -> Option<&Engine<F, Memory>>;

    /// The state of the circuit breaker in front of the backend's store: `None` for a store
    /// without I/O.
    fn breaker() -> Option<crate::handle::BreakerState> {
        None
    }

    /// Whether the local store may answer at `coarse` (the coarse clock, read by the hit
    /// path): an L1 answers only while it cannot have missed an invalidation.
    #[inline]
    fn serves_local_at(coarse: u64) -> bool {
        let _ = coarse;
        true
    }

    /// [`Backend::serves_local_at`] now.
    #[inline]
    fn serves_local() -> bool {
        Self::serves_local_at(crate::clock::coarse_ms())
    }

    /// Keeps a copy of `key` in the local store: runs `insert` (an L1 first notes where
    /// invalidations of the key will come from, and inserts while it holds that note).
    #[inline]
    fn keep_local(engine: &Engine<F, Self>, key: &Self::Key, insert: impl FnOnce()) {
        let _ = (engine, key);
        insert();
    }

    /// A cache was made (an L1 starts listening for other processes' changes).
    fn on_create(engine: &'static Engine<F, Self>) {
        let _ = engine;
    }

    /// `f_refresh` wrote `key` (an L1 tells the other processes, sync).
    fn changed(engine: &Engine<F, Self>, key: &Self::Key) {
        let _ = (engine, key);
    }

    /// The async twin of [`Backend::changed`].
    fn changed_async(engine: &Engine<F, Self>, key: &Self::Key) -> impl Future<Output = ()> + Send {
        let _ = (engine, key);
        std::future::ready(())
    }
}

/// The in-process backend: entries live in the engine's local store, and every operation of
/// the backend itself is empty.
#[derive(Debug)]
pub struct Memory;

impl<F: Types> BackendState<F> for Memory {
    type State = ();
    type Key = Tagged<F::Key>;
}

/// An in-process key with the tags of its call.
#[derive(Clone, Debug)]
pub struct Tagged<K> {
    pub(crate) key: K,
    pub(crate) tags: Tags,
}

impl<F: Function> Backend<F> for Memory {
    const NAME: &'static str = "memory";
    const LOCAL: bool = true;
    const REMOTE: bool = false;
    type Lease = ();

    fn state(_: &str, _: &Policy) -> Self::State {}

    #[inline]
    fn key(_: &Engine<F, Self>, lookup: &F::Lookup<'_>, tags: Tags) -> Tagged<F::Key> {
        Tagged {
            key: F::to_key(lookup),
            tags,
        }
    }

    #[inline]
    fn local(key: &Tagged<F::Key>) -> &F::Key {
        &key.key
    }

    #[inline]
    fn tags(key: &Tagged<F::Key>) -> &Tags {
        &key.tags
    }

    fn into_local(key: Tagged<F::Key>) -> Tagged<F::Key> {
        key
    }

    fn read(_: &Engine<F, Self>, _: &Tagged<F::Key>) -> Read<F::Value> {
        Read::Miss
    }

    async fn read_async(_: &Engine<F, Self>, _: &Tagged<F::Key>) -> Read<F::Value> {
        Read::Miss
    }

    fn lease(_: &Engine<F, Self>, _: &Tagged<F::Key>, _: Start) -> Leased<(), F::Value> {
        Leased::Lease(Some(()))
    }

    async fn lease_async(
        _: &Engine<F, Self>,
        _: &Tagged<F::Key>,
        _: Start,
    ) -> Leased<(), F::Value> {
        Leased::Lease(Some(()))
    }

    fn publish(
        _: &Engine<F, Self>,
        _: &Tagged<F::Key>,
        _: (),
        _: Option<(Slot<&F::Value>, Times)>,
    ) -> Published {
        Published::IN_PROCESS
    }

    async fn publish_async(
        _: &Engine<F, Self>,
        _: &Tagged<F::Key>,
        _: (),
        _: Option<(Slot<&F::Value>, Times)>,
    ) -> Published {
        Published::IN_PROCESS
    }

    fn keep(_: &Engine<F, Self>, _: &Tagged<F::Key>, _: &(), _: (Slot<&F::Value>, Times)) -> bool {
        true
    }

    async fn keep_async(
        _: &Engine<F, Self>,
        _: &Tagged<F::Key>,
        _: &(),
        _: (Slot<&F::Value>, Times),
    ) -> bool {
        true
    }

    fn invalidate(_: &Engine<F, Self>, _: &Tagged<F::Key>) -> Invalidation {
        Invalidation::Done
    }

    async fn invalidate_async(_: &Engine<F, Self>, _: &Tagged<F::Key>) -> Invalidation {
        Invalidation::Done
    }

    fn clear(_: &Engine<F, Self>) -> Invalidation {
        Invalidation::Done
    }

    async fn clear_async(_: &Engine<F, Self>) -> Invalidation {
        Invalidation::Done
    }

    fn fallback(_: &Engine<F, Self>) -> Option<&Engine<F, Memory>> {
        None
    }
}
