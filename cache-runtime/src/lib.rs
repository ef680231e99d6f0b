//! Cache-aside functions for Rust.
//!
//! Annotate a function with [`#[cached]`](macro@cached) and it becomes a cache-aside wrapper:
//! a hit returns the stored result, a miss runs the body once per key (other callers of that
//! key wait for it), stores the result and returns it.
//!
//! ```
//! use cache_runtime::cached;
//!
//! #[derive(Clone, Debug, PartialEq)]
//! struct User { id: u64, name: String }
//!
//! #[cached(ttl = "10m", key = "user:{id}")]
//! fn find_user(id: u64) -> Option<User> {
//!     // A slow query; `None` (no such user) is cached too, for `null_ttl`.
//!     (id == 1).then(|| User { id, name: "Ada".into() })
//! }
//!
//! assert_eq!(find_user(1).map(|u| u.name), Some("Ada".to_string())); // miss: runs the body
//! assert_eq!(find_user(2), None);                                    // miss: caches the null
//! assert!(find_user(1).is_some());                                   // hit
//! assert_eq!(find_user(2), None);                                    // null hit
//!
//! find_user_invalidate(1); // the next call loads again
//! let stats = find_user_cache().stats();
//! assert_eq!((stats.hits, stats.null_hits, stats.misses), (1, 1, 2));
//! ```
//!
//! # What a cached function guarantees
//!
//! - **Return shapes.** `T` is always cached; `Result<T, E>` caches `Ok` and never `Err`;
//!   `Option<T>` and `Result<Option<T>, E>` cache `None` as a null for `null_ttl`, told apart
//!   from every real value (also `Some(None)` of an `Option<Option<T>>`).
//! - **Keys.** Distinct arguments never share an entry, and two functions never share entries.
//! - **Stampede protection.** One load per key at a time (`lock = "local"`); if the loader
//!   fails, panics or is cancelled, one waiter takes over, and no waiter waits longer than
//!   `lock_timeout`.
//! - **Invalidation wins.** `f_invalidate` during a load of the same key keeps that load's
//!   result out of the cache (its callers still get it).
//! - **Sync and async.** Sync functions work from plain threads and inside tokio runtimes
//!   (multi-thread and current-thread); async functions need no particular executor.
//!
//! # Backends
//!
//! The in-process store is built on [quick_cache](https://docs.rs/quick_cache) (S3-FIFO,
//! sharded), with each entry's deadline kept in the entry and checked against a coarse
//! millisecond clock; a hit costs one shard read lock and the clone of the returned value.
//! With the `redis` feature, Redis is the default backend of every cached function in the build
//! (see the README for its layout, leases and settings, and `Config`); `backend = "memory"`
//! keeps a function in process.
//!
//! # Features
//!
//! - `redis`: the Redis backend, and `Config`.
//! - `tls`: `rediss://` URLs.
//! - `test-util`: `clock::advance` moves the cache clock, for expiry tests that do not sleep.
//!
//! # Minimum supported Rust version
//!
//! Rust 1.85 (edition 2024).

#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]
#![deny(clippy::print_stdout, clippy::print_stderr)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

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
mod config;
mod entry;
mod fence;
mod flight;
mod function;
mod key;
mod policy;
#[cfg(feature = "redis")]
mod redis;
mod reentry;
mod shape;
mod stats;

pub use cache::CacheHandle;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use config::{Config, ConfigBuilder, ConfigError};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
pub use stats::Stats;

#[doc = include_str!("cached.md")]
#[doc(inline)]
pub use cache_macros::cached;

/// Items used by the code `#[cached]` generates. Not API: anything here may change in any
/// release.
#[doc(hidden)]
pub mod __private {
    pub use std::sync::OnceLock;
    pub use std::time::Duration;

    pub use core::any::TypeId;
    pub use typeid::of as type_id_of;

    #[cfg(feature = "redis")]
    pub use crate::bounds::KeyJson;
    pub use crate::bounds::{KeyDisplay, KeyParam, KeyPlaceholder};
    pub use crate::cache::{Cache, CacheHandle, memory_cache};
    pub use crate::cell::{Cell, method_name};
    pub use crate::function::{Function, KeyFn, Part, Signature};
    pub use crate::key::{Lookup, display_part};
    pub use crate::policy::{Lock, Policy};
    pub use crate::shape::{Probe, pick};

    #[cfg(feature = "redis")]
    pub use crate::redis::{
        RedisCache, RedisFunction, RedisKey, RedisSignature, layout::KeyWriter, redis_cache,
    };
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
