//! The composition root: with `lib.rs`, the one place that names every store. What acts on
//! every store at once (`invalidate_tag`) finds them here, through the registry's traits.

use std::any::TypeId;

use crate::bounds::CachedValue;
use crate::cell::Cell;
use crate::engine::{Engine, in_cell};
use crate::function::{KeyFn, Shaped};
use crate::policy::Policy;
use crate::registry::TagSink;
use crate::shape::{Picked, Shape};
use crate::store::{Memory, Store};

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

/// The cache of the cached function `S` for `owner` on the store `B` (a store of the user's,
/// `store = path`, or `Tiered` in front of it), kept in `cell`: the twin of [`memory_cache`]
/// for any store.
#[inline]
pub fn store_cache<S, M, B>(
    cell: &'static Cell,
    owner: TypeId,
    signature: S,
    shape: Picked<M>,
    init: impl FnOnce() -> (String, Policy),
) -> &'static Engine<Shaped<S, M>, B>
where
    S: KeyFn,
    M: Shape<S::Output> + 'static,
    M::Value: CachedValue,
    B: Store<Shaped<S, M>>,
{
    let _ = (signature, shape);
    in_cell(cell, owner, init)
}

/// The stores `invalidate_tag` tells besides this process's caches.
#[cfg(feature = "redis")]
pub(crate) fn tag_sinks() -> &'static [&'static dyn TagSink] {
    &[&crate::store::redis::tags::RedisTags]
}

/// The stores `invalidate_tag` tells besides this process's caches: none in this build.
#[cfg(not(feature = "redis"))]
pub(crate) fn tag_sinks() -> &'static [&'static dyn TagSink] {
    &[]
}

#[cfg(feature = "redis")]
pub use redis::{RedisBackend, TieredBackend, redis_cache};

/// The Redis stores as the generated code names them.
#[cfg(feature = "redis")]
mod redis {
    use std::any::TypeId;

    use crate::bounds::{CachedValue, RedisValue};
    use crate::cell::Cell;
    use crate::engine::{Engine, in_cell};
    use crate::function::Shaped;
    use crate::policy::Policy;
    use crate::shape::{Picked, Shape};
    use crate::store::redis::{RedisSignature, RedisStore};
    use crate::store::{Store, Tiered};

    /// `backend = "redis"`.
    pub type RedisBackend = RedisStore;
    /// `backend = "tiered"`: the engine's L1 in front of Redis.
    pub type TieredBackend = Tiered<RedisStore>;

    /// The Redis (or tiered) cache of the cached function `S` for `owner`, kept in `cell`:
    /// the twin of [`memory_cache`](crate::stores::memory_cache), whose bounds say what Redis
    /// needs of the key and the value. The store is read from the type the generated code
    /// names.
    #[inline]
    pub fn redis_cache<S, M, B>(
        cell: &'static Cell,
        owner: TypeId,
        signature: S,
        shape: Picked<M>,
        init: impl FnOnce() -> (String, Policy),
    ) -> &'static Engine<Shaped<S, M>, B>
    where
        S: RedisSignature,
        M: Shape<S::Output> + 'static,
        M::Value: CachedValue + RedisValue,
        B: Store<Shaped<S, M>>,
    {
        let _ = (signature, shape);
        in_cell(cell, owner, init)
    }
}
