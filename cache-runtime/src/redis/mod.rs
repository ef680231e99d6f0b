//! The Redis backend: a cached function whose entries live in Redis (feature `redis`).
//!
//! A call reads its key with one `GET` (the hit path). On a miss, one caller per key and
//! process goes on (local single-flight, the same placeholders as the in-process store); it
//! takes the key's lease in Redis or, if another process holds it, waits for that process's
//! value (`lease.rs`); it runs the body and publishes the result with a fenced write. If Redis
//! fails, the call runs the body and answers without it: the cache never makes a call fail.

mod call;
mod codec;
mod conn;
pub(crate) mod layout;
mod lease;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use quick_cache::sync::Cache as QuickCache;

use crate::bounds::{CachedValue, RedisValue};
use crate::cache::Cache;
use crate::cell::Cell;
use crate::entry::Slot;
use crate::function::{Function, KeyFn, Shaped, Types};
use crate::policy::{Lock, Policy};
use crate::shape::{Picked, Shape};
use crate::stats::{Counter, Counters};
use crate::{CacheHandle, config};
use conn::{Redis, StoreError};
use layout::KeyWriter;
use lease::{Begin, Lease};

/// How the key of a cached function renders in Redis, implemented by `#[cached]` beside
/// [`KeyFn`].
pub trait RedisSignature: KeyFn {
    /// Characters escaped in placeholder values, besides `%`, `{` and `}`: the first
    /// character of each text between two placeholders.
    const SEPARATORS: &'static str;

    /// Writes the key's rendered form (after `{prefix}{name}:`).
    fn render_key(lookup: &Self::Lookup<'_>, out: &mut KeyWriter) -> serde_json::Result<()>;
}

/// What a cached function needs to live in Redis: how its key renders and how its values
/// encode.
pub trait RedisFunction: Function {
    /// See [`RedisSignature::SEPARATORS`].
    const SEPARATORS: &'static str;

    /// Writes the key's rendered form (after `{prefix}{name}:`).
    fn render_key(lookup: &Self::Lookup<'_>, out: &mut KeyWriter) -> serde_json::Result<()>;

    /// Writes a value as JSON.
    fn encode(value: &Self::Value, out: &mut Vec<u8>) -> serde_json::Result<()>;

    /// Reads a value from JSON.
    fn decode(json: &[u8]) -> serde_json::Result<Self::Value>;
}

impl<S, M> RedisFunction for Shaped<S, M>
where
    S: RedisSignature,
    M: Shape<S::Output> + 'static,
    M::Value: CachedValue + RedisValue,
{
    const SEPARATORS: &'static str = S::SEPARATORS;

    fn render_key(lookup: &Self::Lookup<'_>, out: &mut KeyWriter) -> serde_json::Result<()> {
        S::render_key(lookup, out)
    }

    fn encode(value: &Self::Value, out: &mut Vec<u8>) -> serde_json::Result<()> {
        serde_json::to_writer(out, value)
    }

    fn decode(json: &[u8]) -> serde_json::Result<Self::Value> {
        serde_json::from_slice(json)
    }
}

/// The Redis cache of the cached function `S` for `owner`, kept in `cell`: the twin of
/// [`memory_cache`](crate::cache::memory_cache).
#[inline]
pub fn redis_cache<S, M>(
    cell: &'static Cell,
    owner: std::any::TypeId,
    signature: S,
    shape: Picked<M>,
    name: impl FnOnce() -> String,
    policy: Policy,
) -> &'static RedisCache<Shaped<S, M>>
where
    S: RedisSignature,
    M: Shape<S::Output> + 'static,
    M::Value: CachedValue + RedisValue,
{
    let _ = (signature, shape);
    cell.get_or_init(
        owner,
        || RedisCache::new(name(), policy),
        |cache| {
            crate::registry::register(*cache.handle());
        },
    )
}

/// The key of one call: its in-process form (for single-flight) and its Redis keys.
pub struct RedisKey<F: Types> {
    local: F::Key,
    /// `None` when the key did not render (a part that does not serialize): no Redis.
    redis: Option<Keys>,
}

/// The Redis keys of a call; cheap to clone. The lock key is made on first use (a miss).
#[derive(Clone)]
struct Keys(std::sync::Arc<KeysInner>);

struct KeysInner {
    value: String,
    lock: std::sync::OnceLock<String>,
}

impl Keys {
    fn new(value: String) -> Self {
        Keys(std::sync::Arc::new(KeysInner {
            value,
            lock: std::sync::OnceLock::new(),
        }))
    }

    fn value(&self) -> &str {
        &self.0.value
    }

    fn lock(&self) -> &str {
        self.0.lock.get_or_init(|| layout::lock_key(&self.0.value))
    }
}

/// The cache behind one `#[cached]` function on Redis.
pub struct RedisCache<F: Types> {
    name: String,
    /// `{prefix}{name}:`, the start of every key (made at the first call, once the settings
    /// are in force).
    head: std::sync::OnceLock<String>,
    policy: Policy,
    fingerprint: String,
    /// Placeholders of the loads in flight in this process; values stay only long enough to
    /// reach the waiters.
    flights: QuickCache<F::Key, Slot<F::Value>>,
    stats: Counters,
    /// Serves calls while Redis is unavailable, with local single-flight and entries that
    /// live at most `fallback_ttl`.
    fallback: Cache<F>,
    /// The breaker's recoveries when the fallback was last used: after a recovery it starts
    /// empty, so entries of an earlier outage are never served.
    fallback_epoch: AtomicU64,
    warnings: RateLimit,
    handle: std::sync::OnceLock<CacheHandle>,
}

/// At most one warning per cache every few seconds, with a count of those it held back.
struct RateLimit {
    last_ms: AtomicU64,
    held_back: AtomicU64,
}

const WARN_EVERY_MS: u64 = 5_000;

impl RateLimit {
    /// `Some(held back since the last one)` if a warning may be logged now.
    fn allow(&self) -> Option<u64> {
        let now = crate::clock::now_ms();
        let last = self.last_ms.load(Relaxed);
        if (last == 0 || now >= last + WARN_EVERY_MS)
            && self
                .last_ms
                .compare_exchange(last, now.max(1), Relaxed, Relaxed)
                .is_ok()
        {
            return Some(self.held_back.swap(0, Relaxed));
        }
        self.held_back.fetch_add(1, Relaxed);
        None
    }
}

/// What a finished load writes to Redis, and what it hands to the local waiters.
struct Settled<V> {
    write: Option<(Vec<u8>, Option<Duration>)>,
    share: Option<Slot<V>>,
}

impl<F: RedisFunction> RedisCache<F> {
    /// A cache named `name` with the settings of `policy`.
    pub fn new(name: impl Into<String>, policy: Policy) -> Self {
        let name = name.into();
        let short = config::current().fallback_ttl;
        let fallback_policy = Policy {
            ttl: Some(policy.ttl.map_or(short, |ttl| ttl.min(short))),
            null_ttl: policy.null_ttl.min(short),
            lock: Lock::Local,
            ..policy
        };
        RedisCache {
            fallback: Cache::new(name.clone(), fallback_policy),
            head: std::sync::OnceLock::new(),
            name,
            policy,
            fingerprint: codec::fingerprint(std::any::type_name::<F::Value>()),
            flights: QuickCache::new(1024),
            stats: Counters::new(),
            fallback_epoch: AtomicU64::new(0),
            handle: std::sync::OnceLock::new(),
            warnings: RateLimit {
                last_ms: AtomicU64::new(0),
                held_back: AtomicU64::new(0),
            },
        }
    }

    /// The in-process fallback, emptied first if Redis recovered since its last use.
    fn fallback(&self) -> &Cache<F> {
        let recoveries = Redis::get().map_or(0, |r| r.breaker.recoveries());
        if self.fallback_epoch.swap(recoveries, Relaxed) != recoveries {
            crate::cache::Erased::clear(&self.fallback);
        }
        &self.fallback
    }

    /// The handle to this cache without its types, for `f_cache()`.
    pub fn handle(&'static self) -> &'static CacheHandle {
        self.handle.get_or_init(|| CacheHandle::new(self))
    }

    /// The key of a call.
    pub fn key(&self, lookup: &F::Lookup<'_>) -> RedisKey<F> {
        let local = F::to_key(lookup);
        let head = self
            .head
            .get_or_init(|| format!("{}{}:", config::current().key_prefix, self.name));
        let mut buffer = String::with_capacity(head.len() + 24);
        buffer.push_str(head);
        let mut writer = KeyWriter::after(buffer, F::SEPARATORS);
        let redis = match F::render_key(lookup, &mut writer) {
            Ok(()) => Some(Keys::new(writer.into_key())),
            Err(e) => {
                self.store_error(&StoreError::Data(format!(
                    "a key part does not serialize: {e}"
                )));
                None
            }
        };
        RedisKey { local, redis }
    }

    /// Counts a failure, and logs it unless this cache logged one in the last 5 s.
    fn store_error(&self, error: &StoreError) {
        self.stats.add(Counter::StoreError);
        if let Some(held_back) = self.warnings.allow() {
            tracing::warn!(
                cache = %self.name,
                error = %error,
                similar_failures_not_logged = held_back,
                "cache-runtime: Redis failed; the call goes on without it"
            );
        }
    }

    /// The Redis connection and keys of a call, or `None` to go on without Redis.
    fn target(&self, key: &RedisKey<F>) -> Option<(&'static Redis, Keys)> {
        let keys = key.redis.clone()?;
        match Redis::get() {
            Ok(redis) => Some((redis, keys)),
            Err(e) => {
                self.store_error(&e);
                None
            }
        }
    }

    /// Decodes an entry; `None` (counted) if it is unusable.
    fn decode(&self, bytes: &[u8]) -> Option<Slot<F::Value>> {
        let max = config::current().max_value_bytes;
        match codec::decode(bytes, &self.fingerprint, max, F::decode) {
            Ok(slot) => Some(slot),
            Err(e) => {
                // Counted here, and overwritten by the load that follows.
                self.store_error(&StoreError::Data(format!("unusable entry: {e}")));
                None
            }
        }
    }

    /// The answer of a read: a hit, or a miss. A miss on an unusable entry (counted) says so:
    /// its load takes the lease at once, since it must overwrite that entry. A failed read
    /// (counted) sends the call to the in-process fallback.
    fn answer(&self, read: Result<Option<Vec<u8>>, StoreError>) -> Read<F::Output> {
        let bytes = match read {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Read::Miss,
            Err(e) => {
                self.store_error(&e);
                return Read::Failed;
            }
        };
        let Some(slot) = self.decode(&bytes) else {
            return Read::Unusable;
        };
        let counter = match slot {
            Slot::Value(_) => Counter::Hit,
            Slot::Null => Counter::NullHit,
        };
        match F::Shape::from_slot(slot) {
            Some(output) => {
                self.stats.add(counter);
                Read::Hit(output)
            }
            None => Read::Unusable,
        }
    }

    /// What a result leaves in Redis and hands to the waiters of this process.
    fn settle(&self, result: &F::Output) -> Settled<F::Value> {
        let Some(slot) = F::Shape::to_slot(result) else {
            self.stats.add(Counter::LoadError);
            return Settled {
                write: None,
                share: None,
            };
        };
        let null = matches!(slot, Slot::Null);
        let share = Some(slot.clone().cloned());
        if null && !self.policy.caches_nulls() {
            return Settled { write: None, share };
        }
        let payload = match codec::encode(slot, &self.fingerprint, F::encode) {
            Ok(p) if p.len() <= config::current().max_value_bytes => p,
            Ok(p) => {
                let why = format!("a value of {} bytes is over the size cap", p.len());
                self.store_error(&StoreError::Data(why));
                return Settled { write: None, share };
            }
            Err(e) => {
                self.store_error(&StoreError::Data(format!(
                    "a value does not serialize: {e}"
                )));
                return Settled { write: None, share };
            }
        };
        let now = crate::clock::now_ms();
        let ttl = match self.policy.deadline(null, now) {
            u64::MAX => None,
            deadline => Some(Duration::from_millis(deadline.saturating_sub(now).max(1))),
        };
        Settled {
            write: Some((payload, ttl)),
            share,
        }
    }

    /// The operation that starts a load's lease, see [`Start`].
    fn begin(
        &self,
        redis: &'static Redis,
        keys: &Keys,
        start: Start,
    ) -> impl std::future::Future<Output = Result<(Begin, bool), StoreError>> + Send + 'static {
        ops::begin(redis, keys.clone(), self.policy.lock_timeout, start)
    }

    /// How this process's leader of a key starts: after an unusable entry it must overwrite
    /// it (`Take`); with `lock = "distributed"` it waits for another process's load (`Wait`);
    /// with `"local"` it takes the lease unless another leader of this process published
    /// meanwhile (`ReadOrTake`).
    fn leader_start(&self, unusable: bool) -> Start {
        match (unusable, self.policy.lock) {
            (true, _) => Start::Take,
            (false, Lock::Distributed) => Start::Wait,
            (false, Lock::Local | Lock::None) => Start::ReadOrTake,
        }
    }

    /// How a load starts, from `begin`'s answer: `Err` with the result when another process
    /// published meanwhile, else our lease (`None` when Redis failed: load without one).
    /// Counts a caller that waited for or took another process's value.
    fn started(&self, begun: Result<(Begin, bool), StoreError>) -> Result<Option<Lease>, Found<F>> {
        match begun {
            Ok((Begin::Found(bytes), _)) => {
                self.stats.add(Counter::Wait);
                let found = self.decode(&bytes).and_then(|slot| {
                    F::Shape::from_slot(slot.clone()).map(|result| (result, slot))
                });
                found.map_or(Ok(None), Err)
            }
            Ok((Begin::Lease(lease), waited)) => {
                if waited {
                    self.stats.add(Counter::Wait);
                }
                Ok(Some(lease))
            }
            Err(e) => {
                self.store_error(&e);
                Ok(None)
            }
        }
    }

    /// The share for local waiters once the publish answered: nothing if an invalidation
    /// revoked the lease (they load again).
    fn published(
        &self,
        answer: Result<bool, StoreError>,
        share: Option<Slot<F::Value>>,
    ) -> Option<Slot<F::Value>> {
        match answer {
            Ok(true) => share,
            Ok(false) => None,
            Err(e) => {
                self.store_error(&e);
                share
            }
        }
    }

    /// Removes the key's entry (and lock) from Redis. Loads in flight anywhere cannot write
    /// their results back.
    pub fn invalidate(&'static self, lookup: &F::Lookup<'_>) {
        let key = self.key(lookup);
        self.fallback.invalidate_key(&key.local);
        if let Some((redis, keys)) = self.target(&key)
            && let Err(e) = redis.block(ops::invalidate(redis, keys))
        {
            self.store_error(&e);
        }
    }

    /// The async twin of [`RedisCache::invalidate`].
    pub async fn invalidate_async(&'static self, lookup: &F::Lookup<'_>) {
        let key = self.key(lookup);
        self.fallback.invalidate_key(&key.local);
        if let Some((redis, keys)) = self.target(&key)
            && let Err(e) = redis.run(ops::invalidate(redis, keys)).await
        {
            self.store_error(&e);
        }
    }
}

/// Another process's result, met when a load starts: the output and the slot to share.
type Found<F> = (<F as Function>::Output, Slot<<F as Types>::Value>);

/// How a load takes its lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Start {
    /// Read the value, else take the lock if it is free, else wait for the process that
    /// holds it (up to `lock_timeout`), then take it: `lock = "distributed"`.
    Wait,
    /// Read the value, else take the lock unconditionally.
    ReadOrTake,
    /// Take the lock unconditionally (`f_refresh`, `lock = "none"`, an unusable entry).
    Take,
}

/// What a read found.
enum Read<R> {
    Hit(R),
    Miss,
    /// An entry that cannot be used (counted): the load overwrites it.
    Unusable,
    /// Redis did not answer: the in-process fallback serves the call.
    Failed,
}

/// The Redis operations, as `'static` futures that run on the Redis runtime.
mod ops {
    use std::time::Duration;

    use super::conn::{Redis, StoreError};
    use super::lease::{self, Begin, Lease};
    use super::{Keys, Start};

    pub(super) async fn read(
        redis: &'static Redis,
        keys: Keys,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        lease::read(redis, keys.value()).await
    }

    pub(super) async fn begin(
        redis: &'static Redis,
        keys: Keys,
        wait: Duration,
        start: Start,
    ) -> Result<(Begin, bool), StoreError> {
        match start {
            Start::Wait => lease::begin(redis, keys.value(), keys.lock(), wait).await,
            Start::ReadOrTake => Ok((
                lease::read_or_take(redis, keys.value(), keys.lock(), wait).await?,
                false,
            )),
            Start::Take => Ok((lease::force(redis, keys.lock(), wait).await?, false)),
        }
    }

    pub(super) async fn release(
        redis: &'static Redis,
        keys: Keys,
        lease: Lease,
    ) -> Result<(), StoreError> {
        lease::release(redis, keys.lock(), &lease).await
    }

    pub(super) async fn publish(
        redis: &'static Redis,
        keys: Keys,
        lease: Lease,
        write: Option<(Vec<u8>, Option<Duration>)>,
    ) -> Result<bool, StoreError> {
        match write {
            Some((payload, ttl)) => {
                lease::publish(redis, keys.value(), keys.lock(), &lease, &payload, ttl).await
            }
            None => lease::release(redis, keys.lock(), &lease)
                .await
                .map(|()| true),
        }
    }

    pub(super) async fn invalidate(redis: &'static Redis, keys: Keys) -> Result<(), StoreError> {
        lease::invalidate(redis, keys.value(), keys.lock()).await
    }
}
