//! Return shapes: which results are cached, as what, and how a cached slot becomes a result.
//!
//! The shape of a return type is decided by the type checker, not by the written name: the
//! generated code calls `(&&&Probe::<R>::new()).pick()`, and method resolution picks the most
//! specific of the four impls below for the concrete `R` (autoref-based specialization: an impl
//! for `&&Probe<Result<Option<T>, E>>` is found before one for `&Probe<Result<T, E>>`, which is
//! found before the one for every `Probe<R>`). So `type Fallible<T> = Result<T, String>`,
//! `std::fmt::Result`, `anyhow::Result<T>` and `io::Result<T>` are all `Result`s, and a type
//! of the user's that is merely *named* `Result` is a plain value.
//!
//! | shape | cached as a value | cached as a null | not cached |
//! |---|---|---|---|
//! | [`Plain`]: `T` | every result | – | – |
//! | [`Res`]: `Result<T, E>` | `Ok(t)` | – | `Err(e)` |
//! | [`Opt`]: `Option<T>` | `Some(t)` | `None` | – |
//! | [`ResOpt`]: `Result<Option<T>, E>` | `Ok(Some(t))` | `Ok(None)` | `Err(e)` |
//!
//! A return type that is a bare type parameter or an associated type of one (possible only
//! inside a generic `impl`) is decided where the function is written, so it is [`Plain`].

use std::marker::PhantomData;

use crate::entry::Slot;

/// How results of type `R` map to cache slots.
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

/// Asks the type checker for the shape of `R`: see the module docs.
pub struct Probe<R>(PhantomData<fn() -> R>);

impl<R> Default for Probe<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R> Probe<R> {
    /// The probe of `R`.
    #[inline]
    pub const fn new() -> Self {
        Probe(PhantomData)
    }
}

/// The shape marker `M` the probe picked, as a value.
pub struct Picked<M>(PhantomData<fn() -> M>);

/// The probe's impls, one trait per level of references; generated code imports all four.
pub mod pick {
    use super::{Opt, Picked, Plain, Probe, Res, ResOpt};
    use std::marker::PhantomData;

    /// `Result<Option<T>, E>`.
    pub trait PickResOpt {
        /// The shape of the probed type.
        fn pick(&self) -> Picked<ResOpt> {
            Picked(PhantomData)
        }
    }
    impl<T, E> PickResOpt for &&Probe<Result<Option<T>, E>> {}

    /// `Result<T, E>`.
    pub trait PickRes {
        /// The shape of the probed type.
        fn pick(&self) -> Picked<Res> {
            Picked(PhantomData)
        }
    }
    impl<T, E> PickRes for &Probe<Result<T, E>> {}

    /// `Option<T>`.
    pub trait PickOpt {
        /// The shape of the probed type.
        fn pick(&self) -> Picked<Opt> {
            Picked(PhantomData)
        }
    }
    impl<T> PickOpt for &Probe<Option<T>> {}

    /// Every other type.
    pub trait PickPlain {
        /// The shape of the probed type.
        fn pick(&self) -> Picked<Plain> {
            Picked(PhantomData)
        }
    }
    impl<R> PickPlain for Probe<R> {}
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
    use super::pick::{PickOpt as _, PickPlain as _, PickRes as _, PickResOpt as _};
    use super::*;

    fn shape_of<M: 'static>(_: Picked<M>) -> std::any::TypeId {
        std::any::TypeId::of::<M>()
    }

    macro_rules! shape {
        ($t:ty) => {
            shape_of((&&&Probe::<$t>::new()).pick())
        };
    }

    #[test]
    fn the_type_checker_decides_the_shape() {
        use std::any::TypeId;
        type Fallible<T> = Result<T, String>;
        mod own {
            pub(crate) struct Result<T>(pub(crate) T);
        }
        assert_eq!(shape!(u64), TypeId::of::<Plain>());
        assert_eq!(shape!(Fallible<u32>), TypeId::of::<Res>());
        assert_eq!(shape!(std::fmt::Result), TypeId::of::<Res>());
        assert_eq!(shape!(std::io::Result<Option<u8>>), TypeId::of::<ResOpt>());
        assert_eq!(shape!(Option<Option<u8>>), TypeId::of::<Opt>());
        assert_eq!(
            shape!(own::Result<u8>),
            TypeId::of::<Plain>(),
            "a type named Result"
        );
        let _ = own::Result(0u8).0;
    }

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
