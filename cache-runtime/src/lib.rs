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
mod function;
mod handle;
mod invalidation;
mod key;
#[cfg(feature = "metrics")]
mod metrics;
mod policy;
mod reentry;
mod registry;
mod shape;
mod stats;
pub mod store;
mod stores;
mod tag_invalidation;
mod tags;
mod warm;

pub use answer::{CacheStatus, Cached};
pub use bounds::CachedValue;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use bounds::RedisValue;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use config::{Config, ConfigBuilder, ConfigError};
pub use handle::{BreakerState, CacheHandle};
pub use invalidation::Invalidation;

#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub use metrics::{export_metrics, set_metrics_interval};
pub use registry::{caches, clear_all, clear_all_async};
pub use stats::Stats;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use store::redis::RedisStore;
pub use tag_invalidation::{
    invalidate_tag, invalidate_tag_async, invalidate_tags, invalidate_tags_async,
};
pub use warm::{Warmed, set_warm_concurrency};

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

    pub use crate::body::{Detach, DetachFn, PickInPlace, PickOwned};
    #[cfg(feature = "redis")]
    pub use crate::bounds::KeyJson;
    pub use crate::bounds::{KeyDebug, KeyDisplay, KeyParam, KeyPlaceholder};
    pub use crate::cell::{Cell, method_name};
    pub use crate::engine::Engine;
    pub use crate::function::{Function, KeyFn, Part, Signature};
    pub use crate::handle::CacheHandle;
    pub use crate::key::{Lookup, display_part};
    pub use crate::policy::{Codec, Lock, Policy};
    pub use crate::shape::{Probe, pick};
    pub use crate::store::{Memory, Tiered};
    pub use crate::stores::{memory_cache, store_cache};
    pub use crate::tags::Tags;
    pub use crate::warm::{Warm, warm, warm_async};

    #[cfg(feature = "redis")]
    pub use crate::store::redis::{RedisFunction, RedisSignature, layout::KeyWriter};
    #[cfg(feature = "redis")]
    pub use crate::stores::{RedisBackend, TieredBackend, redis_cache};
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
