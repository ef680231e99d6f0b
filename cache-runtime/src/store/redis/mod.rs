//! The Redis store (feature `redis`): entries live in Redis; the engine does the rest.
//!
//! A call reads its key with one `GET` (the hit path, `read`). On a miss the engine's
//! single-flight lets one caller per key and process go on; it takes the key's lease in Redis
//! or, if another process holds it, waits for that process's value (`lease`, `lease.rs`); the
//! engine runs the body, and the result is published with a write fenced by the lease
//! (`publish`). A lease whose load fails, panics or is dropped is released at once. If Redis
//! fails, the call is answered by the engine's in-process fallback: the cache never makes a call
//! fail.

mod conn;
mod gate;
pub(crate) mod layout;
mod lease;
mod log;
mod notify;
mod ops;
mod pending;
mod scan;
mod store;
pub(crate) mod tags;
mod tracking;
mod usage;

use crate::bounds::{CachedValue, RedisValue};
use crate::codec;
use crate::function::{Function, KeyFn, Shaped};
use crate::shape::Shape;
use layout::KeyWriter;

/// How the key of a cached function renders in Redis, implemented by `#[cached]` beside
/// [`KeyFn`].
pub trait RedisSignature: KeyFn {
    /// Characters escaped in placeholder values, besides `%`, `{` and `}`: the first
    /// character of each text between two placeholders.
    const SEPARATORS: &'static str;

    /// The key template with each placeholder as `\u{1}` (`"\u{1}"` alone without a
    /// template): the shape that keeps the keys of two functions apart (`layout.rs`).
    const LAYOUT: &'static str;

    /// Writes the key's rendered form (after `{prefix}{name}:`).
    fn render_key(lookup: &Self::Lookup<'_>, out: &mut KeyWriter) -> serde_json::Result<()>;
}

/// What a cached function needs to live in Redis: how its key renders and how its values
/// encode.
pub trait RedisFunction: Function {
    /// See [`RedisSignature::SEPARATORS`].
    const SEPARATORS: &'static str;

    /// See [`RedisSignature::LAYOUT`].
    const LAYOUT: &'static str;

    /// Writes the key's rendered form (after `{prefix}{name}:`).
    fn render_key(lookup: &Self::Lookup<'_>, out: &mut KeyWriter) -> serde_json::Result<()>;

    /// Appends a value in the value codec (`codec.rs`).
    fn encode(value: &Self::Value, out: &mut Vec<u8>) -> Result<(), rmp_serde::encode::Error>;

    /// Reads a value written by `encode`.
    fn decode(bytes: &[u8]) -> Result<Self::Value, rmp_serde::decode::Error>;

    /// Appends a value as JSON (`codec = "json"`), or says why JSON cannot hold it.
    fn encode_json(value: &Self::Value, out: &mut Vec<u8>) -> Result<(), String>;

    /// Reads a value written by `encode_json`.
    fn decode_json(json: &str) -> Result<Self::Value, serde_json::Error>;
}

impl<S, M> RedisFunction for Shaped<S, M>
where
    S: RedisSignature,
    M: Shape<S::Output> + 'static,
    M::Value: CachedValue + RedisValue,
{
    const SEPARATORS: &'static str = S::SEPARATORS;
    const LAYOUT: &'static str = S::LAYOUT;

    fn render_key(lookup: &Self::Lookup<'_>, out: &mut KeyWriter) -> serde_json::Result<()> {
        S::render_key(lookup, out)
    }

    fn encode(value: &Self::Value, out: &mut Vec<u8>) -> Result<(), rmp_serde::encode::Error> {
        codec::msgpack::write_value(value, out)
    }

    fn decode(bytes: &[u8]) -> Result<Self::Value, rmp_serde::decode::Error> {
        codec::msgpack::read_value(bytes)
    }

    fn encode_json(value: &Self::Value, out: &mut Vec<u8>) -> Result<(), String> {
        codec::json::write_value(value, out)
    }

    fn decode_json(json: &str) -> Result<Self::Value, serde_json::Error> {
        serde_json::from_str(json)
    }
}

pub use store::RedisStore;

/// The key of the tag `name`, under the current key prefix.
pub(crate) fn tag_key(name: &str) -> String {
    format!(
        "{}cache-runtime:tag:{name}",
        crate::config::current().key_prefix
    )
}

/// A fresh version: 16 random hex digits (a missing tag key is made with it).
pub(crate) fn fresh() -> Vec<u8> {
    format!("{:016x}", fastrand::u64(..)).into_bytes()
}

/// The Redis keys of a call; cheap to clone. The lock key is made on first use (a miss).
#[derive(Clone)]
pub struct Keys(std::sync::Arc<KeysInner>);

struct KeysInner {
    value: String,
    lock: std::sync::OnceLock<String>,
    /// The keys of the call's tags, in the order of `tags` (`tags.rs`).
    tags: Vec<String>,
}

impl Keys {
    fn new(value: String, tags: Vec<String>) -> Self {
        Keys(std::sync::Arc::new(KeysInner {
            value,
            lock: std::sync::OnceLock::new(),
            tags,
        }))
    }

    fn value(&self) -> &str {
        &self.0.value
    }

    fn lock(&self) -> &str {
        self.0.lock.get_or_init(|| layout::lock_key(&self.0.value))
    }

    fn tags(&self) -> &[String] {
        &self.0.tags
    }

    /// The keys of a lease script: the value, the lock, then the tags.
    fn script(&self) -> Vec<&str> {
        let mut keys = Vec::with_capacity(2 + self.0.tags.len());
        keys.push(self.value());
        keys.push(self.lock());
        keys.extend(self.0.tags.iter().map(String::as_str));
        keys
    }
}
