//! What a cached value must be, as traits whose errors say so in words.
//!
//! The bounds are checked where the generated code makes the cache, which carries the span of
//! the return type, so a value that is not `Clone` (or not serde, on Redis) is reported there,
//! once per missing trait, in these words. Key parts are bounds of the generated `Signature`
//! impl: each part's type fails one of the `Key*` traits below, once, with its message.

use std::fmt::{Debug, Display};
use std::hash::Hash;

/// A value the cache keeps: a hit returns a clone of it, from any thread. Every
/// `Clone + Send + Sync + 'static` type is one.
#[diagnostic::on_unimplemented(
    message = "`#[cached]` keeps a copy of `{Self}`, so it must be `Clone + Send + Sync + 'static`",
    label = "the cached value",
    note = "a hit returns a clone: derive `Clone`, or return an `Arc<{Self}>` to share one copy"
)]
pub trait CachedValue: Clone + Send + Sync + 'static {}

#[diagnostic::do_not_recommend]
impl<T: Clone + Send + Sync + 'static> CachedValue for T {}

/// A value stored in Redis (`backend = "redis"` or `"tiered"`): one that serde writes and reads
/// back. Every `Serialize + DeserializeOwned` type is one.
#[cfg(feature = "redis")]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is stored in Redis, so it must implement `serde::Serialize` and \
               `serde::Deserialize`",
    label = "the cached value",
    note = "derive them (`#[derive(serde::Serialize, serde::Deserialize)]`), or keep this \
            function in process with `backend = \"memory\"`"
)]
pub trait RedisValue: serde::Serialize + serde::de::DeserializeOwned {}

#[cfg(feature = "redis")]
#[diagnostic::do_not_recommend]
impl<T: serde::Serialize + serde::de::DeserializeOwned> RedisValue for T {}

/// A parameter that is part of the key (without `key = "..."`, every parameter is).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be part of the cache key: it is not \
               `Hash + Eq + Clone + Send + Sync + 'static`",
    label = "a parameter of this type is part of the key",
    note = "without `key = \"...\"`, every parameter is part of the key: name the ones that \
            identify a result, e.g. `key = \"{{id}}\"`, or derive the missing traits"
)]
pub trait KeyParam: Hash + Eq + Clone + Send + Sync + 'static {}

#[diagnostic::do_not_recommend]
impl<T: Hash + Eq + Clone + Send + Sync + 'static> KeyParam for T {}

/// A parameter a key template names in a placeholder.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be part of the cache key: it is not \
               `Hash + Eq + Clone + Send + Sync + 'static`",
    label = "a placeholder of the key template names a parameter of this type",
    note = "derive the missing traits, or name a field that has them, e.g. `{{user.id}}`"
)]
pub trait KeyPlaceholder: Hash + Eq + Clone + Send + Sync + 'static {}

#[diagnostic::do_not_recommend]
impl<T: Hash + Eq + Clone + Send + Sync + 'static> KeyPlaceholder for T {}

/// A value a key template renders.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement `Display`, and the key template renders each \
               placeholder with it",
    label = "a placeholder of the key template names a parameter of this type",
    note = "implement `Display` for it, or name a field that has it, e.g. `{{user.id}}`"
)]
pub trait KeyDisplay: Display {}

#[diagnostic::do_not_recommend]
impl<T: ?Sized + Display> KeyDisplay for T {}

/// A key part that `record_keys = true` records in a load's span.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement `Debug`, and `record_keys = true` records each key \
               with it",
    label = "a key parameter of this type",
    note = "derive or implement `Debug` for it, leave the parameter out of the key, or remove \
            `record_keys`"
)]
pub trait KeyDebug: Debug {}

#[diagnostic::do_not_recommend]
impl<T: ?Sized + Debug> KeyDebug for T {}

/// A key part written as JSON into a Redis key (a key without template).
#[cfg(feature = "redis")]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is part of a Redis key without a template, so it must implement \
               `serde::Serialize`",
    label = "a parameter of this type is part of the key",
    note = "derive it, or write a template naming what identifies a result, e.g. \
            `key = \"{{id}}\"`"
)]
pub trait KeyJson: serde::Serialize {}

#[cfg(feature = "redis")]
#[diagnostic::do_not_recommend]
impl<T: ?Sized + serde::Serialize> KeyJson for T {}

/// A key of a [`Cache`](crate::Cache): a key part, and with the `redis` feature one that
/// serde writes (its Redis key is the key as JSON). Every such type is one.
#[cfg(feature = "redis")]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the key of a `Cache`: it must be `Hash + Eq + Clone + Send + \
               Sync + 'static` and, with the `redis` feature, `serde::Serialize`",
    note = "derive the missing traits"
)]
pub trait CacheKey: KeyParam + serde::Serialize {}

#[cfg(feature = "redis")]
#[diagnostic::do_not_recommend]
impl<T: KeyParam + serde::Serialize> CacheKey for T {}

/// A key of a [`Cache`](crate::Cache): every `Hash + Eq + Clone + Send + Sync + 'static` type.
#[cfg(not(feature = "redis"))]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the key of a `Cache`: it must be `Hash + Eq + Clone + Send + \
               Sync + 'static`",
    note = "derive the missing traits"
)]
pub trait CacheKey: KeyParam {}

#[cfg(not(feature = "redis"))]
#[diagnostic::do_not_recommend]
impl<T: KeyParam> CacheKey for T {}

/// A value of a [`Cache`](crate::Cache): one the cache can copy and, with the `redis`
/// feature, one serde writes and reads back (the backend is chosen at run time, so the
/// build decides). Every such type is one.
#[cfg(feature = "redis")]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the value of a `Cache`: it must be `Clone + Send + Sync + \
               'static` and, with the `redis` feature, `serde::Serialize + Deserialize`",
    note = "derive the missing traits, or cache it with `#[cached(backend = \"memory\")]`"
)]
pub trait CacheValue: CachedValue + RedisValue {}

#[cfg(feature = "redis")]
#[diagnostic::do_not_recommend]
impl<T: CachedValue + RedisValue> CacheValue for T {}

/// A value of a [`Cache`](crate::Cache): every `Clone + Send + Sync + 'static` type.
#[cfg(not(feature = "redis"))]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the value of a `Cache`: it must be `Clone + Send + Sync + \
               'static`",
    note = "a hit returns a clone: derive `Clone`, or keep an `Arc<{Self}>`"
)]
pub trait CacheValue: CachedValue {}

#[cfg(not(feature = "redis"))]
#[diagnostic::do_not_recommend]
impl<T: CachedValue> CacheValue for T {}

/// A value `verify` compares with `PartialEq` (an in-process cache): a fresh load's result
/// against the value a hit served. Every `PartialEq` type is one.
#[diagnostic::on_unimplemented(
    message = "`verify` compares a fresh load's `{Self}` with the one a hit served, so it must \
               implement `PartialEq`",
    label = "this cache verifies its hits",
    note = "derive `PartialEq`, or remove `verify`"
)]
pub trait VerifyEq: PartialEq {}

#[diagnostic::do_not_recommend]
impl<T: PartialEq> VerifyEq for T {}

/// `verify`'s comparison in process: `PartialEq`.
pub fn same_eq<V: VerifyEq>(served: &V, fresh: &V) -> Option<bool> {
    Some(served == fresh)
}

/// `verify`'s comparison of values stored serialized: their MessagePack bytes (what Redis
/// would hold). A value whose encoding is not canonical (a `HashMap`'s order) may differ when
/// equal: prefer a `BTreeMap` in values that are verified.
#[cfg(feature = "redis")]
pub fn same_bytes<V: RedisValue>(served: &V, fresh: &V) -> Option<bool> {
    match (rmp_serde::to_vec(served), rmp_serde::to_vec(fresh)) {
        (Ok(a), Ok(b)) => Some(a == b),
        // A value that does not encode is never written to Redis either: no comparison.
        _ => None,
    }
}
