#![doc = include_str!("../../README.md")]
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]
#![deny(clippy::print_stdout, clippy::print_stderr)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

mod answer;
mod body;
mod bounds;
#[cfg(feature = "redis")]
mod breaker;
mod cache;
mod cell;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod clock;
#[cfg(not(feature = "test-util"))]
mod clock;
#[cfg(feature = "redis")]
mod codec;
#[cfg(feature = "redis")]
mod config;
mod engine;
mod entry;
mod fence;
mod figures;
mod function;
mod handle;
mod histogram;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
mod invalidation;
mod key;
#[cfg(feature = "metrics")]
mod metrics;
mod policy;
mod reentry;
mod registry;
mod report;
mod shape;
mod stats;
mod stopwatch;
pub mod store;
mod tag_invalidation;
mod tags;
mod warm;
mod weigh;

pub use answer::{CacheStatus, Cached};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use bounds::RedisValue;
pub use bounds::{CacheKey, CacheValue, CachedValue};
pub use cache::{Backend, BuildError, Cache, CacheBuilder};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use config::{Config, ConfigBuilder, ConfigError};
pub use handle::{BreakerState, CacheHandle};
pub use invalidation::{Hook, Invalidated, Invalidation, InvalidationHook, on_invalidate};
pub use policy::{Codec, Compression, Lock};

/// Derives [`Weigh`](trait@Weigh): see the trait.
pub use cache_macros::Weigh;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub use metrics::{
    DURATION_BUCKETS, METRICS, Metric, MetricKind, export_metrics, set_metrics_interval,
};
pub use registry::{caches, clear_all, clear_all_async};
pub use report::{AgeBand, Report, Row, Verdict, VerdictKind, report};
pub use stats::Stats;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use store::redis::RedisStore;
pub use warm::{Warmed, set_warm_concurrency};
pub use weigh::Weigh;

#[doc = include_str!("cached.md")]
#[doc(inline)]
pub use cache_macros::cached;

/// Items used by the code `#[cached]` generates. Not API: anything here may change in any
/// release.
#[doc(hidden)]
pub mod __private {
    pub use std::time::Duration;

    pub use core::any::TypeId;
    pub use typeid::of as type_id_of;

    pub use super::stores::{memory_cache, store_cache};
    pub use crate::answer::tagged;
    pub use crate::body::{Detach, DetachFn, PickInPlace, PickOwned};
    #[cfg(feature = "redis")]
    pub use crate::bounds::KeyJson;
    #[cfg(feature = "redis")]
    pub use crate::bounds::same_bytes;
    pub use crate::bounds::same_eq;
    pub use crate::bounds::{KeyDebug, KeyDisplay, KeyParam, KeyPlaceholder};
    pub use crate::cell::{Cell, method_name};
    pub use crate::engine::Engine;
    pub use crate::function::{Function, KeyFn, Part, Signature};
    pub use crate::handle::CacheHandle;
    pub use crate::key::{Lookup, display_part};
    pub use crate::policy::{Codec, Compression, DEFAULT_COMPRESS_MIN, Lock, Policy};
    pub use crate::shape::{Probe, pick};
    pub use crate::store::{Memory, Tiered};
    pub use crate::tags::Tags;
    pub use crate::warm::{Warm, warm, warm_async};
    pub use crate::weigh::Weigher;

    #[cfg(feature = "redis")]
    pub use super::stores::{RedisBackend, TieredBackend, redis_cache};
    #[cfg(feature = "redis")]
    pub use crate::store::redis::{RedisFunction, RedisSignature, layout::KeyWriter};
    #[cfg(feature = "redis")]
    pub use serde_json;

    pub use crate::__cache_runtime_require_redis as require_redis;
}

/// Stands for an argument that needs the Redis backend: a compile error until it exists.
#[doc(hidden)]
#[macro_export]
macro_rules! __cache_runtime_require_redis {
    ($what:literal) => {
        ::core::compile_error!(::core::concat!(
            "`",
            $what,
            "` needs the `redis` feature of `cache-runtime`, which this build does not have: ",
            "enable it (`cache-runtime = { version = \"0.1\", features = [\"redis\"] }`) ",
            "or keep to the in-process store (`backend = \"memory\"`, `lock = \"local\"`)"
        ));
    };
}

// ---------------------------------------------------------------------------------------------
// The composition root: the one place that names every store.

/// The stores `invalidate_tag` tells besides this process's caches.
#[cfg(feature = "redis")]
static TAG_SINKS: &[&dyn registry::TagSink] = &[&store::redis::tags::RedisTags];

/// The stores `invalidate_tag` tells besides this process's caches: none in this build.
#[cfg(not(feature = "redis"))]
static TAG_SINKS: &[&dyn registry::TagSink] = &[];

/// Makes every entry that carries the tag `tag` a miss, in every cached function of this
/// process and, with the `redis` feature, in every process sharing the configured Redis
/// (whether or not this process made a Redis cache yet: a process whose caches are all in
/// memory reaches the others too); a load of such an entry in flight never writes its result
/// (it started before the invalidation).
///
/// `tag` is the rendered tag, matched exactly: `"product:42"` for the entries that
/// `tags = ["product:{id}"]` marked when `id` was 42, never the template `"product:{id}"`.
///
/// One invalidation costs the same whatever the number of entries carrying the tag: a counter
/// in process; on a single Redis server one script, a `SET` of the tag's key to a fresh random
/// version and one entry in the invalidation log (which every process's L1 reads); on a Redis
/// Cluster the same as separate commands, one `SET` and one `XADD`. No entry is visited or
/// deleted: each entry records its tags' versions and a read compares them (the *tag versions*
/// of FusionCache and Symfony's tag-aware caches, without a member set or a `SCAN`).
///
/// The tag is invalidated in this process before the call returns, whatever it returns.
/// Without the `redis` feature it returns [`Invalidation::Done`]. With it:
///
/// - [`Invalidation::Done`]: Redis acknowledged the invalidation.
/// - [`Invalidation::Pending`] when Redis could not be reached (an error, a timeout, the
///   circuit breaker open): the invalidation is kept and replayed before this process reads
///   from Redis again (the same rule as `f_invalidate`); other processes see it once it is
///   replayed.
/// - [`Invalidation::Pending`] when the settings name no usable Redis (a URL that does not
///   parse, bad settings in the environment): nothing is kept, since this process then never
///   reads from Redis.
///
/// ```
/// use cache_runtime::{cached, invalidate_tag};
/// use std::sync::atomic::{AtomicU32, Ordering};
///
/// static LOADS: AtomicU32 = AtomicU32::new(0);
///
/// #[cached(ttl = 60, key = "{id}", tags = ["catalog", "product:{id}"])]
/// fn product_name(id: u32) -> String {
///     LOADS.fetch_add(1, Ordering::Relaxed);
///     format!("product {id}")
/// }
///
/// product_name(1);
/// product_name(2);
/// let _ = invalidate_tag("product:1"); // drops product 1 only
/// product_name(1);
/// product_name(2);
/// assert_eq!(LOADS.load(Ordering::Relaxed), 3);
/// let _ = invalidate_tag("catalog"); // drops both
/// product_name(1);
/// product_name(2);
/// assert_eq!(LOADS.load(Ordering::Relaxed), 5);
/// ```
pub fn invalidate_tag(tag: &str) -> Invalidation {
    invalidate_tags([tag])
}

/// The async twin of [`invalidate_tag`], for async code: the same invalidation and the same
/// answer, without blocking the executor's thread on Redis.
///
/// ```
/// use cache_runtime::{cached, invalidate_tag_async};
///
/// #[cached(ttl = 60, key = "{id}", tags = ["product:{id}"])]
/// async fn price(id: u32) -> u64 {
///     u64::from(id) * 100
/// }
///
/// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// # rt.block_on(async {
/// assert_eq!(price(1).await, 100);
/// let _ = invalidate_tag_async("product:1").await;
/// assert_eq!(price(1).await, 100); // loaded again
/// assert_eq!(price_cache().stats().loads, 2);
/// # });
/// ```
pub async fn invalidate_tag_async(tag: &str) -> Invalidation {
    invalidate_tags_async([tag]).await
}

/// [`invalidate_tag`] of several tags at once. What an update usually needs: a product's own
/// entries and its category's listing. On a single Redis server one script (one round trip)
/// for all of them; on a Redis Cluster, one `SET` and one `XADD` per tag.
///
/// `tags` is anything that iterates over strings (`IntoIterator<Item = S>`, `S: AsRef<str>`):
/// an array, a `Vec`, a slice or an iterator of `&str` or `String`. Each is a rendered tag,
/// matched exactly, as for [`invalidate_tag`].
///
/// The answer is [`invalidate_tag`]'s, for all the tags together: one failure keeps them all
/// to replay. An empty list does nothing and returns [`Invalidation::Done`].
///
/// ```
/// use cache_runtime::{cached, invalidate_tags};
///
/// #[cached(ttl = 60, key = "{id}", tags = ["product:{id}"])]
/// fn product(id: u32) -> String {
///     format!("product {id}")
/// }
///
/// #[cached(ttl = 60, key = "{category}", tags = ["category:{category}"])]
/// fn listing(category: &str) -> Vec<u32> {
///     vec![category.len() as u32]
/// }
///
/// product(1);
/// listing("tea");
/// // Product 1, in the tea category, changed:
/// let _ = invalidate_tags(["product:1", "category:tea"]);
/// product(1);
/// listing("tea");
/// assert_eq!(product_cache().stats().loads, 2);
/// assert_eq!(listing_cache().stats().loads, 2);
///
/// // Tags made at run time: `String`s in a `Vec`, passed by reference.
/// let changed = vec![format!("product:{}", 2), format!("category:{}", "coffee")];
/// let _ = invalidate_tags(&changed);
/// ```
pub fn invalidate_tags<I, S>(tags: I) -> Invalidation
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    tag_invalidation::invalidate(tags, TAG_SINKS)
}

/// The async twin of [`invalidate_tags`]: the same arguments, invalidation and answer,
/// without blocking the executor's thread on Redis.
///
/// ```
/// use cache_runtime::{cached, invalidate_tags_async};
///
/// #[cached(ttl = 60, key = "{id}", tags = ["product:{id}"])]
/// async fn stock(id: u32) -> u32 {
///     id * 10
/// }
///
/// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// # rt.block_on(async {
/// assert_eq!(stock(1).await, 10);
/// assert_eq!(stock(2).await, 20);
/// let _ = invalidate_tags_async(["product:1", "product:2"]).await;
/// stock(1).await;
/// stock(2).await;
/// assert_eq!(stock_cache().stats().loads, 4);
/// # });
/// ```
pub async fn invalidate_tags_async<I, S>(tags: I) -> Invalidation
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    tag_invalidation::invalidate_async(tags, TAG_SINKS).await
}

impl<K: CacheKey, V: CacheValue> Cache<K, V> {
    /// The settings of a cache named `name` (its name in the registry, in metrics and, on
    /// Redis, in its keys), with the attribute's defaults; end with
    /// [`CacheBuilder::build`].
    ///
    /// With the `redis` feature, the key and value must be serde types whatever the backend
    /// ([`CacheKey`], [`CacheValue`]): the backend is chosen at run time.
    pub fn builder(name: impl Into<String>) -> CacheBuilder<K, V> {
        CacheBuilder::new(name.into(), stores::open_plain::<K, V>)
    }
}

impl<K: CacheKey, T> CacheBuilder<K, Option<T>>
where
    Option<T>: CacheValue,
{
    /// Caches `None` as a null, for `null_ttl` (zero: never), as `#[cached]` does for a
    /// function that returns `Option`: a null hit is counted apart, and on Redis it is written
    /// in the null envelope. Without this, `None` is a value like `Some`, stored for `ttl`.
    pub fn null_ttl(mut self, null_ttl: std::time::Duration) -> Self {
        self.null_ttl = Some(null_ttl);
        self.open = stores::open::<K, Option<T>, cache::NoneIsNull>;
        self
    }
}

/// The constructors the generated code calls, by store.
mod stores {
    use std::any::TypeId;

    use crate::bounds::CachedValue;
    use crate::cell::Cell;
    use crate::engine::{Engine, Init, in_cell};
    use crate::function::{KeyFn, Shaped};
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
        init: impl FnOnce() -> Init<S::Key, M::Value>,
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
        init: impl FnOnce() -> Init<S::Key, M::Value>,
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

    /// The engine of a [`Cache`](crate::Cache) on `backend`, with the nulls `N`.
    pub(crate) fn open<K, V, N>(
        backend: crate::Backend,
        init: Init<K, V>,
    ) -> crate::cache::Opened<K, V>
    where
        K: crate::CacheKey,
        V: crate::CacheValue,
        N: crate::cache::Nulls<V>,
    {
        use crate::Backend;
        use crate::cache::Keyed;
        use crate::engine::leaked;
        let ops: &'static dyn crate::cache::Ops<K, V> = match backend {
            Backend::Memory => leaked::<Keyed<K, V, N>, Memory>(init),
            #[cfg(feature = "redis")]
            Backend::Redis => leaked::<Keyed<K, V, N>, redis::RedisBackend>(init),
            #[cfg(feature = "redis")]
            Backend::Tiered => leaked::<Keyed<K, V, N>, redis::TieredBackend>(init),
        };
        crate::cache::Opened {
            memory: None,
            ops,
            is_null: N::is_null,
            null: N::null,
        }
    }

    /// [`open`] of a cache without nulls, whose in-process engine answers hits without a
    /// `dyn` call.
    pub(crate) fn open_plain<K, V>(
        backend: crate::Backend,
        init: Init<K, V>,
    ) -> crate::cache::Opened<K, V>
    where
        K: crate::CacheKey,
        V: crate::CacheValue,
    {
        use crate::cache::{Keyed, NoNulls, Nulls};
        match backend {
            crate::Backend::Memory => {
                let engine = crate::engine::leaked::<Keyed<K, V, NoNulls>, Memory>(init);
                crate::cache::Opened {
                    memory: Some(engine),
                    ops: engine,
                    is_null: <NoNulls as Nulls<V>>::is_null,
                    null: <NoNulls as Nulls<V>>::null,
                }
            }
            #[cfg(feature = "redis")]
            _ => open::<K, V, NoNulls>(backend, init),
        }
    }

    #[cfg(feature = "redis")]
    pub use redis::{RedisBackend, TieredBackend, redis_cache};

    /// The Redis stores as the generated code names them.
    #[cfg(feature = "redis")]
    mod redis {
        use std::any::TypeId;

        use crate::bounds::{CachedValue, RedisValue};
        use crate::cell::Cell;
        use crate::engine::{Engine, Init, in_cell};
        use crate::function::Shaped;
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
            init: impl FnOnce() -> Init<S::Key, M::Value>,
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
}
