//! The call path on Redis, as sync and async twins: read, local single-flight, lease, load,
//! fenced publish. Sync calls block on the Redis runtime for each operation; async calls await
//! it. The body always runs on the caller's thread or task.

use std::future::Future;

use quick_cache::sync::GuardResult;

use super::conn::Redis;
use super::lease::Lease;
use super::{Keys, Read, RedisCache, RedisFunction, RedisKey, Start, ops};
use crate::cache::Erased;
use crate::entry::Slot;
use crate::flight::{PanicCounter, within};
use crate::function::Types;
use crate::policy::Lock;
use crate::reentry::Mark;
use crate::shape::Shape;
use crate::stats::{Counter, Stats};

impl<F: RedisFunction> RedisCache<F> {
    fn run(&self, mark: Mark, body: impl FnOnce() -> F::Output) -> F::Output {
        self.stats.add(Counter::Load);
        let counter = PanicCounter::new(&self.stats);
        counter.returned(mark.run(body))
    }

    async fn run_async(&self, mark: Mark, body: impl Future<Output = F::Output>) -> F::Output {
        self.stats.add(Counter::Load);
        let counter = PanicCounter::new(&self.stats);
        counter.returned(mark.run_async(body).await)
    }

    /// A call while Redis is unavailable: the in-process fallback, with local single-flight.
    fn fallback_call(&self, key: RedisKey<F>, body: impl FnOnce() -> F::Output) -> F::Output {
        let fallback = self.fallback();
        match fallback.get_key(&key.local) {
            Some(hit) => hit,
            None => fallback.load(key.local, body),
        }
    }

    async fn fallback_call_async(
        &self,
        key: RedisKey<F>,
        body: impl Future<Output = F::Output>,
    ) -> F::Output {
        let fallback = self.fallback();
        match fallback.get_key(&key.local) {
            Some(hit) => hit,
            None => fallback.load_async(key.local, body).await,
        }
    }

    /// A call of a sync cached function.
    pub fn call(&'static self, key: RedisKey<F>, body: impl FnOnce() -> F::Output) -> F::Output {
        let Some((redis, keys)) = self.target(&key) else {
            return self.fallback_call(key, body);
        };
        let unusable = match self.answer(redis.block(ops::read(redis, keys.clone()))) {
            Read::Hit(hit) => return hit,
            Read::Miss => false,
            Read::Unusable => true,
            Read::Failed => return self.fallback_call(key, body),
        };
        self.stats.add(Counter::Miss);
        let mark = Mark::new(self, &key.local);
        if mark.is_running() {
            // This thread is loading this key: its lease and flight are our own.
            return self.run(mark, body);
        }
        if self.policy.lock == Lock::None {
            return self.lead(redis, &keys, mark, Start::Take, body).0;
        }
        let timeout = Some(self.policy.lock_timeout);
        // Waiters take the leader's result from its placeholder, even after it is gone from
        // the map (a waiter never re-reads the map, so it never leads a second load).
        match self.flights.get_value_or_guard(&key.local, timeout) {
            GuardResult::Guard(guard) => {
                let start = self.leader_start(unusable);
                let (result, share) = self.lead(redis, &keys, mark, start, body);
                self.hand_over(&key, guard, share);
                result
            }
            GuardResult::Value(slot) => {
                self.waited(slot, || self.lead(redis, &keys, mark, Start::Take, body).0)
            }
            GuardResult::Timeout => {
                self.stats.add(Counter::Wait);
                self.lead(redis, &keys, mark, Start::ReadOrTake, body).0
            }
        }
    }

    /// The result a waiter of this process's flight took, or (a null for a shape without
    /// nulls) a load of its own.
    fn waited(&self, slot: Slot<F::Value>, load: impl FnOnce() -> F::Output) -> F::Output {
        self.stats.add(Counter::Wait);
        F::Shape::from_slot(slot).unwrap_or_else(load)
    }

    /// Gives the leader's result to this process's waiters (without one, the guard's drop
    /// hands the flight to one waiter); the map keeps no value once they have it.
    fn hand_over(
        &self,
        key: &RedisKey<F>,
        guard: FlightGuard<'_, F>,
        share: Option<Slot<F::Value>>,
    ) {
        if let Some(slot) = share {
            let _ = guard.insert(slot);
            self.flights.remove(&key.local);
        }
    }

    /// The load of one process's leader: lease (or another process's value), body, publish.
    /// The lease is released at once if the body fails, panics or (async) is dropped.
    fn lead(
        &'static self,
        redis: &'static Redis,
        keys: &Keys,
        mark: Mark,
        start: Start,
        body: impl FnOnce() -> F::Output,
    ) -> (F::Output, Option<Slot<F::Value>>) {
        let lease = match self.started(redis.block(self.begin(redis, keys, start))) {
            Ok(lease) => HeldLease::new(redis, keys, lease),
            Err((result, slot)) => return (result, Some(slot)),
        };
        let result = self.run(mark, body);
        let settled = self.settle(&result);
        let share = match lease.take() {
            Some(lease) => {
                let answer = redis.block(ops::publish(redis, keys.clone(), lease, settled.write));
                self.published(answer, settled.share)
            }
            None => settled.share,
        };
        (result, share)
    }

    /// Runs the body now and writes its result through (sync).
    pub fn refresh(&'static self, key: RedisKey<F>, body: impl FnOnce() -> F::Output) -> F::Output {
        let mark = Mark::new(self, &key.local);
        match self.target(&key) {
            Some((redis, keys)) => self.lead(redis, &keys, mark, Start::Take, body).0,
            None => self.run(mark, body),
        }
    }

    /// A call of an async cached function; the twin of [`RedisCache::call`].
    pub async fn call_async(
        &'static self,
        key: RedisKey<F>,
        body: impl Future<Output = F::Output>,
    ) -> F::Output {
        let Some((redis, keys)) = self.target(&key) else {
            return self.fallback_call_async(key, body).await;
        };
        let unusable = match self.answer(redis.run(ops::read(redis, keys.clone())).await) {
            Read::Hit(hit) => return hit,
            Read::Miss => false,
            Read::Unusable => true,
            Read::Failed => return self.fallback_call_async(key, body).await,
        };
        self.stats.add(Counter::Miss);
        let mark = Mark::new(self, &key.local);
        if mark.is_running() {
            // This task is loading this key: its lease and flight are our own.
            return self.run_async(mark, body).await;
        }
        if self.policy.lock == Lock::None {
            return self
                .lead_async(redis, &keys, mark, Start::Take, body)
                .await
                .0;
        }
        let found = self.flights.get_value_or_guard_async(&key.local);
        match within(self.policy.lock_timeout, found).await {
            Some(Err(guard)) => {
                let start = self.leader_start(unusable);
                let (result, share) = self.lead_async(redis, &keys, mark, start, body).await;
                self.hand_over(&key, guard, share);
                result
            }
            Some(Ok(slot)) => {
                self.stats.add(Counter::Wait);
                match F::Shape::from_slot(slot) {
                    Some(result) => result,
                    None => {
                        self.lead_async(redis, &keys, mark, Start::Take, body)
                            .await
                            .0
                    }
                }
            }
            None => {
                self.stats.add(Counter::Wait);
                self.lead_async(redis, &keys, mark, Start::ReadOrTake, body)
                    .await
                    .0
            }
        }
    }

    /// The async twin of `lead`.
    async fn lead_async(
        &'static self,
        redis: &'static Redis,
        keys: &Keys,
        mark: Mark,
        start: Start,
        body: impl Future<Output = F::Output>,
    ) -> (F::Output, Option<Slot<F::Value>>) {
        let lease = match self.started(redis.run(self.begin(redis, keys, start)).await) {
            Ok(lease) => HeldLease::new(redis, keys, lease),
            Err((result, slot)) => return (result, Some(slot)),
        };
        let result = self.run_async(mark, body).await;
        let settled = self.settle(&result);
        let share = match lease.take() {
            Some(lease) => {
                let answer = redis
                    .run(ops::publish(redis, keys.clone(), lease, settled.write))
                    .await;
                self.published(answer, settled.share)
            }
            None => settled.share,
        };
        (result, share)
    }

    /// Runs the body now and writes its result through (async).
    pub async fn refresh_async(
        &'static self,
        key: RedisKey<F>,
        body: impl Future<Output = F::Output>,
    ) -> F::Output {
        let mark = Mark::new(self, &key.local);
        match self.target(&key) {
            Some((redis, keys)) => {
                self.lead_async(redis, &keys, mark, Start::Take, body)
                    .await
                    .0
            }
            None => self.run_async(mark, body).await,
        }
    }
}

/// The placeholder guard of this process's flight of a key.
type FlightGuard<'a, F> = quick_cache::sync::PlaceholderGuard<
    'a,
    <F as Types>::Key,
    Slot<<F as Types>::Value>,
    quick_cache::UnitWeighter,
    quick_cache::DefaultHashBuilder,
    quick_cache::sync::DefaultLifecycle<<F as Types>::Key, Slot<<F as Types>::Value>>,
>;

/// A lease held while the body runs. Dropped without [`HeldLease::take`] (the body panicked,
/// or the async call was dropped), it releases the lock at once with a compare-and-delete on
/// the Redis runtime, so the next caller in any process loads without waiting for the lock
/// to expire.
struct HeldLease {
    redis: &'static Redis,
    keys: Keys,
    lease: Option<Lease>,
}

impl HeldLease {
    fn new(redis: &'static Redis, keys: &Keys, lease: Option<Lease>) -> Self {
        HeldLease {
            redis,
            keys: keys.clone(),
            lease,
        }
    }

    /// The lease, for the publish (which releases it).
    fn take(mut self) -> Option<Lease> {
        self.lease.take()
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            self.redis
                .spawn(ops::release(self.redis, self.keys.clone(), lease));
        }
    }
}

impl<F: RedisFunction> Erased for RedisCache<F> {
    fn name(&self) -> &str {
        &self.name
    }

    fn backend(&self) -> &'static str {
        "redis"
    }

    /// Redis's counts plus the in-process fallback's.
    fn stats(&self) -> Stats {
        self.stats.snapshot() + self.fallback.stats.snapshot()
    }

    /// Deletes every key of this function (and their locks) with `SCAN` and `UNLINK`.
    fn clear(&self) {
        let prefix = &crate::config::current().key_prefix;
        let patterns = super::layout::scan_patterns(prefix, &self.name);
        let result = Redis::get().and_then(|redis| {
            redis.block(async move { super::lease::delete_matching(redis, &patterns).await })
        });
        if let Err(e) = result {
            self.store_error(&e);
        }
        Erased::clear(&self.fallback);
    }

    /// Entries held in process: only those of the fallback, used while Redis is unavailable.
    fn len(&self) -> usize {
        self.fallback.len()
    }
}
