//! Loading many keys at once: every missing key's call at once, one call of the loader with
//! exactly the keys that missed and that no other caller is loading, and a write per loaded
//! key, each fenced as a single load's.
//!
//! Each missing key goes through the engine's own miss path (single-flight, leases, fencing,
//! phases, fail-safe, the fallback), whose body is a *meeting*: the body of a key this batch
//! leads waits there for the batch's result instead of loading. The calls run together (on
//! Redis their reads, leases and writes are pipelined on one connection); the loader runs
//! once every call is answered, leads its key, or waits for another caller's load of its key
//! (`store::wait_for_another` says so): a batch never waits for anyone while it holds its own
//! keys, so two batches over the same keys never wait for each other in a circle.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::bounds::{CachedValue, KeyParam};
use crate::store::drive::{self, Set};
use crate::store::watching;

use super::keyed::Outcome;
use super::ops::Boxed;
use super::{Cache, wrap};

impl<K: KeyParam, V: CachedValue> Cache<K, V> {
    /// The values of `keys` (duplicates count once): hits, and for the keys that missed one
    /// call of `load` with exactly those that no other caller is loading (a key another
    /// caller, single or batch, is loading is waited for, never loaded twice); its results
    /// are stored, each fenced like a single load. A key `load` leaves out is absent from the
    /// answer; it is cached as a null where the cache has nulls (`Cache<K, Option<T>>` with
    /// `null_ttl`, and nulls are absent from the answer too), else not cached. A value `load`
    /// gives for a key it was not asked for is ignored.
    ///
    /// A key is absent from the answer when `load` left it out (with `stale_if_error`, a
    /// kept value answers for it instead, as for a failed load), and when its call could lead
    /// only after this batch's load ran (another caller's load of it failed, or outran
    /// `lock_timeout`): it is not loaded twice by one batch. `load` must not call this cache
    /// for the keys it loads (such a call waits for this batch, up to `lock_timeout`).
    ///
    /// On Redis, the keys are read at once (one `MGET` on a server; on a cluster, or with
    /// tags, one read per key, pipelined), and the leases and writes of the missing keys run
    /// together, pipelined on one connection. A key whose other loader failed while this batch waited
    /// for it is absent (not loaded: the loader has run). FusionCache#16, Caffeine's
    /// `getAll`, aiocache's `multi_cached`.
    ///
    /// ```
    /// use cache_runtime::{Backend, Cache};
    ///
    /// let users: Cache<u64, String> = Cache::builder("users-batch-doc")
    ///     .backend(Backend::Memory)
    ///     .build()
    ///     .expect("valid settings");
    /// users.get_or_load(1, || "ada".to_owned());
    /// let found = users.get_many_or_load([1, 2, 3], |missing| {
    ///     assert_eq!(missing.len(), 2); // 2 and 3: 1 was a hit
    ///     missing.iter().filter(|&&id| id != 3).map(|&id| (id, format!("user {id}"))).collect()
    /// });
    /// assert_eq!(found.len(), 2); // 3 does not exist
    /// assert_eq!(found[&2], "user 2");
    /// ```
    pub fn get_many_or_load<I, L>(&self, keys: I, load: L) -> HashMap<K, V>
    where
        I: IntoIterator<Item = K>,
        L: FnOnce(&[K]) -> HashMap<K, V>,
    {
        let load = |keys: Vec<K>| std::future::ready(Ok::<_, Infallible>(load(&keys)));
        match drive::block_on(self.many(keys, load)) {
            Ok(found) => found,
            Err(never) => match never {},
        }
    }

    /// [`Cache::get_many_or_load`] with a fallible load: on `Err` nothing is stored and the
    /// error is returned (the keys it was asked for stay missing).
    pub fn try_get_many_or_load<I, L, E>(&self, keys: I, load: L) -> Result<HashMap<K, V>, E>
    where
        I: IntoIterator<Item = K>,
        L: FnOnce(&[K]) -> Result<HashMap<K, V>, E>,
    {
        let load = |keys: Vec<K>| std::future::ready(load(&keys));
        drive::block_on(self.many(keys, load))
    }

    /// The async twin of [`Cache::get_many_or_load`]; `load` gets the keys to load as a `Vec`
    /// (its future owns them).
    pub async fn get_many_or_load_async<I, L, Fut>(&self, keys: I, load: L) -> HashMap<K, V>
    where
        I: IntoIterator<Item = K>,
        L: FnOnce(Vec<K>) -> Fut,
        Fut: Future<Output = HashMap<K, V>>,
    {
        let load = |keys: Vec<K>| {
            let fut = load(keys);
            async move { Ok::<_, Infallible>(fut.await) }
        };
        match self.many(keys, load).await {
            Ok(found) => found,
            Err(never) => match never {},
        }
    }

    /// The async twin of [`Cache::try_get_many_or_load`].
    pub async fn try_get_many_or_load_async<I, L, Fut, E>(
        &self,
        keys: I,
        load: L,
    ) -> Result<HashMap<K, V>, E>
    where
        I: IntoIterator<Item = K>,
        L: FnOnce(Vec<K>) -> Fut,
        Fut: Future<Output = Result<HashMap<K, V>, E>>,
    {
        self.many(keys, load).await
    }

    /// The batch, for every form: hits in process; then every missing key's call at once,
    /// through the engine's miss path, until each is answered, leads its key (its body came
    /// to the meeting) or waits for another caller's load; then the load, once, and the
    /// writes.
    async fn many<I, L, Fut, E>(&self, keys: I, load: L) -> Result<HashMap<K, V>, E>
    where
        I: IntoIterator<Item = K>,
        L: FnOnce(Vec<K>) -> Fut,
        Fut: Future<Output = Result<HashMap<K, V>, E>>,
    {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        let mut seen = HashSet::new();
        for key in keys {
            if !seen.insert(key.clone()) {
                continue;
            }
            match self.hit(&key) {
                Some(hit) => answer(&mut found, key, hit),
                None => {
                    crate::engine::forget_fired();
                    missing.push(key);
                }
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let meeting = Meeting::new(missing.len(), self.is_null, self.null);
        let tags = missing.iter().map(|key| self.tags_of(key)).collect();
        let bodies = (0..missing.len()).map(|i| meeting.body(i)).collect();
        let flights = self.ops.load_many_async(&missing, tags, bodies).await;
        let mut flights = Flights::new(flights);
        flights.until_loadable(&meeting).await;
        let led = meeting.led();
        let failed = match led.is_empty() {
            true => None,
            false => {
                let keys = led.iter().map(|&i| missing[i].clone()).collect();
                match load(keys).await {
                    Ok(loaded) => {
                        meeting.resolve(&missing, loaded);
                        None
                    }
                    Err(e) => {
                        meeting.fail();
                        Some(e)
                    }
                }
            }
        };
        meeting.close();
        let outcomes = flights.finish().await;
        if let Some(e) = failed {
            return Err(e);
        }
        for (key, outcome) in missing.into_iter().zip(outcomes) {
            answer(&mut found, key, outcome);
        }
        Ok(found)
    }
}

/// The calls of a batch's missing keys, driven together (a wake-up polls only its call).
struct Flights<'a, V> {
    calls: Set<Boxed<'a, Outcome<V>>>,
    outcomes: Vec<Option<Outcome<V>>>,
    /// Whether each call, at its last poll, was left waiting for another caller's load.
    waiting: Vec<bool>,
}

impl<'a, V: Send + 'static> Flights<'a, V> {
    fn new(calls: Vec<Boxed<'a, Outcome<V>>>) -> Self {
        let n = calls.len();
        Flights {
            calls: Set::new(calls),
            outcomes: (0..n).map(|_| None).collect(),
            waiting: vec![false; n],
        }
    }

    /// Polls the calls woken since their last poll; whether all are answered.
    fn poll_woken(&mut self, cx: &mut Context<'_>) -> bool {
        for i in self.calls.woken(cx) {
            let (answer, waiting) = watching(|| self.calls.poll_at(i));
            match answer {
                Some(outcome) => self.outcomes[i] = Some(outcome),
                None => self.waiting[i] = waiting,
            }
        }
        self.calls.left() == 0
    }

    /// Drives the calls until every one is answered, leads its key, or waits for another's
    /// load: then the batch may load (it waits for nobody while it holds its keys).
    async fn until_loadable(&mut self, meeting: &Meeting<V>) {
        poll_fn(|cx| {
            if self.poll_woken(cx) {
                return Poll::Ready(());
            }
            let settled = (0..self.outcomes.len())
                .all(|i| self.outcomes[i].is_some() || self.waiting[i] || meeting.arrived(i));
            match settled {
                true => Poll::Ready(()),
                false => Poll::Pending,
            }
        })
        .await;
    }

    /// Drives every call to its answer; the answers in order (an error for a call that has
    /// none).
    async fn finish(mut self) -> Vec<Outcome<V>> {
        poll_fn(|cx| match self.poll_woken(cx) {
            true => Poll::Ready(()),
            false => Poll::Pending,
        })
        .await;
        self.outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Outcome::Failed))
            .collect()
    }
}

/// Puts a value in the answer; a null or an error is absent.
fn answer<K: Hash + Eq, V>(found: &mut HashMap<K, V>, key: K, outcome: Outcome<V>) {
    if let Outcome::Value(v) = outcome {
        found.insert(key, v);
    }
}

/// Where the bodies of the keys a batch leads wait for its result.
struct Meeting<V> {
    inner: Arc<Mutex<Seats<V>>>,
    is_null: fn(&V) -> bool,
    null: fn() -> Option<V>,
}

struct Seats<V> {
    /// Whether the body of each key came (its key is led by this batch).
    arrived: Vec<bool>,
    /// The batch's result by key, once the loader ran (`None` in a seat: left out, or the
    /// loader failed).
    result: Option<Vec<Option<Outcome<V>>>>,
    wakers: Vec<Waker>,
}

impl<V: Send + 'static> Meeting<V> {
    fn new(keys: usize, is_null: fn(&V) -> bool, null: fn() -> Option<V>) -> Self {
        let seats = Seats {
            arrived: vec![false; keys],
            result: None,
            wakers: Vec::new(),
        };
        Meeting {
            inner: Arc::new(Mutex::new(seats)),
            is_null,
            null,
        }
    }

    fn seats(&self) -> std::sync::MutexGuard<'_, Seats<V>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn arrived(&self, i: usize) -> bool {
        self.seats().arrived[i]
    }

    /// The body of the key at `i`: comes to the meeting, then answers with the batch's
    /// result for its key (an error when it has none: not cached).
    fn body(&self, i: usize) -> Boxed<'static, Outcome<V>> {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            poll_fn(|cx: &mut Context<'_>| {
                let mut seats = inner.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(result) = &mut seats.result {
                    let outcome = result[i].take();
                    return Poll::Ready(outcome.unwrap_or(Outcome::Failed));
                }
                seats.arrived[i] = true;
                seats.wakers.push(cx.waker().clone());
                Poll::Pending
            })
            .await
        })
    }

    /// The loader's result: each led key's value (a key left out is a null where the cache
    /// has nulls).
    fn resolve<K: Hash + Eq>(&self, keys: &[K], mut loaded: HashMap<K, V>)
    where
        V: CachedValue,
    {
        let mut seats = self.seats();
        let result = keys
            .iter()
            .zip(&seats.arrived)
            .map(|(key, &led)| match (led, loaded.remove(key)) {
                (false, _) => None,
                (true, Some(value)) => Some(wrap(self.is_null, value)),
                (true, None) => (self.null)().map(Outcome::Null),
            })
            .collect();
        seats.result = Some(result);
        seats.wakers.drain(..).for_each(Waker::wake);
    }

    /// The keys whose body came: the keys this batch leads, by index.
    fn led(&self) -> Vec<usize> {
        let seats = self.seats();
        (0..seats.arrived.len())
            .filter(|&i| seats.arrived[i])
            .collect()
    }

    /// After the load (or without one): a body that comes now answers with an error (its key
    /// waited for another caller's load that failed; it is not loaded, and not cached).
    fn close(&self) {
        let mut seats = self.seats();
        if seats.result.is_none() {
            let keys = seats.arrived.len();
            seats.result = Some((0..keys).map(|_| None).collect());
            seats.wakers.drain(..).for_each(Waker::wake);
        }
    }

    /// The loader failed: every led key answers with an error (nothing is stored).
    fn fail(&self) {
        let mut seats = self.seats();
        let keys = seats.arrived.len();
        seats.result = Some((0..keys).map(|_| None).collect());
        seats.wakers.drain(..).for_each(Waker::wake);
    }
}
