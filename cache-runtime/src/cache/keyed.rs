//! The types of a [`Cache`](super::Cache) as the engine sees them: a function whose key is
//! the cache's key and whose output says whether the load gave a value, a null or an error.

use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

use quick_cache::Equivalent;

use crate::bounds::{CachedValue, KeyParam};
use crate::entry::Slot;
use crate::function::{Function, Types};
use crate::shape::Shape;

/// A cache of values `V` by keys `K`; `N` says which values are nulls.
pub(crate) struct Keyed<K, V, N>(PhantomData<Types3<K, V, N>>);

/// The three types of a [`Keyed`], owned by nothing (it is only ever a type).
type Types3<K, V, N> = fn() -> (K, V, N);

/// What a load of a [`Cache`](super::Cache) gave, as the engine keeps and shares it.
pub(crate) enum Outcome<V> {
    /// A value: cached for `ttl` (or what `ttl_fn` says).
    Value(V),
    /// A null (`None` of a `Cache<K, Option<T>>` with nulls), as its value: cached for
    /// `null_ttl`.
    Null(V),
    /// An error of `try_get_or_load` (kept by its caller), or no value for a key of a batch:
    /// never cached, never shared.
    Failed,
}

/// The shape of [`Outcome`] in a cache whose nulls `N` says: a value or a null is cached, an
/// error never is; a null read from a shared store answers only a cache that has nulls.
pub(crate) struct OutcomeShape<N>(PhantomData<N>);

impl<V, N: Nulls<V>> Shape<Outcome<V>> for OutcomeShape<N> {
    type Value = V;

    #[inline]
    fn to_slot(result: &Outcome<V>) -> Option<Slot<&V>> {
        match result {
            Outcome::Value(v) => Some(Slot::Value(v)),
            Outcome::Null(_) => Some(Slot::Null),
            Outcome::Failed => None,
        }
    }

    #[inline]
    fn from_slot(slot: Slot<V>) -> Option<Outcome<V>> {
        match slot {
            Slot::Value(v) => Some(Outcome::Value(v)),
            Slot::Null => N::null().map(Outcome::Null),
        }
    }
}

/// Which values of a cache are nulls.
pub(crate) trait Nulls<V>: 'static {
    /// Whether `value` is a null.
    fn is_null(value: &V) -> bool;
    /// The value a null stands for; `None`: this cache has no nulls (a null another process
    /// wrote under the same name is a miss).
    fn null() -> Option<V>;
}

/// Every value is a value.
pub(crate) enum NoNulls {}

impl<V> Nulls<V> for NoNulls {
    #[inline]
    fn is_null(_: &V) -> bool {
        false
    }

    fn null() -> Option<V> {
        None
    }
}

/// `None` is a null (a `Cache<K, Option<T>>` with `null_ttl`).
pub(crate) enum NoneIsNull {}

impl<T> Nulls<Option<T>> for NoneIsNull {
    #[inline]
    fn is_null(value: &Option<T>) -> bool {
        value.is_none()
    }

    fn null() -> Option<Option<T>> {
        Some(None)
    }
}

/// A key borrowed for a lookup: hashes and compares as the key itself.
pub(crate) struct ByRef<'a, K>(pub(crate) &'a K);

impl<K: Hash> Hash for ByRef<'_, K> {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl<K: Eq> Equivalent<K> for ByRef<'_, K> {
    #[inline]
    fn equivalent(&self, key: &K) -> bool {
        self.0 == key
    }
}

impl<K: 'static, V: 'static, N: 'static> Types for Keyed<K, V, N> {
    type Key = K;
    type Value = V;
}

impl<K: KeyParam, V: CachedValue, N: Nulls<V>> Function for Keyed<K, V, N> {
    type Lookup<'a> = ByRef<'a, K>;
    type Output = Outcome<V>;
    type Shape = OutcomeShape<N>;

    #[inline]
    fn to_key(lookup: &ByRef<'_, K>) -> K {
        lookup.0.clone()
    }

    fn key_text(_: &K) -> Option<String> {
        None
    }
}

#[cfg(feature = "redis")]
mod redis {
    use super::{Keyed, Nulls};
    use crate::bounds::{CachedValue, KeyParam, RedisValue};
    use crate::codec;
    use crate::store::redis::RedisFunction;
    use crate::store::redis::layout::KeyWriter;

    /// On Redis a cache's key renders as the attribute renders one parameter of its type
    /// without a template: `[<key as JSON>]`.
    impl<K, V, N> RedisFunction for Keyed<K, V, N>
    where
        K: KeyParam + serde::Serialize,
        V: CachedValue + RedisValue,
        N: Nulls<V>,
    {
        const SEPARATORS: &'static str = "";
        const LAYOUT: &'static str = "\u{1}";

        fn render_key(lookup: &Self::Lookup<'_>, out: &mut KeyWriter) -> serde_json::Result<()> {
            out.text("[");
            out.json(lookup.0)?;
            out.text("]");
            Ok(())
        }

        fn encode(value: &V, out: &mut Vec<u8>) -> Result<(), rmp_serde::encode::Error> {
            codec::msgpack::write_value(value, out)
        }

        fn decode(bytes: &[u8]) -> Result<V, rmp_serde::decode::Error> {
            codec::msgpack::read_value(bytes)
        }

        fn encode_json(value: &V, out: &mut Vec<u8>) -> Result<(), String> {
            codec::json::write_value(value, out)
        }

        fn decode_json(json: &str) -> Result<V, serde_json::Error> {
            serde_json::from_str(json)
        }
    }
}
