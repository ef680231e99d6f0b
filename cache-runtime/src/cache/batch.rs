//! Loading many keys at once: one read of every key, one call of the loader with exactly the
//! keys that missed and that no other caller is loading, and a write per loaded key, each
//! fenced as a single load's.
//!
//! Each missing key goes through the engine's own miss path (single-flight, leases, fencing,
//! phases, fail-safe, the fallback), whose body is a *meeting*: the body of a key that this
//! call leads waits there for the batch's result instead of loading. The keys are taken in
//! a fixed order (a hash of each key that every process computes alike), one after the
//! other: a key another caller is loading is waited for before the next key is taken, so two
//! batches that share keys never wait for each other in a circle (lock ordering). Once every
//! key is led or answered, the loader runs once with the led keys, and every led key
//! publishes its value.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::bounds::{CachedValue, KeyParam};
use crate::store::drive;

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
    /// On Redis, the keys are read concurrently (pipelined on one connection), and the keys
    /// that missed are leased one after another before `load` runs (the order that keeps
    /// batches from waiting for each other). FusionCache#16, Caffeine's `getAll`, aiocache's
    /// `multi_cached`.
    ///
    /// ```
    /// use std::collections::HashMap;
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

    /// The batch, for every form: hits, the shared store's read, the keys taken in order,
    /// the load, the writes.
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
            match self.ops.hit(&key) {
                Some(hit) => answer(&mut found, key, hit),
                None => missing.push(key),
            }
        }
        if self.ops.shared() && !missing.is_empty() {
            missing = self.read_shared(missing, &mut found).await;
        }
        if missing.is_empty() {
            return Ok(found);
        }
        missing.sort_by_cached_key(order);
        let meeting = Meeting::new(missing.len(), self.is_null, self.null);
        let mut led = Vec::new();
        for (i, key) in missing.iter().enumerate() {
            let mut flight = self.ops.load_async(key, self.tags_of(key), meeting.body(i));
            match until_led(&mut flight, &meeting, i).await {
                Some(outcome) => answer(&mut found, key.clone(), outcome),
                None => led.push((i, flight)),
            }
        }
        if led.is_empty() {
            return Ok(found);
        }
        let keys: Vec<K> = led.iter().map(|(i, _)| missing[*i].clone()).collect();
        let failed = match load(keys).await {
            Ok(loaded) => {
                meeting.resolve(&missing, loaded);
                None
            }
            Err(e) => {
                meeting.fail();
                Some(e)
            }
        };
        let (indices, flights): (Vec<usize>, Vec<_>) = led.into_iter().unzip();
        let outcomes = join_all(flights).await;
        if let Some(e) = failed {
            return Err(e);
        }
        for (i, outcome) in indices.into_iter().zip(outcomes) {
            answer(&mut found, missing[i].clone(), outcome);
        }
        Ok(found)
    }

    /// Reads every key of `missing` from the shared store at once; answers the fresh ones
    /// and returns the others.
    async fn read_shared(&self, missing: Vec<K>, found: &mut HashMap<K, V>) -> Vec<K> {
        let reads = missing
            .iter()
            .map(|key| self.ops.peek_async(key, self.tags_of(key)))
            .collect();
        let reads = join_all(reads).await;
        let mut still = Vec::new();
        for (key, read) in missing.into_iter().zip(reads) {
            match read {
                Some(outcome) => answer(found, key, outcome),
                None => still.push(key),
            }
        }
        still
    }
}

/// The order in which a batch takes its keys: the same in every batch and every process of
/// one build (`DefaultHasher::new` has fixed keys).
fn order<K: Hash>(key: &K) -> u64 {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

/// Puts a value in the answer; a null or an error is absent.
fn answer<K: Hash + Eq, V>(found: &mut HashMap<K, V>, key: K, outcome: Outcome<V>) {
    if let Outcome::Value(v) = outcome {
        found.insert(key, v);
    }
}

/// Drives `flight` until it is answered (`Some`) or its body joined the meeting (`None`: this
/// batch leads the key, and the flight waits for the batch's result).
async fn until_led<V: Send + 'static>(
    flight: &mut Boxed<'_, Outcome<V>>,
    meeting: &Meeting<V>,
    i: usize,
) -> Option<Outcome<V>> {
    poll_fn(|cx| match flight.as_mut().poll(cx) {
        Poll::Ready(outcome) => Poll::Ready(Some(outcome)),
        Poll::Pending if meeting.arrived(i) => Poll::Ready(None),
        Poll::Pending => Poll::Pending,
    })
    .await
}

/// Runs `futures` concurrently; their outputs in order.
async fn join_all<T>(futures: Vec<Pin<Box<dyn Future<Output = T> + Send + '_>>>) -> Vec<T> {
    let mut futures: Vec<_> = futures.into_iter().map(Some).collect();
    let mut outputs: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut pending = false;
        for (slot, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if let Some(fut) = slot {
                match fut.as_mut().poll(cx) {
                    Poll::Ready(out) => {
                        *output = Some(out);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        match pending {
            true => Poll::Pending,
            false => Poll::Ready(()),
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
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
                    return Poll::Ready(outcome.unwrap_or(Outcome::Failed(Box::new(LeftOut))));
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

    /// The loader failed: every led key answers with an error (nothing is stored).
    fn fail(&self) {
        let mut seats = self.seats();
        let keys = seats.arrived.len();
        seats.result = Some((0..keys).map(|_| None).collect());
        seats.wakers.drain(..).for_each(Waker::wake);
    }
}

/// A key the batch's loader gave no value for.
struct LeftOut;
