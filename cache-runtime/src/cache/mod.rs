//! [`Cache`]: the cache as a value, on the engine of `#[cached]`.
//!
//! | piece | where |
//! |---|---|
//! | the cache and its calls | this file |
//! | its settings | `builder.rs` |
//! | its types as the engine sees them (key, outcome, nulls, Redis layout) | `keyed.rs` |
//! | the engine's calls behind `dyn` (the backend is chosen at run time) | `ops.rs` |
//! | loading many keys at once | `batch.rs` |

mod batch;
mod builder;
mod keyed;
mod ops;

use std::fmt;
use std::future::Future;
use std::sync::{Mutex, PoisonError};

pub use builder::{Backend, BuildError, CacheBuilder};
pub(crate) use keyed::{Keyed, NoNulls, NoneIsNull, Nulls};
pub(crate) use ops::Ops;

use crate::answer::Cached;
use crate::bounds::{CachedValue, KeyParam};
use crate::engine::Engine;
use crate::handle::CacheHandle;
use crate::invalidation::Invalidation;
use crate::stats::Stats;
use crate::store::Memory;
use crate::tags::Tags;
use keyed::Outcome;

/// A cache you hold: the engine of `#[cached]` (single-flight, fencing, freshness phases,
/// tags, the outage fallback, metrics, the registry) behind a value, for keys that are not a
/// function's arguments (an HTTP request, a message, a key built at run time) and for code
/// that caches on its users' behalf. The `get_or_load` of FusionCache (`GetOrSet`), Caffeine
/// (`get(key, loader)`) and moka.
///
/// Build one with [`Cache::builder`] (every attribute argument is a builder method), keep it
/// in a `static` (`LazyLock`) or in your state, and share it by reference across threads and
/// tasks; it is `Copy`. On Redis its keys follow the documented layout,
/// `{prefix}{name}:[<key as JSON>]`, the key a `#[cached]` function of one parameter of type
/// `K` writes.
///
/// A load passed to a `Cache` borrows from its caller, so it never outlives its call: with
/// `stale`, the call that finds an entry expired revalidates it in place (other callers are
/// answered with the stale value at once), and `load_timeout` waits for the load (as for a
/// `#[cached]` function whose parameters are borrowed).
///
/// A `Cache<K, Option<T>>` caches `None` as a null (for `null_ttl`, in the null envelope on
/// Redis) once [`CacheBuilder::null_ttl`] is set; without it, `None` is a value like any other.
///
/// ```
/// use std::sync::LazyLock;
/// use std::time::Duration;
/// use cache_runtime::{Backend, Cache};
///
/// static USERS: LazyLock<Cache<u64, String>> = LazyLock::new(|| {
///     Cache::builder("users")
///         .ttl(Duration::from_secs(60))
///         .backend(Backend::Memory)
///         .build()
///         .expect("valid settings")
/// });
///
/// let name = USERS.get_or_load(7, || "user 7".to_owned()); // loaded
/// let again = USERS.get_or_load(7, || unreachable!("a hit"));
/// assert_eq!(name, again);
/// assert_eq!(USERS.stats().loads, 1);
/// ```
pub struct Cache<K: 'static, V: 'static> {
    /// The engine of an in-process cache without nulls, for a hit path without a `dyn` call.
    memory: Option<&'static Engine<Keyed<K, V, NoNulls>, Memory>>,
    ops: &'static dyn Ops<K, V>,
    is_null: fn(&V) -> bool,
    /// The value of a null, where this cache has nulls.
    null: fn() -> Option<V>,
    tags: Option<fn(&K) -> Vec<String>>,
}

/// A cache's engine, as its backend opened it, with the rule for its nulls.
pub(crate) struct Opened<K: 'static, V: 'static> {
    pub(crate) memory: Option<&'static Engine<Keyed<K, V, NoNulls>, Memory>>,
    pub(crate) ops: &'static dyn Ops<K, V>,
    pub(crate) is_null: fn(&V) -> bool,
    pub(crate) null: fn() -> Option<V>,
}

impl<K: 'static, V: 'static> Clone for Cache<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K: 'static, V: 'static> Copy for Cache<K, V> {}

impl<K: 'static, V: 'static> Cache<K, V> {
    fn new(opened: Opened<K, V>, tags: Option<fn(&K) -> Vec<String>>) -> Self {
        Cache {
            memory: opened.memory,
            ops: opened.ops,
            is_null: opened.is_null,
            null: opened.null,
            tags,
        }
    }
}

impl<K: KeyParam, V: CachedValue> Cache<K, V> {
    /// `key`'s value: a hit, or the result of `load` (run once per key at a time: other
    /// callers of the key wait for it, in this process and, with `Lock::Distributed`, in every
    /// process sharing Redis), stored for the next callers. A panic in `load` reaches its
    /// caller and stores nothing.
    #[inline]
    pub fn get_or_load(&self, key: K, load: impl FnOnce() -> V) -> V {
        if let Some(hit) = self.hit(&key) {
            return value(hit);
        }
        let tags = self.tags_of(&key);
        value(self.ops.load(&key, tags, Box::new(|| self.outcome(load()))))
    }

    /// [`Cache::get_or_load`] with a fallible load: `Ok` is stored, an `Err` is returned to
    /// this caller and never stored (a caller that waited for this load loads itself). With
    /// `stale_if_error`, an expired value answers `Ok` in place of an error.
    pub fn try_get_or_load<E>(&self, key: K, load: impl FnOnce() -> Result<V, E>) -> Result<V, E> {
        if let Some(hit) = self.hit(&key) {
            return Ok(value(hit));
        }
        let tags = self.tags_of(&key);
        let mut error = None;
        let body = Box::new(|| wrap_or_keep(self.is_null, load(), &mut error));
        let outcome = self.ops.load(&key, tags, body);
        result(outcome, error)
    }

    /// The async twin of [`Cache::get_or_load`]: `load` makes the future that loads. A caller
    /// cancelled while it loads drops its load (another caller of the key then loads).
    pub async fn get_or_load_async<Fut>(&self, key: K, load: impl FnOnce() -> Fut) -> V
    where
        Fut: Future<Output = V> + Send,
    {
        if let Some(hit) = self.hit(&key) {
            return value(hit);
        }
        let tags = self.tags_of(&key);
        let is_null = self.is_null;
        let fut = load();
        let load = Box::pin(async move { wrap(is_null, fut.await) });
        value(self.ops.load_async(&key, tags, load).await)
    }

    /// The async twin of [`Cache::try_get_or_load`].
    pub async fn try_get_or_load_async<E, Fut>(
        &self,
        key: K,
        load: impl FnOnce() -> Fut,
    ) -> Result<V, E>
    where
        E: Send,
        Fut: Future<Output = Result<V, E>> + Send,
    {
        if let Some(hit) = self.hit(&key) {
            return Ok(value(hit));
        }
        let tags = self.tags_of(&key);
        let is_null = self.is_null;
        let error = Mutex::new(None);
        let body = Box::pin(keeping_error(is_null, load(), &error));
        let outcome = self.ops.load_async(&key, tags, body).await;
        result(
            outcome,
            error.into_inner().unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// [`Cache::get_or_load`] with how the call was answered and how long the answer may be
    /// kept (`Cache-Control`, `Age`, `ETag`): `f_entry` of a cached function.
    pub fn entry_or_load(&self, key: K, load: impl FnOnce() -> V) -> Cached<V> {
        let answer = match self.ops.hit_entry(&key) {
            Some(hit) => self.tag_hit(hit, &key),
            None => {
                let tags = self.tags_of(&key);
                let load = Box::new(|| self.outcome(load()));
                self.ops.load_entry(&key, tags, load)
            }
        };
        answer.map(value)
    }

    /// The async twin of [`Cache::entry_or_load`].
    pub async fn entry_or_load_async<Fut>(&self, key: K, load: impl FnOnce() -> Fut) -> Cached<V>
    where
        Fut: Future<Output = V> + Send,
    {
        let answer = match self.ops.hit_entry(&key) {
            Some(hit) => self.tag_hit(hit, &key),
            None => {
                let tags = self.tags_of(&key);
                let is_null = self.is_null;
                let fut = load();
                let load = Box::pin(async move { wrap(is_null, fut.await) });
                self.ops.load_entry_async(&key, tags, load).await
            }
        };
        answer.map(value)
    }

    /// [`Cache::entry_or_load_async`] with a fallible load: `Ok` is stored and answered with
    /// how it was answered; an `Err` is returned to this caller and never stored (a caller that
    /// waited for this load loads itself). With `stale_if_error`, an expired value answers
    /// `Ok` (status [`Stale`](crate::CacheStatus::Stale)) in place of an error.
    pub async fn try_entry_or_load_async<E, Fut>(
        &self,
        key: K,
        load: impl FnOnce() -> Fut,
    ) -> Result<Cached<V>, E>
    where
        E: Send,
        Fut: Future<Output = Result<V, E>> + Send,
    {
        match self.try_entry_tagged_async(key, None, load).await {
            (Some(answer), _) => Ok(answer),
            (None, Some(e)) => Err(e),
            // An error is answered only to the call whose load failed, which kept it.
            (None, None) => unreachable!("a load's error reached another call"),
        }
    }

    /// [`Cache::try_entry_or_load_async`] with the entry's tags given by the caller (`None`:
    /// the cache's `tags` function's), answering both what answered and this call's own
    /// load's error: a kept value (`stale_if_error`) may answer in place of the error, and
    /// the HTTP layer decides which to serve.
    pub(crate) async fn try_entry_tagged_async<E, Fut>(
        &self,
        key: K,
        tags: Option<Vec<String>>,
        load: impl FnOnce() -> Fut,
    ) -> (Option<Cached<V>>, Option<E>)
    where
        E: Send,
        Fut: Future<Output = Result<V, E>> + Send,
    {
        let names = tags
            .or_else(|| self.tags.map(|tags| tags(&key)))
            .unwrap_or_default();
        if let Some(hit) = self.ops.hit_entry(&key) {
            return (Some(hit.tagged(names).map(value)), None);
        }
        let stamped = Tags::from_names(names.iter().cloned());
        let is_null = self.is_null;
        let error = Mutex::new(None);
        let body = Box::pin(keeping_error(is_null, load(), &error));
        let answer = self.ops.load_entry_async(&key, stamped, body).await;
        let error = error.into_inner().unwrap_or_else(PoisonError::into_inner);
        match answer.value() {
            Outcome::Failed => (None, error),
            _ => (Some(answer.map(value)), error),
        }
    }

    /// `key`'s fresh value, without loading: in process, else in Redis (else, while Redis
    /// fails, in the outage fallback). `None` for an absent, expired or invalidated entry,
    /// and for a key being loaded (it does not wait). A hit is counted; an absence is not.
    pub fn get(&self, key: &K) -> Option<V> {
        let tags = self.tags_of(key);
        self.ops.peek(key, tags).map(value)
    }

    /// The async twin of [`Cache::get`].
    pub async fn get_async(&self, key: &K) -> Option<V> {
        let tags = self.tags_of(key);
        self.ops.peek_async(key, tags).await.map(value)
    }

    /// Stores `value` for `key` now (write-through), fenced like a load: an invalidation of
    /// `key` that comes while it is written wins. Other processes drop their L1 copies. A
    /// value that is not stored (`ttl_fn` gave zero, a `None` without null caching) removes
    /// the entry it replaces.
    pub fn insert(&self, key: K, value: V) {
        let tags = self.tags_of(&key);
        let _ = self
            .ops
            .refresh(&key, tags, Box::new(|| self.outcome(value)));
    }

    /// The async twin of [`Cache::insert`].
    pub async fn insert_async(&self, key: K, value: V) {
        let tags = self.tags_of(&key);
        let outcome = self.outcome(value);
        let _ = self
            .ops
            .refresh_async(&key, tags, Box::pin(async move { outcome }))
            .await;
    }

    /// Removes `key`'s entry everywhere it lives (this process, Redis, other processes' L1
    /// copies) and fences the loads of it in flight, so none writes its result back.
    /// `Pending` when Redis could not be reached: the invalidation is kept and replayed before
    /// this process reads Redis again (as `f_invalidate`).
    pub fn invalidate(&self, key: &K) -> Invalidation {
        self.ops.invalidate(key)
    }

    /// The async twin of [`Cache::invalidate`].
    pub async fn invalidate_async(&self, key: &K) -> Invalidation {
        self.ops.invalidate_async(key).await
    }

    /// Hits, misses, loads, waits, errors and size (this cache's, plus its fallback's).
    pub fn stats(&self) -> Stats {
        self.handle().stats()
    }

    /// The cache's handle: name, backend, stats, `clear`; the one [`caches`](crate::caches)
    /// lists.
    pub fn handle(&self) -> &'static CacheHandle {
        self.ops.handle()
    }

    /// The in-process hit path.
    #[inline]
    fn hit(&self, key: &K) -> Option<Outcome<V>> {
        match self.memory {
            Some(engine) => engine.get(&keyed::ByRef(key)),
            None => self.ops.hit(key),
        }
    }

    /// The tags of `key`'s entry, their versions taken now (before its load starts).
    fn tags_of(&self, key: &K) -> Tags {
        match self.tags {
            Some(tags) => Tags::from_names(tags(key)),
            None => Tags::NONE,
        }
    }

    /// A hit of `entry_or_load`, reporting `key`'s tags.
    fn tag_hit(&self, hit: Cached<Outcome<V>>, key: &K) -> Cached<Outcome<V>> {
        match self.tags {
            Some(tags) => hit.tagged(tags(key)),
            None => hit,
        }
    }

    fn outcome(&self, v: V) -> Outcome<V> {
        wrap(self.is_null, v)
    }
}

impl<K: 'static, V: 'static> fmt::Debug for Cache<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache").finish_non_exhaustive()
    }
}

/// A loaded value, as the engine keeps it.
fn wrap<V>(is_null: fn(&V) -> bool, v: V) -> Outcome<V> {
    match is_null(&v) {
        true => Outcome::Null(v),
        false => Outcome::Value(v),
    }
}

/// A fallible load's result, as the engine keeps it: an error is kept in `error`, for its
/// caller alone.
fn wrap_or_keep<V, E>(
    is_null: fn(&V) -> bool,
    result: Result<V, E>,
    error: &mut Option<E>,
) -> Outcome<V> {
    match result {
        Ok(v) => wrap(is_null, v),
        Err(e) => {
            *error = Some(e);
            Outcome::Failed
        }
    }
}

/// An async fallible load as the engine runs it: its error, if it failed, kept in `error` for
/// its caller alone.
async fn keeping_error<V, E>(
    is_null: fn(&V) -> bool,
    load: impl Future<Output = Result<V, E>>,
    error: &Mutex<Option<E>>,
) -> Outcome<V> {
    let mut kept = None;
    let outcome = wrap_or_keep(is_null, load.await, &mut kept);
    *error.lock().unwrap_or_else(PoisonError::into_inner) = kept;
    outcome
}

/// The value of an answer of an infallible load.
fn value<V>(outcome: Outcome<V>) -> V {
    match outcome {
        Outcome::Value(v) | Outcome::Null(v) => v,
        // Only a load of `try_get_or_load` fails, and its error goes to its own caller
        // (the engine never shares or stores an error).
        Outcome::Failed => unreachable!("an infallible load gave an error"),
    }
}

/// The answer of a fallible load whose error, if it failed, is `error`. A value answers even
/// after the load failed (`stale_if_error`: a kept value answers in its place).
fn result<V, E>(outcome: Outcome<V>, error: Option<E>) -> Result<V, E> {
    match (outcome, error) {
        (Outcome::Value(v) | Outcome::Null(v), _) => Ok(v),
        (Outcome::Failed, Some(e)) => Err(e),
        // An error is answered only to the call whose load failed, which kept it.
        (Outcome::Failed, None) => unreachable!("a load's error reached another call"),
    }
}
