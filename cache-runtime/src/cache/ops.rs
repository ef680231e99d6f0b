//! What a [`Cache`](super::Cache) asks of its engine, without the engine's store in its type:
//! the backend is chosen at run time, so the cache holds its engine as `&dyn Ops`.

use std::future::Future;
use std::pin::Pin;

use crate::answer::Cached;
use crate::engine::Engine;
use crate::handle::CacheHandle;
use crate::invalidation::Invalidation;
use crate::store::Store;
use crate::tags::Tags;

use super::keyed::{ByRef, Keyed, Nulls, Outcome};
use crate::bounds::{CachedValue, KeyParam};

/// A load run in place by a sync caller.
pub(crate) type Load<'a, V> = Box<dyn FnOnce() -> Outcome<V> + 'a>;

/// A boxed future of an async call.
pub(crate) type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The engine's calls, by a borrowed key. Every miss path takes the call's tags (their
/// versions taken before its load starts).
pub(crate) trait Ops<K, V>: Send + Sync {
    /// The in-process hit path ([`Engine::get`]).
    fn hit(&self, key: &K) -> Option<Outcome<V>>;
    /// `entry_or_load`'s hit path.
    fn hit_entry(&self, key: &K) -> Option<Cached<Outcome<V>>>;
    /// The miss path: load once per key, or wait for the load running.
    fn load(&'static self, key: &K, tags: Tags, load: Load<'_, V>) -> Outcome<V>;
    /// The async miss path (the key is copied at the call: the future does not borrow it).
    fn load_async<'a>(
        &'static self,
        key: &K,
        tags: Tags,
        load: Boxed<'a, Outcome<V>>,
    ) -> Boxed<'a, Outcome<V>>;
    /// The calls of a batch's missing keys: one read of all of them from the store, then
    /// each key's miss path from its read, with its body.
    fn load_many_async<'a>(
        &'static self,
        keys: &[K],
        tags: Vec<Tags>,
        loads: Vec<Boxed<'a, Outcome<V>>>,
    ) -> Boxed<'a, Vec<Boxed<'a, Outcome<V>>>>;
    /// `entry_or_load`'s miss path.
    fn load_entry(&'static self, key: &K, tags: Tags, load: Load<'_, V>) -> Cached<Outcome<V>>;
    /// `entry_or_load_async`'s miss path.
    fn load_entry_async<'a>(
        &'static self,
        key: &'a K,
        tags: Tags,
        load: Boxed<'a, Outcome<V>>,
    ) -> Boxed<'a, Cached<Outcome<V>>>;
    /// A read without a load.
    fn peek(&'static self, key: &K, tags: Tags) -> Option<Outcome<V>>;
    /// The async read without a load.
    fn peek_async<'a>(&'static self, key: &'a K, tags: Tags) -> Boxed<'a, Option<Outcome<V>>>;
    /// A write-through of what `load` gives, fenced like a load.
    fn refresh(&'static self, key: &K, tags: Tags, load: Load<'_, V>) -> Outcome<V>;
    /// The async write-through.
    fn refresh_async<'a>(
        &'static self,
        key: &'a K,
        tags: Tags,
        load: Boxed<'a, Outcome<V>>,
    ) -> Boxed<'a, Outcome<V>>;
    /// Removes the key everywhere and fences its loads in flight.
    fn invalidate(&'static self, key: &K) -> Invalidation;
    /// The async invalidation.
    fn invalidate_async<'a>(&'static self, key: &'a K) -> Boxed<'a, Invalidation>;
    /// The cache's handle (name, backend, stats, clear).
    fn handle(&'static self) -> &'static CacheHandle;
}

impl<K, V, N, S> Ops<K, V> for Engine<Keyed<K, V, N>, S>
where
    K: KeyParam,
    V: CachedValue,
    N: Nulls<V>,
    S: Store<Keyed<K, V, N>>,
{
    #[inline]
    fn hit(&self, key: &K) -> Option<Outcome<V>> {
        self.get(&ByRef(key))
    }

    fn hit_entry(&self, key: &K) -> Option<Cached<Outcome<V>>> {
        self.get_entry(&ByRef(key))
    }

    fn load(&'static self, key: &K, tags: Tags, load: Load<'_, V>) -> Outcome<V> {
        let key = self.key(&ByRef(key), tags);
        Engine::load(self, key, load)
    }

    fn load_async<'a>(
        &'static self,
        key: &K,
        tags: Tags,
        load: Boxed<'a, Outcome<V>>,
    ) -> Boxed<'a, Outcome<V>> {
        let key = self.key(&ByRef(key), tags);
        Box::pin(Engine::load_async(self, key, load))
    }

    fn load_many_async<'a>(
        &'static self,
        keys: &[K],
        tags: Vec<Tags>,
        loads: Vec<Boxed<'a, Outcome<V>>>,
    ) -> Boxed<'a, Vec<Boxed<'a, Outcome<V>>>> {
        let keys: Vec<_> = keys
            .iter()
            .zip(tags)
            .map(|(key, tags)| self.key(&ByRef(key), tags))
            .collect();
        Box::pin(async move {
            let reads = self.read_many_async(&keys).await;
            let calls = keys.into_iter().zip(reads).zip(loads);
            calls
                .map(|((key, read), load)| {
                    Box::pin(self.load_read_async(key, Some(read), load)) as Boxed<'a, _>
                })
                .collect()
        })
    }

    fn load_entry(&'static self, key: &K, tags: Tags, load: Load<'_, V>) -> Cached<Outcome<V>> {
        let key = self.key(&ByRef(key), tags);
        Engine::load_entry(self, key, load)
    }

    fn load_entry_async<'a>(
        &'static self,
        key: &'a K,
        tags: Tags,
        load: Boxed<'a, Outcome<V>>,
    ) -> Boxed<'a, Cached<Outcome<V>>> {
        let key = self.key(&ByRef(key), tags);
        Box::pin(Engine::load_entry_async(self, key, load))
    }

    fn peek(&'static self, key: &K, tags: Tags) -> Option<Outcome<V>> {
        Engine::peek(self, &ByRef(key), tags)
    }

    fn peek_async<'a>(&'static self, key: &'a K, tags: Tags) -> Boxed<'a, Option<Outcome<V>>> {
        Box::pin(async move { Engine::peek_async(self, &ByRef(key), tags).await })
    }

    fn refresh(&'static self, key: &K, tags: Tags, load: Load<'_, V>) -> Outcome<V> {
        let key = self.key(&ByRef(key), tags);
        Engine::refresh(self, key, load)
    }

    fn refresh_async<'a>(
        &'static self,
        key: &'a K,
        tags: Tags,
        load: Boxed<'a, Outcome<V>>,
    ) -> Boxed<'a, Outcome<V>> {
        let key = self.key(&ByRef(key), tags);
        Box::pin(Engine::refresh_async(self, key, load))
    }

    fn invalidate(&'static self, key: &K) -> Invalidation {
        Engine::invalidate(self, &ByRef(key))
    }

    fn invalidate_async<'a>(&'static self, key: &'a K) -> Boxed<'a, Invalidation> {
        Box::pin(async move { Engine::invalidate_async(self, &ByRef(key)).await })
    }

    fn handle(&'static self) -> &'static CacheHandle {
        Engine::handle(self)
    }
}
