//! [`Function`]: the types of one cached function, as the macro describes them.
//!
//! `#[cached]` implements this trait for a type private to the function. Every bound the cache
//! needs (a hashable key, a cloneable value, a return type of the shape it claims) is a bound of
//! an associated type here, so rustc checks it once, where the macro writes that type — with the
//! span of the parameter or the return type — and not again at every use of the cache.

use std::hash::Hash;

use quick_cache::Equivalent;

use crate::shape::Shape;

/// The types of one cached function.
pub trait Function: Sized + 'static {
    /// The owned key: a tuple with one part per key parameter or placeholder.
    type Key: Hash + Eq + Clone + Send + Sync + 'static;
    /// The same key with borrowed parts, for lookups that must not allocate.
    type Lookup<'a>: Hash + Equivalent<Self::Key>;
    /// The function's return type.
    type Output;
    /// What the cache keeps of an output.
    type Value: Clone + Send + Sync + 'static;
    /// How outputs map to cached values and nulls.
    type Shape: Shape<Self::Output, Value = Self::Value>;

    /// The owned key of a lookup (on a miss, for the insert).
    fn to_key(lookup: &Self::Lookup<'_>) -> Self::Key;
}
