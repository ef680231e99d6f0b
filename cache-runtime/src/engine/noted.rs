//! The miss paths of `f_entry` and `f_warm`: [`Engine::load`] with how the call was
//! answered, and one key of a warming.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::answer::{self, CacheStatus, Cached};
use crate::body::{AsyncBody, CatchUnwind, SyncBody};
use crate::function::Function;
use crate::shape::Shape;
use crate::store::Store;
use crate::warm::Warm;

use super::{Engine, Key};

impl<F: Function, S: Store<F>> Engine<F, S> {
    /// `f_entry`'s miss path: [`Engine::load`] with how the call was answered.
    pub fn load_entry(
        &'static self,
        key: Key<F, S>,
        body: impl SyncBody<F::Output>,
    ) -> Cached<F::Output> {
        let tags = key.tags.names().map(str::to_owned).collect();
        let local = key.local.clone();
        let (result, noted) = answer::noting(|| self.load(key, body));
        self.loaded_answer(result, noted, &local).tagged(tags)
    }

    /// The async twin of [`Engine::load_entry`].
    pub async fn load_entry_async(
        &'static self,
        key: Key<F, S>,
        body: impl AsyncBody<F::Output>,
    ) -> Cached<F::Output> {
        let tags = key.tags.names().map(str::to_owned).collect();
        let local = key.local.clone();
        let (result, noted) = answer::noting_async(self.load_async(key, body)).await;
        self.loaded_answer(result, noted, &local).tagged(tags)
    }

    /// `f_entry`'s answer after a load (its own, or one it waited for): reported as stored
    /// only if it still is. On the in-process store, a load that an invalidation cut off (a
    /// tag invalidated since it started, or its key) answers its caller but was not kept;
    /// telling an HTTP cache to keep it (`max-age`) would let the cache in front keep the old
    /// value after the purge went out, so it is reported as not stored (`no-store`).
    fn loaded_answer<R>(
        &self,
        result: R,
        noted: Option<answer::Noted>,
        local: &F::Key,
    ) -> Cached<R> {
        // In process alone the store holds exactly what was written (a write an invalidation
        // cut off, by a tag or its key, was dropped). A shared store's entry is checked
        // against its tags when it is read, reading it back would cost a round trip, and an
        // L1 keeps copies at its own discretion: there the answer is taken as stored.
        let noted = noted.map(|noted| noted.unless_kept(|v| Self::SHARED || self.holds(local, v)));
        self.answer(result, noted)
    }

    /// Whether the in-process store holds `key`'s entry of `version`.
    fn holds(&self, key: &F::Key, version: u64) -> bool {
        self.local
            .get(key)
            .is_some_and(|entry| entry.times.version == version)
    }

    /// `f_warm`'s call for one key (its hit path found no fresh entry in process): loaded,
    /// skipped (fresh in the shared store), or failed (an error or a panic, caught).
    pub fn warm_load(&'static self, key: Key<F, S>, body: impl SyncBody<F::Output>) -> Warm {
        let loaded = catch_unwind(AssertUnwindSafe(|| self.load_entry(key, body)));
        Self::warmed(loaded.ok())
    }

    /// The async twin of [`Engine::warm_load`].
    pub async fn warm_load_async(
        &'static self,
        key: Key<F, S>,
        body: impl AsyncBody<F::Output>,
    ) -> Warm {
        let loaded = CatchUnwind::new(self.load_entry_async(key, body)).await;
        Self::warmed(loaded.ok())
    }

    /// A stale key counts as loaded: its revalidation started (or was running).
    fn warmed(answer: Option<Cached<F::Output>>) -> Warm {
        match answer {
            Some(a) if a.load_failed => Warm::Failed,
            Some(a) if matches!(a.status(), CacheStatus::Hit | CacheStatus::NullHit) => {
                Warm::Skipped
            }
            Some(a) if F::Shape::to_slot(a.value()).is_some() => Warm::Loaded,
            _ => Warm::Failed,
        }
    }
}
