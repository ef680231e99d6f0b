//! [`RedisStore`]: entries in Redis — read, lease, publish, invalidate, clear — and the
//! per-cache state they need (the key head, the value fingerprint, the codec).
//!
//! Every operation is a `'static` future over owned keys (nothing borrows the caller), run
//! through [`Redis::run`] (the circuit breaker, the Redis runtime as the tokio context, the
//! outage log): an async caller polls it on its own task; a sync caller hands it to the Redis
//! runtime and blocks ([`Store::block`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::conn::{Redis, StoreError};
use super::layout::{self, ClearScan, KeyShape, KeyWriter};
use super::lease::{Begin, Lease, Write};
use super::log::{self, Change};
use super::ops;
use super::pending::{self, Pending};
use super::{Keys, RedisFunction};
use crate::clock;
use crate::codec;
use crate::config;
use crate::entry::{Slot, Times};
use crate::policy::{Codec, ms};
use crate::store::{Health, Leased, Op, Published, Read, Setup, Start, Store, Tags, Tier, done};
use std::future::Future;

/// Entries in Redis (`backend = "redis"`; with `backend = "tiered"` the engine's L1 goes in
/// front: [`Tiered<RedisStore>`](crate::store::Tiered)). One per cache.
pub struct RedisStore {
    name: String,
    /// `{prefix}{name}:`, the start of every key (made at the first call, once the settings
    /// are in force).
    head: OnceLock<String>,
    /// Of the Rust type of the values: entries of another type are misses.
    fingerprint: u64,
    /// The shape of this cache's keys (`layout.rs`): what `clear()` deletes.
    shape: KeyShape,
    /// Whether another cache of this process claimed keys this one could have: then this
    /// one never uses Redis (said once, at its first use) and runs on its fallback.
    isolated: bool,
    /// An L1 is in front: changes go to the invalidation log, own writes are tracked.
    l1: bool,
    codec: Codec,
    /// `compress` and `compress_min`: how values are written.
    packing: codec::Packing,
    /// Bytes of the entries this store wrote (`Stats::bytes_written`).
    written: AtomicU64,
    /// How long after its freshness an entry is kept (`stale`, `stale_if_error`).
    grace: Duration,
    lock_timeout: Duration,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("name", &self.name)
            .field("l1", &self.l1)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// The Redis connection of an operation, or why it is not tried.
    fn target(&self) -> Result<&'static Redis, StoreError> {
        if self.isolated {
            return Err(StoreError::Unavailable);
        }
        Redis::get()
    }

    /// The log entry of a change to `key` (`*`: the whole cache), for a cache with an L1.
    fn logged(&self, key: &str) -> Option<Change> {
        self.l1.then(|| Change {
            cache: self.name.clone(),
            key: key.to_owned(),
        })
    }

    /// The name a tiered cache's own writes are reported under (`tracking::Echo`).
    fn tracked(&self) -> Option<String> {
        self.l1.then(|| self.name.clone())
    }

    /// What `clear()` of this cache scans for, under the current key prefix.
    fn clear_scan(&self) -> ClearScan {
        ClearScan::new(&config::current().key_prefix, self.shape.clone())
    }

    /// Decodes an entry, its times on this process's cache clock; why not if it cannot be
    /// used.
    fn decode<F: RedisFunction>(&self, bytes: &[u8]) -> Result<(Slot<F::Value>, Times), String> {
        let (max, print) = (config::current().max_value_bytes, self.fingerprint);
        let decoded = match self.codec {
            Codec::MessagePack => codec::decode(bytes, print, max, F::decode),
            Codec::Json if bytes.len() > max => Err(codec::DecodeError::TooLarge(bytes.len())),
            Codec::Json => codec::json::decode(bytes, (print, max), F::decode_json),
        };
        match decoded {
            Ok((slot, stamp)) => {
                let fresh_until_ms = clock::from_unix_ms(stamp.fresh_until);
                let times = Times {
                    fresh_until_ms,
                    stale_until_ms: fresh_until_ms.saturating_add(ms(self.grace)),
                    load_us: stamp.load_ms.saturating_mul(1_000),
                    retry_at_ms: clock::from_unix_ms(stamp.retry_at),
                    written_ms: clock::from_unix_ms(stamp.written),
                    // The same bytes, the same version, in every process.
                    version: codec::version_of(bytes),
                };
                Ok((slot, times))
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// What a published slot writes: the envelope with its times and its `PX` (the end of
    /// its stale windows), or why it cannot be written (a value that does not encode, or is
    /// over the size cap).
    fn payload<F: RedisFunction>(
        &self,
        lease: &Lease,
        (slot, times): (Slot<&F::Value>, Times),
    ) -> Result<(Vec<u8>, Write), StoreError> {
        let stamp = codec::Stamp {
            fresh_until: clock::to_unix_ms(times.fresh_until_ms),
            retry_at: clock::to_unix_ms(times.retry_at_ms),
            written: clock::to_unix_ms(times.written_ms),
            // Milliseconds, rounded to the nearest (the envelope's unit).
            load_ms: times.load_us.saturating_add(500) / 1_000,
        };
        let max = config::current().max_value_bytes;
        let packing = codec::Packing {
            cap: max,
            ..self.packing
        };
        let (print, tags) = (self.fingerprint, (&lease.versions[..], packing));
        let encoded = match self.codec {
            Codec::MessagePack => codec::encode::<_, String>(slot, stamp, tags, print, |v, out| {
                F::encode(v, out).map_err(|e| e.to_string())
            }),
            Codec::Json => codec::json::encode(slot, stamp, tags, print, F::encode_json),
        };
        let bytes = match encoded {
            Ok(p) if p.len() <= max => p,
            Ok(p) => {
                let why = format!("a value of {} bytes is over the size cap", p.len());
                return Err(StoreError::Data(why));
            }
            Err(e) => return Err(StoreError::Data(format!("a value does not serialize: {e}"))),
        };
        let now = clock::now_ms();
        let ttl = match times.stale_until_ms {
            u64::MAX => None,
            end => Some(Duration::from_millis(end.saturating_sub(now).max(1))),
        };
        // A kept value (re-armed after a failed load) only over the entry it keeps.
        let over = (times.retry_at_ms != 0).then_some(stamp.fresh_until);
        let write = Write {
            ttl,
            keep_lease: false,
            over,
        };
        Ok((bytes, write))
    }

    /// Runs an invalidation or clear; one that failed is kept to replay.
    fn invalidation(
        &'static self,
        op: impl Future<Output = Result<(), StoreError>> + Send + 'static,
        redis: &'static Redis,
        pending: Pending,
    ) -> Op<()> {
        Box::pin(async move {
            let done = redis.run(op).await;
            if done.is_err() {
                pending::keep(pending);
            }
            done
        })
    }
}

impl<F: RedisFunction> Store<F> for RedisStore {
    const NAME: &'static str = "redis";
    const FEED: &'static str = super::gate::FEED;
    const TIER: Tier = Tier::Shared;
    type Key = Keys;
    type Lease = HeldLease;

    fn open(setup: Setup<'_>) -> Self {
        let shape = KeyShape::new(setup.name, F::LAYOUT);
        let isolated = match layout::claim(&shape) {
            Ok(()) => false,
            Err(why) => {
                tracing::error!(cache = %setup.name, "cache-runtime: {why}");
                true
            }
        };
        RedisStore {
            name: setup.name.to_owned(),
            head: OnceLock::new(),
            fingerprint: codec::fingerprint(std::any::type_name::<F::Value>()),
            shape,
            isolated,
            l1: setup.l1,
            codec: setup.policy.codec,
            packing: codec::Packing {
                with: setup.policy.compress,
                min: setup.policy.compress_min,
                // Set from the settings at each write.
                cap: 0,
            },
            written: AtomicU64::new(0),
            grace: setup.policy.grace(),
            lock_timeout: setup.policy.lock_timeout,
        }
    }

    fn key(&self, lookup: &F::Lookup<'_>, tags: &Tags) -> Result<Keys, StoreError> {
        let head = self
            .head
            .get_or_init(|| format!("{}{}:", config::current().key_prefix, self.name));
        let mut buffer = String::with_capacity(head.len() + 24);
        buffer.push_str(head);
        let mut writer = KeyWriter::after(buffer, F::SEPARATORS);
        match F::render_key(lookup, &mut writer) {
            Ok(()) => Ok(Keys::new(
                writer.into_key(),
                tags.names().map(super::tag_key).collect(),
            )),
            Err(e) => Err(StoreError::Data(format!(
                "a key part does not serialize: {e}"
            ))),
        }
    }

    fn read(&'static self, keys: &Keys) -> Op<Read<F::Value>> {
        let redis = match self.target() {
            Ok(redis) => redis,
            Err(e) => return done(Err(e)),
        };
        let keys = keys.clone();
        Box::pin(redis.run(async move {
            Ok(match ops::read(redis, keys).await? {
                Some(bytes) => match self.decode::<F>(&bytes) {
                    Ok((slot, times)) => Read::Hit(slot, times),
                    Err(why) => Read::Unusable(why),
                },
                None => Read::Miss,
            })
        }))
    }

    /// One `MGET` for untagged keys on one server; else one read per key, concurrently (on a
    /// cluster the keys live on many nodes; a tagged read compares its tag keys too).
    fn read_many(&'static self, keys: &[Keys]) -> Op<Vec<Result<Read<F::Value>, StoreError>>> {
        let redis = match self.target() {
            Ok(redis) => redis,
            Err(e) => return done(Err(e)),
        };
        if keys.is_empty() || redis.is_cluster() || keys.iter().any(|k| !k.tags().is_empty()) {
            let reads: Vec<_> = keys.iter().map(|k| Store::<F>::read(self, k)).collect();
            return Box::pin(async move { Ok(crate::store::drive::join_all(reads).await) });
        }
        let keys: Vec<String> = keys.iter().map(|k| k.value().to_owned()).collect();
        Box::pin(redis.run(async move {
            let found = ops::read_many(redis, keys).await?;
            Ok(found
                .into_iter()
                .map(|bytes| {
                    Ok(match bytes {
                        Some(bytes) => match self.decode::<F>(&bytes) {
                            Ok((slot, times)) => Read::Hit(slot, times),
                            Err(why) => Read::Unusable(why),
                        },
                        None => Read::Miss,
                    })
                })
                .collect())
        }))
    }

    fn lease(&'static self, keys: &Keys, start: Start) -> Op<Leased<HeldLease, F::Value>> {
        let redis = match self.target() {
            Ok(redis) => redis,
            Err(e) => return done(Err(e)),
        };
        let keys = keys.clone();
        let wait = self.lock_timeout;
        Box::pin(redis.run(async move {
            Ok(match ops::begin(redis, keys.clone(), wait, start).await? {
                Begin::Found(bytes) => match self.decode::<F>(&bytes) {
                    Ok((slot, times)) => Leased::Found(slot, times),
                    Err(why) => return Err(StoreError::Data(format!("unusable entry: {why}"))),
                },
                Begin::Busy => Leased::Busy,
                Begin::Lease(lease) => Leased::Lease(HeldLease::new(redis, keys, lease, wait)),
            })
        }))
    }

    fn publish(
        &'static self,
        keys: &Keys,
        mut lease: HeldLease,
        stored: Option<(Slot<&F::Value>, Times)>,
    ) -> Op<Published> {
        let write = match (&lease.lease, stored) {
            (None, _) => return done(Ok(Published::VALID)),
            (Some(held), Some(stored)) => match self.payload::<F>(held, stored) {
                Ok(write) => Some(write),
                // Not written, and counted as this value's failure: the lease is released as
                // it is dropped (in the background).
                Err(refused) => return done(Err(refused)),
            },
            (Some(_), None) => None,
        };
        lease.done.store(true, Relaxed);
        let Some(held) = lease.lease.take() else {
            return done(Ok(Published::VALID));
        };
        let (redis, keys) = (lease.redis, keys.clone());
        let tracked = self.tracked();
        // The version every reader computes from these bytes, for this process's copies too.
        let version = write.as_ref().map(|(bytes, _)| codec::version_of(bytes));
        let len = write.as_ref().map_or(0, |(bytes, _)| bytes.len() as u64);
        Box::pin(redis.run(async move {
            let valid = ops::publish(redis, keys, held, write, tracked).await?;
            if valid {
                self.written.fetch_add(len, Relaxed);
            }
            Ok(Published { valid, version })
        }))
    }

    fn keep(
        &'static self,
        _: &Keys,
        lease: &HeldLease,
        stored: (Slot<&F::Value>, Times),
    ) -> Op<bool> {
        let Some(held) = lease.lease.clone() else {
            return done(Ok(true));
        };
        let (bytes, write) = match self.payload::<F>(&held, stored) {
            Ok(payload) => payload,
            Err(e) => return done(Err(e)),
        };
        let write = Write {
            keep_lease: true,
            ..write
        };
        let (redis, keys, tracked) = (lease.redis, lease.keys.clone(), self.tracked());
        let len = bytes.len() as u64;
        Box::pin(redis.run(async move {
            let wrote = ops::publish(redis, keys, held, Some((bytes, write)), tracked).await?;
            if wrote {
                self.written.fetch_add(len, Relaxed);
            }
            Ok(wrote)
        }))
    }

    /// Deletes the value and its lock; kept to replay if Redis cannot be reached now.
    fn invalidate(&'static self, keys: &Keys) -> Op<()> {
        if self.isolated {
            return done(Ok(()));
        }
        let redis = match Redis::get() {
            Ok(redis) => redis,
            Err(e) => return done(Err(e)),
        };
        let log = self.logged(keys.value());
        let op = ops::invalidate(redis, keys.clone(), log.clone());
        self.invalidation(op, redis, Pending::Key(keys.clone(), log))
    }

    /// Deletes every key of this function (and their locks) with `SCAN` and `UNLINK`: the
    /// keys under its name that have its shape, not those of a function named `{name}:…`.
    fn clear(&'static self) -> Op<()> {
        if self.isolated {
            return done(Ok(()));
        }
        let redis = match Redis::get() {
            Ok(redis) => redis,
            Err(e) => return done(Err(e)),
        };
        let scan = self.clear_scan();
        let log = self.logged("*");
        let op = ops::clear(redis, scan.clone(), log.clone());
        self.invalidation(op, redis, Pending::Clear(scan, log))
    }

    /// After `f_refresh` of a tiered cache: the change goes to the log (kept to replay if
    /// Redis cannot be reached).
    fn announce(&'static self, keys: &Keys) -> Op<()> {
        let Some(change) = self.logged(keys.value()) else {
            return done(Ok(()));
        };
        if self.isolated {
            return done(Ok(()));
        }
        let redis = match Redis::get() {
            Ok(redis) => redis,
            Err(e) => return done(Err(e)),
        };
        let op = ops::changed(redis, change.clone());
        self.invalidation(op, redis, Pending::Logged(change))
    }

    fn feed_key(keys: &Keys) -> Option<&str> {
        Some(keys.value())
    }

    fn follow(&'static self) {
        // The L1 listens through the registry; Redis reports changes by the log and by
        // tracking the cache's keys.
        if let Ok(redis) = Redis::get() {
            log::start_reader(redis);
            super::tracking::track(redis, &self.name);
        }
    }

    #[inline]
    fn serves_local_at(coarse: u64) -> bool {
        super::gate::serves_local_at(coarse)
    }

    /// Never starts the connection (reading a handle's breaker state must not).
    fn health(&self) -> Option<Health> {
        Some(Health {
            open: Redis::is_skipped(),
            recoveries: Redis::recoveries(),
            outage: Redis::in_outage(),
        })
    }

    fn fallback_ttl(&self) -> Duration {
        config::current().fallback_ttl
    }

    fn bytes_written(&self) -> u64 {
        self.written.load(Relaxed)
    }

    fn memory_usage(&'static self, sample: usize) -> Option<Op<crate::store::SharedMemory>> {
        let redis = match self.target() {
            Ok(redis) => redis,
            Err(e) => return Some(done(Err(e))),
        };
        let scan = self.clear_scan();
        Some(Box::pin(redis.run(async move {
            super::usage::estimate(redis, &scan, sample).await
        })))
    }

    /// Polls `op` once on the calling thread (it enters the Redis runtime's context itself):
    /// an operation that is done at once (not tried: the breaker is open, the cache is
    /// isolated) answers without a hop; one that waits for Redis goes on as a task of the
    /// Redis runtime, which the caller waits for.
    fn block<T: Send + 'static>(&'static self, op: Op<T>) -> Result<T, StoreError> {
        let mut op = op;
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        if let std::task::Poll::Ready(out) = op.as_mut().poll(&mut cx) {
            return out;
        }
        match Redis::get() {
            Ok(redis) => redis.wait(op),
            Err(_) => crate::store::drive::block_on(op),
        }
    }
}

/// A lease held while the body runs.
///
/// - Renewed while the body runs: a task on the Redis runtime extends the lock by its
///   lifetime (`lock_timeout`) every third of it, so a load slower than `lock_timeout` still
///   publishes, while a dead process's lock expires within `lock_timeout`. The task stops when
///   the lease is taken or dropped, or when the lock no longer holds the token.
/// - Dropped before the publish takes it (the body panicked, or the async call was dropped),
///   it releases the lock at once with a compare-and-delete, so the next caller in any process
///   loads without waiting for the lock to expire.
pub struct HeldLease {
    redis: &'static Redis,
    keys: Keys,
    lease: Option<Lease>,
    /// Set when the load ends: the renewal task stops at its next wake.
    done: Arc<AtomicBool>,
}

impl HeldLease {
    fn new(redis: &'static Redis, keys: Keys, lease: Lease, lifetime: Duration) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        redis.spawn(ops::renew(
            redis,
            keys.clone(),
            lease.clone(),
            lifetime,
            Arc::clone(&done),
        ));
        HeldLease {
            redis,
            keys,
            lease: Some(lease),
            done,
        }
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        self.done.store(true, Relaxed);
        if let Some(lease) = self.lease.take() {
            self.redis
                .spawn(ops::release(self.redis, self.keys.clone(), lease));
        }
    }
}
