//! The types of one cached function: what the macro reads from the signature ([`Signature`],
//! [`KeyFn`]) and what the cache uses ([`Types`], [`Function`]).
//!
//! `#[cached]` describes the key and the output of a function on a struct private to it. What
//! the cache keeps of a result depends on the return type's *shape* (`T`, `Result`, `Option`,
//! `Result<Option>`), which the written name cannot tell (`type Fallible<T> = Result<T, E>`,
//! `std::fmt::Result`), so the type checker decides it: the generated code asks the
//! [`Probe`](crate::shape::Probe) of the concrete return type for its shape marker `M`, and
//! the cache is a cache of [`Shaped<S, M>`].
//!
//! The traits come in two layers so that a type that cannot be a key part fails exactly one
//! bound, at its parameter: [`Signature`] and [`Types`] have no bounds and always hold (the
//! cache's *type* is always well-formed), while [`KeyFn`] (bounded by one where-clause per key
//! part, see the macro's `signature.rs`) and [`Function`] carry every bound the cache's
//! *methods* need. The generated code demands `KeyFn` once, where the cache is made.

use std::hash::Hash;
use std::marker::PhantomData;

use quick_cache::Equivalent;

use crate::bounds::CachedValue;
use crate::shape::Shape;

/// The key and output types of a cached function, without bounds.
pub trait Signature: 'static {
    /// The owned key: a tuple with one part per key parameter or placeholder.
    type Key;
    /// The function's return type.
    type Output;
}

/// A [`Signature`] whose key parts are all key types.
pub trait KeyFn: Signature<Key: Hash + Eq + Clone + Send + Sync + 'static> {
    /// The key with borrowed parts, for lookups that must not allocate.
    type Lookup<'a>: Hash + Equivalent<Self::Key>;

    /// The owned key of a lookup (on a miss, for the insert).
    fn to_key(lookup: &Self::Lookup<'_>) -> Self::Key;

    /// The key as a load's span records it (`Debug`), with `record_keys = true`; `None`
    /// without (keys may hold personal data).
    fn key_text(key: &Self::Key) -> Option<String> {
        let _ = key;
        None
    }
}

/// The stored types of a cached function, without bounds: what a cache's *type* needs.
pub trait Types: 'static {
    /// The owned key.
    type Key;
    /// What the cache keeps of an output.
    type Value;
}

/// The types of one cached function, as the cache's methods use them.
pub trait Function:
    Types<Key: Hash + Eq + Clone + Send + Sync + 'static, Value: CachedValue> + Sized
{
    /// The borrowed key.
    type Lookup<'a>: Hash + Equivalent<Self::Key>;
    /// The function's return type.
    type Output;
    /// How outputs map to cached values and nulls.
    type Shape: Shape<Self::Output, Value = Self::Value>;

    /// The owned key of a lookup (on a miss, for the insert).
    fn to_key(lookup: &Self::Lookup<'_>) -> Self::Key;

    /// [`KeyFn::key_text`].
    fn key_text(key: &Self::Key) -> Option<String>;
}

/// One key part of a generated `Signature` struct: the type `K` the part is checked as.
pub struct Part<K>(PhantomData<fn() -> K>);

impl<K> Default for Part<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K> Part<K> {
    /// The part of type `K`.
    #[inline]
    pub const fn new() -> Self {
        Part(PhantomData)
    }
}

/// A [`Signature`] `S` whose output has the shape `M` (chosen by the type checker).
pub struct Shaped<S, M>(PhantomData<fn() -> (S, M)>);

impl<S, M> Types for Shaped<S, M>
where
    S: Signature,
    M: Shape<S::Output> + 'static,
{
    type Key = S::Key;
    type Value = M::Value;
}

impl<S, M> Function for Shaped<S, M>
where
    S: KeyFn,
    M: Shape<S::Output> + 'static,
    M::Value: CachedValue,
{
    type Lookup<'a> = S::Lookup<'a>;
    type Output = S::Output;
    type Shape = M;

    #[inline]
    fn to_key(lookup: &Self::Lookup<'_>) -> Self::Key {
        S::to_key(lookup)
    }

    fn key_text(key: &Self::Key) -> Option<String> {
        S::key_text(key)
    }
}
