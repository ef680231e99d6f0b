//! Return shapes: which results are cached, as what, and how a cached slot becomes a result.
//!
//! The macro reads the shape from the written return type and names one of the four markers
//! below; the compiler then checks that the type really has that shape.
//!
//! | shape | cached as a value | cached as a null | not cached |
//! |---|---|---|---|
//! | [`Plain`]: `T` | every result | – | – |
//! | [`Res`]: `Result<T, E>` | `Ok(t)` | – | `Err(e)` |
//! | [`Opt`]: `Option<T>` | `Some(t)` | `None` | – |
//! | [`ResOpt`]: `Result<Option<T>, E>` | `Ok(Some(t))` | `Ok(None)` | `Err(e)` |

use crate::entry::Slot;

/// How results of type `R` map to cache slots.
#[diagnostic::on_unimplemented(
    message = "`#[cached]` read `{R}` as a `Result` or `Option` by its name, but it is not one",
    label = "not `core::result::Result` or `core::option::Option`",
    note = "write the standard type (`Result<T, E>`, `Option<T>`, or an alias of them)"
)]
pub trait Shape<R> {
    /// The type kept in the cache.
    type Value;

    /// The slot to store for `result` (borrowing its value), or `None` when the result must
    /// not be cached (an error).
    fn to_slot(result: &R) -> Option<Slot<&Self::Value>>;

    /// The result a cached slot stands for, or `None` when this shape has no such result
    /// (a null for a shape without nulls), which the cache treats as a miss.
    fn from_slot(slot: Slot<Self::Value>) -> Option<R>;
}

/// `T`: every result is cached.
#[derive(Debug)]
pub enum Plain {}
/// `Result<T, E>`: `Ok` is cached, `Err` never is.
#[derive(Debug)]
pub enum Res {}
/// `Option<T>`: `Some` is cached, `None` is a null.
#[derive(Debug)]
pub enum Opt {}
/// `Result<Option<T>, E>`: `Ok(Some)` is cached, `Ok(None)` is a null, `Err` never is cached.
#[derive(Debug)]
pub enum ResOpt {}

impl<T> Shape<T> for Plain {
    type Value = T;
    #[inline]
    fn to_slot(result: &T) -> Option<Slot<&T>> {
        Some(Slot::Value(result))
    }
    #[inline]
    fn from_slot(slot: Slot<T>) -> Option<T> {
        match slot {
            Slot::Value(v) => Some(v),
            Slot::Null => None,
        }
    }
}

impl<T, E> Shape<Result<T, E>> for Res {
    type Value = T;
    #[inline]
    fn to_slot(result: &Result<T, E>) -> Option<Slot<&T>> {
        result.as_ref().ok().map(Slot::Value)
    }
    #[inline]
    fn from_slot(slot: Slot<T>) -> Option<Result<T, E>> {
        match slot {
            Slot::Value(v) => Some(Ok(v)),
            Slot::Null => None,
        }
    }
}

impl<T> Shape<Option<T>> for Opt {
    type Value = T;
    #[inline]
    fn to_slot(result: &Option<T>) -> Option<Slot<&T>> {
        Some(match result {
            Some(v) => Slot::Value(v),
            None => Slot::Null,
        })
    }
    #[inline]
    fn from_slot(slot: Slot<T>) -> Option<Option<T>> {
        Some(match slot {
            Slot::Value(v) => Some(v),
            Slot::Null => None,
        })
    }
}

impl<T, E> Shape<Result<Option<T>, E>> for ResOpt {
    type Value = T;
    #[inline]
    fn to_slot(result: &Result<Option<T>, E>) -> Option<Slot<&T>> {
        match result {
            Ok(Some(v)) => Some(Slot::Value(v)),
            Ok(None) => Some(Slot::Null),
            Err(_) => None,
        }
    }
    #[inline]
    fn from_slot(slot: Slot<T>) -> Option<Result<Option<T>, E>> {
        Some(Ok(match slot {
            Slot::Value(v) => Some(v),
            Slot::Null => None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_never_cached() {
        assert_eq!(<Res as Shape<Result<u8, ()>>>::to_slot(&Err(())), None);
        assert_eq!(
            <ResOpt as Shape<Result<Option<u8>, ()>>>::to_slot(&Err(())),
            None
        );
    }

    #[test]
    fn none_is_a_null_and_round_trips() {
        assert_eq!(<Opt as Shape<Option<u8>>>::to_slot(&None), Some(Slot::Null));
        assert_eq!(
            <Opt as Shape<Option<u8>>>::from_slot(Slot::Null),
            Some(None)
        );
        let slot = <ResOpt as Shape<Result<Option<u8>, ()>>>::to_slot(&Ok(None));
        assert_eq!(slot, Some(Slot::Null));
    }

    #[test]
    fn nested_options_keep_inner_none_apart_from_the_null() {
        type R = Option<Option<u8>>;
        assert_eq!(
            <Opt as Shape<R>>::to_slot(&Some(None)),
            Some(Slot::Value(&None))
        );
        assert_eq!(
            <Opt as Shape<R>>::from_slot(Slot::Value(None)),
            Some(Some(None))
        );
        assert_eq!(<Opt as Shape<R>>::from_slot(Slot::Null), Some(None));
    }

    #[test]
    fn a_null_is_a_miss_for_shapes_without_nulls() {
        assert_eq!(<Plain as Shape<u8>>::from_slot(Slot::Null), None);
        assert_eq!(<Res as Shape<Result<u8, ()>>>::from_slot(Slot::Null), None);
    }
}
