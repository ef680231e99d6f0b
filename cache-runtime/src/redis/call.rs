//! The call path on Redis, as sync and async twins: read, local single-flight, lease, load,
//! fenced publish. Sync calls block on the Redis runtime for each operation; async calls await
//! it. The body always runs on the caller's thread or task.

use std::future::Future;

use quick_cache::sync::{EntryAction, EntryResult};

use super::conn::Redis;
use super::{Keys, Read, RedisCache, RedisFunction, RedisKey, ops};
use crate::cache::Erased;
use crate::entry::Slot;
use crate::flight::within;
use crate::reentry::Mark;
use crate::shape::Shape;
use crate::stats::{Counter, Stats};

impl<F: RedisFunction> RedisCache<F> {
    fn run(&self, mark: Mark, body: impl FnOnce() -> F::Output) -> F::Output {
        self.stats.add(Counter::Load);
        mark.run(body)
    }

    async fn run_async(&self, mark: Mark, body: impl Future<Output = F::Output>) -> F::Output {
        self.stats.add(Counter::Load);
        mark.run_async(body).await
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
        let timeout = Some(self.policy.lock_timeout);
        match self
            .flights
            .entry(&key.local, timeout, |_, s| EntryAction::Retain(s.clone()))
        {
            EntryResult::Vacant(guard) | EntryResult::Replaced(guard, _) => {
                let (result, share) = self.lead(redis, &keys, mark, unusable, body);
                if let Some(slot) = share {
                    let _ = guard.insert(slot);
                    self.flights.remove(&key.local);
                }
                result
            }
            EntryResult::Retained(slot) => {
                self.stats.add(Counter::Wait);
                match F::Shape::from_slot(slot) {
                    Some(result) => result,
                    None => self.lead(redis, &keys, mark, true, body).0,
                }
            }
            EntryResult::Timeout => {
                self.stats.add(Counter::Wait);
                self.lead(redis, &keys, mark, true, body).0
            }
            EntryResult::Removed(..) => self.lead(redis, &keys, mark, true, body).0,
        }
    }

    /// The load of one process's leader: lease (or another process's value), body, publish.
    fn lead(
        &'static self,
        redis: &'static Redis,
        keys: &Keys,
        mark: Mark,
        forced: bool,
        body: impl FnOnce() -> F::Output,
    ) -> (F::Output, Option<Slot<F::Value>>) {
        let lease = match self.started(redis.block(self.begin(redis, keys, forced))) {
            Ok(lease) => lease,
            Err((result, slot)) => return (result, Some(slot)),
        };
        let result = self.run(mark, body);
        let settled = self.settle(&result);
        let share = match lease {
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
            Some((redis, keys)) => self.lead(redis, &keys, mark, true, body).0,
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
        let found = self
            .flights
            .entry_async(&key.local, |_, s| EntryAction::Retain(s.clone()));
        match within(self.policy.lock_timeout, found).await {
            Some(EntryResult::Vacant(guard) | EntryResult::Replaced(guard, _)) => {
                let (result, share) = self.lead_async(redis, &keys, mark, unusable, body).await;
                if let Some(slot) = share {
                    let _ = guard.insert(slot);
                    self.flights.remove(&key.local);
                }
                result
            }
            Some(EntryResult::Retained(slot)) => {
                self.stats.add(Counter::Wait);
                match F::Shape::from_slot(slot) {
                    Some(result) => result,
                    None => self.lead_async(redis, &keys, mark, true, body).await.0,
                }
            }
            None | Some(EntryResult::Timeout) => {
                self.stats.add(Counter::Wait);
                self.lead_async(redis, &keys, mark, true, body).await.0
            }
            Some(EntryResult::Removed(..)) => {
                self.lead_async(redis, &keys, mark, true, body).await.0
            }
        }
    }

    /// The async twin of `lead`.
    async fn lead_async(
        &'static self,
        redis: &'static Redis,
        keys: &Keys,
        mark: Mark,
        forced: bool,
        body: impl Future<Output = F::Output>,
    ) -> (F::Output, Option<Slot<F::Value>>) {
        let lease = match self.started(redis.run(self.begin(redis, keys, forced)).await) {
            Ok(lease) => lease,
            Err((result, slot)) => return (result, Some(slot)),
        };
        let result = self.run_async(mark, body).await;
        let settled = self.settle(&result);
        let share = match lease {
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
            Some((redis, keys)) => self.lead_async(redis, &keys, mark, true, body).await.0,
            None => self.run_async(mark, body).await,
        }
    }
}

impl<F: RedisFunction> Erased for RedisCache<F> {
    fn name(&self) -> &str {
        &self.name
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
