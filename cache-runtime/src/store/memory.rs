//! [`Memory`]: the in-process store. Its entries live in the engine's local store, so none of
//! its operations is ever called; each answers as if it were.

use super::{
    Function, Leased, Op, Published, Read, Setup, Slot, Start, Store, StoreError, Tags, Tier,
    Times, done,
};

/// The in-process store (`backend = "memory"`): entries live in the engine's local store
/// (quick_cache), bounded by `max_entries`.
#[derive(Debug)]
pub struct Memory;

impl<F: Function> Store<F> for Memory {
    const NAME: &'static str = "memory";
    const TIER: Tier = Tier::Local;
    type Key = ();
    type Lease = ();

    fn open(_: Setup<'_>) -> Self {
        Memory
    }

    #[inline]
    fn key(&self, _: &F::Lookup<'_>, _: &Tags) -> Result<(), StoreError> {
        Ok(())
    }

    fn read(&'static self, _: &()) -> Op<Read<F::Value>> {
        done(Ok(Read::Miss))
    }

    fn lease(&'static self, _: &(), _: Start) -> Op<Leased<(), F::Value>> {
        done(Ok(Leased::Lease(())))
    }

    fn publish(&'static self, _: &(), _: (), _: Option<(Slot<&F::Value>, Times)>) -> Op<Published> {
        done(Ok(Published::VALID))
    }

    fn keep(&'static self, _: &(), _: &(), _: (Slot<&F::Value>, Times)) -> Op<bool> {
        done(Ok(true))
    }

    fn invalidate(&'static self, _: &()) -> Op<()> {
        done(Ok(()))
    }

    fn clear(&'static self) -> Op<()> {
        done(Ok(()))
    }
}
