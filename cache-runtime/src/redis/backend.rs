//! [`RedisBackend`]: the engine's backend on Redis — read, lease, publish, invalidate, clear —
//! and its per-cache state (the key head, the value fingerprint, the in-process fallback).
//!
//! Sync calls hand each Redis operation to the library's Redis runtime and block on it; async
//! calls poll it on their own task (`conn.rs`). Every operation is a `'static` future over
//! owned keys, so nothing borrows the caller.

// The trait is public only so that generated code can name the engine's backend type; its
// operations, and the enums they take, are the crate's own.
#![allow(private_interfaces, private_bounds)]

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::conn::{Redis, StoreError};
use super::layout::{self, ClearScan, KeyShape, KeyWriter};
use super::lease::{Begin, Lease, Write};
use super::pending::{self, Pending};
use super::tiered::{self, Change};
use super::{Keys, RateLimit, RedisFunction, RedisKey, RedisSignature, codec, json, tags};
use crate::backend::{Backend, BackendState, Leased, Memory, Published, Read, Start, Tagged};
use crate::bounds::{CachedValue, RedisValue};
use crate::cell::Cell;
use crate::clock;
use crate::config;
use crate::engine::{Engine, in_cell};
use crate::entry::{Entry, Slot, Times};
use crate::function::{Shaped, Types};
use crate::handle::BreakerState;
use crate::invalidation::Invalidation;
use crate::policy::{Codec, Lock, Policy, ms};
use crate::shape::{Picked, Shape};
use crate::stats::Counter;
use crate::tags::Tags;

/// The Redis backend: a type the generated code names, with no state of its own. `T` is
/// [`Remote`] (entries live in Redis only) or [`L1`] (`backend = "tiered"`: an in-process L1
/// in front of Redis, see `tiered.rs`).
#[derive(Debug)]
pub struct RedisBackend<T = Remote>(std::marker::PhantomData<T>);

/// The tiered backend: an in-process L1 in front of Redis.
pub type TieredBackend = RedisBackend<L1>;

/// Where a Redis backend's callers read first.
pub trait Tier: Send + Sync + 'static {
    /// The engine's local store holds entries (an L1), not only hand-overs.
    const LOCAL: bool;
    /// For handles.
    const NAME: &'static str;
}

/// Entries live in Redis only.
#[derive(Debug)]
pub struct Remote;

/// An in-process L1 in front of Redis.
#[derive(Debug)]
pub struct L1;

impl Tier for Remote {
    const LOCAL: bool = false;
    const NAME: &'static str = "redis";
}

impl Tier for L1 {
    const LOCAL: bool = true;
    const NAME: &'static str = "tiered";
}

/// What the Redis backend keeps per cache.
pub struct RedisState<F: Types> {
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
    /// Serves calls while Redis is unavailable, with local single-flight and entries that
    /// live at most `fallback_ttl`.
    fallback: Engine<F, Memory>,
    /// The breaker's recoveries when the fallback was last used: after a recovery it starts
    /// empty, so entries of an earlier outage are never served.
    fallback_epoch: AtomicU64,
    warnings: RateLimit,
    /// `backend = "tiered"`: the L1 copies by rendered key, for the invalidation log.
    pub(super) l1: tiered::Index<F::Key>,
}

impl<F: Types, T: Tier> BackendState<F> for RedisBackend<T> {
    type State = RedisState<F>;
    type Key = RedisKey<F>;
}

/// The Redis (or, with `T = L1`, tiered) cache of the cached function `S` for `owner`, kept
/// in `cell`: the twin of [`memory_cache`](crate::engine::memory_cache). The tier is read from
/// the type the generated code names.
#[inline]
pub fn redis_cache<S, M, T: Tier>(
    cell: &'static Cell,
    owner: std::any::TypeId,
    signature: S,
    shape: Picked<M>,
    init: impl FnOnce() -> (String, Policy),
) -> &'static Engine<Shaped<S, M>, RedisBackend<T>>
where
    S: RedisSignature,
    M: Shape<S::Output> + 'static,
    M::Value: CachedValue + RedisValue,
{
    let _ = (signature, shape);
    in_cell(cell, owner, init)
}

/// Counts a failure, and logs it unless this cache logged one in the last 5 s or it is part of
/// an outage (the connection logs an outage once: `conn.rs`; a command Redis refused, or data
/// at fault, is this cache's own and logged here); an operation not tried because
/// Redis is known to be unavailable is counted apart, and not logged (unusable settings are
/// logged once).
fn store_error<F: RedisFunction, T: Tier>(engine: &Engine<F, RedisBackend<T>>, error: &StoreError) {
    if let StoreError::Unavailable = error {
        engine.stats.add(Counter::StoreSkip);
        return;
    }
    engine.stats.add(Counter::StoreError);
    if matches!(error, StoreError::Failed(_)) && Redis::in_outage() {
        return;
    }
    if let Some(held_back) = engine.state.warnings.allow() {
        tracing::warn!(
            cache = %engine.name,
            error = %error,
            similar_failures_not_logged = held_back,
            "cache-runtime: Redis failed; the call goes on without it"
        );
    }
}

/// The Redis connection and keys of a call, or `None` to go on without Redis.
fn target<F: RedisFunction, T: Tier>(
    engine: &Engine<F, RedisBackend<T>>,
    key: &RedisKey<F>,
) -> Option<(&'static Redis, Keys)> {
    if engine.state.isolated {
        engine.stats.add(Counter::StoreSkip);
        return None;
    }
    let keys = key.redis.clone()?;
    match Redis::get() {
        Ok(redis) => Some((redis, keys)),
        Err(e) => {
            store_error(engine, &e);
            None
        }
    }
}

/// The log entry of a change to `key` (`*`: the whole cache), for a tiered cache.
fn logged<F: RedisFunction, T: Tier>(
    engine: &Engine<F, RedisBackend<T>>,
    key: &str,
) -> Option<Change> {
    T::LOCAL.then(|| Change {
        cache: engine.name.clone(),
        key: key.to_owned(),
    })
}

/// The connection an invalidation or clear goes to, or its answer without Redis: `Done` when
/// this cache has no Redis entries (it runs on its fallback for an overlapping key shape),
/// `Pending` (counted) when the settings name no usable Redis.
fn invalidation_redis<F: RedisFunction, T: Tier>(
    engine: &Engine<F, RedisBackend<T>>,
) -> Result<&'static Redis, Invalidation> {
    if engine.state.isolated {
        return Err(Invalidation::Done);
    }
    Redis::get().map_err(|e| {
        store_error(engine, &e);
        Invalidation::Pending
    })
}

/// What `clear()` of this cache scans for, under the current key prefix.
fn clear_scan<F: RedisFunction, T: Tier>(engine: &Engine<F, RedisBackend<T>>) -> ClearScan {
    ClearScan::new(&config::current().key_prefix, engine.state.shape.clone())
}

/// An invalidation's or clear's answer; one that failed (counted) is kept to replay.
fn invalidated<F: RedisFunction, T: Tier>(
    engine: &Engine<F, RedisBackend<T>>,
    pending: Pending,
    done: Result<(), StoreError>,
) -> Invalidation {
    match done {
        Ok(()) => Invalidation::Done,
        Err(e) => {
            store_error(engine, &e);
            pending::keep(pending);
            Invalidation::Pending
        }
    }
}

/// Decodes an entry, its times on this process's cache clock; `None` (counted) if it is
/// unusable.
fn decode<F: RedisFunction, T: Tier>(
    engine: &Engine<F, RedisBackend<T>>,
    key: &RedisKey<F>,
    bytes: &[u8],
) -> Option<Entry<F::Value>> {
    let (max, print) = (config::current().max_value_bytes, engine.state.fingerprint);
    let decoded = match engine.policy.codec {
        Codec::MessagePack => codec::decode(bytes, print, max, F::decode),
        Codec::Json if bytes.len() > max => Err(codec::DecodeError::TooLarge(bytes.len())),
        Codec::Json => json::decode(bytes, print, F::decode_json),
    };
    match decoded {
        Ok((slot, stamp)) => {
            let fresh_until_ms = clock::from_unix_ms(stamp.fresh_until);
            let grace = ms(engine.policy.grace());
            let times = Times {
                fresh_until_ms,
                stale_until_ms: fresh_until_ms.saturating_add(grace),
                load_ms: stamp.load_ms,
                retry_at_ms: clock::from_unix_ms(stamp.retry_at),
                written_ms: clock::from_unix_ms(stamp.written),
                // The same bytes, the same version, in every process.
                version: codec::version_of(bytes),
            };
            // Its tag versions on Redis were compared by the script that read it; in process it
            // carries the call's, so that a tag invalidated here since ends it too.
            let tags = crate::tags::EntryTags::of(&key.tags);
            Some(Entry { slot, times, tags })
        }
        Err(e) => {
            // Counted here, and overwritten by the load that follows.
            store_error(engine, &StoreError::Data(format!("unusable entry: {e}")));
            None
        }
    }
}

/// `times` with the version of the bytes written, if any.
fn with_version(times: Times, version: Option<u64>) -> Times {
    Times {
        version: version.unwrap_or(times.version),
        ..times
    }
}

/// The read's answer: a hit, a miss, an unusable entry (counted: the load that follows takes
/// the lease at once to overwrite it), or a failure (counted: the fallback answers).
fn answer<F: RedisFunction, T: Tier>(
    engine: &Engine<F, RedisBackend<T>>,
    key: &RedisKey<F>,
    read: Result<Option<Vec<u8>>, StoreError>,
) -> Read<F::Value> {
    match read {
        Ok(Some(bytes)) => decode(engine, key, &bytes).map_or(Read::Unusable, Read::Hit),
        Ok(None) => Read::Miss,
        Err(e) => {
            store_error(engine, &e);
            Read::Failed
        }
    }
}

/// A lease's answer: ours, or another process's value (counted as a wait by the engine: a
/// caller that waited for the lease and then took it runs the body, and is not a wait);
/// without Redis, no lease.
fn leased<F: RedisFunction, T: Tier>(
    engine: &Engine<F, RedisBackend<T>>,
    key: &RedisKey<F>,
    redis: &'static Redis,
    keys: Keys,
    begun: Result<Begin, StoreError>,
) -> Leased<HeldLease, F::Value> {
    match begun {
        Ok(Begin::Found(bytes)) => match decode(engine, key, &bytes) {
            Some(entry) => Leased::Found(entry),
            None => Leased::Lease(None),
        },
        Ok(Begin::Busy) => Leased::Busy,
        Ok(Begin::Lease(lease)) => Leased::Lease(Some(HeldLease::new(
            redis,
            keys,
            lease,
            engine.policy.lock_timeout,
        ))),
        Err(e) => {
            store_error(engine, &e);
            Leased::Lease(None)
        }
    }
}

/// What a published slot writes: the envelope with its times and its `PX` (the end of its
/// stale windows), or `None` (counted) when the value does not encode or is over the size
/// cap.
fn payload<F: RedisFunction, T: Tier>(
    engine: &Engine<F, RedisBackend<T>>,
    lease: &Lease,
    (slot, times): (Slot<&F::Value>, Times),
) -> Option<(Vec<u8>, Write)> {
    let print = engine.state.fingerprint;
    let stamp = codec::Stamp {
        fresh_until: clock::to_unix_ms(times.fresh_until_ms),
        retry_at: clock::to_unix_ms(times.retry_at_ms),
        written: clock::to_unix_ms(times.written_ms),
        load_ms: times.load_ms,
    };
    let encoded = match engine.policy.codec {
        Codec::MessagePack => {
            codec::encode::<_, String>(slot, stamp, &lease.versions, print, |v, out| {
                F::encode(v, out).map_err(|e| e.to_string())
            })
        }
        Codec::Json => json::encode(slot, stamp, &lease.versions, print, F::encode_json),
    };
    let bytes = match encoded {
        Ok(p) if p.len() <= config::current().max_value_bytes => p,
        Ok(p) => {
            let why = format!("a value of {} bytes is over the size cap", p.len());
            store_error(engine, &StoreError::Data(why));
            return None;
        }
        Err(e) => {
            let why = format!("a value does not serialize: {e}");
            store_error(engine, &StoreError::Data(why));
            return None;
        }
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
    Some((bytes, write))
}

/// What [`Backend::keep`] runs: the publish of the kept value under the lease its load still
/// holds (the lease is not released); `None` when there is nothing to write.
fn kept_write<F: RedisFunction, T: Tier>(
    engine: &Engine<F, RedisBackend<T>>,
    lease: &HeldLease,
    stored: (Slot<&F::Value>, Times),
) -> Option<(
    &'static Redis,
    impl Future<Output = Result<bool, StoreError>> + Send + 'static,
)> {
    let held = lease.lease.clone()?;
    let (bytes, write) = payload(engine, &held, stored)?;
    let write = Write {
        keep_lease: true,
        ..write
    };
    let (redis, keys) = (lease.redis, lease.keys.clone());
    Some((
        redis,
        ops::publish(
            redis,
            keys,
            held,
            Some((bytes, write)),
            tracked::<F, T>(engine),
        ),
    ))
}

/// The name a tiered cache's own writes are reported under (`tracking::Echo`); `None` for a
/// cache without an L1.
fn tracked<F: RedisFunction, T: Tier>(engine: &Engine<F, RedisBackend<T>>) -> Option<String> {
    T::LOCAL.then(|| engine.name.clone())
}

/// Whether a publish's answer leaves the result to share: not when an invalidation revoked
/// the lease (the waiters load again); a failed write (counted) still shares.
fn published<F: RedisFunction, T: Tier>(
    engine: &Engine<F, RedisBackend<T>>,
    answer: Result<bool, StoreError>,
) -> bool {
    match answer {
        Ok(valid) => valid,
        Err(e) => {
            store_error(engine, &e);
            true
        }
    }
}

impl<F: RedisFunction, T: Tier> Backend<F> for RedisBackend<T> {
    const NAME: &'static str = T::NAME;
    const LOCAL: bool = T::LOCAL;
    const REMOTE: bool = true;
    type Lease = HeldLease;

    fn breaker() -> Option<BreakerState> {
        Some(if super::conn::Redis::is_skipped() {
            BreakerState::Open
        } else {
            BreakerState::Closed
        })
    }

    fn state(name: &str, policy: &Policy) -> RedisState<F> {
        let short = config::current().fallback_ttl;
        // `fallback_ttl` bounds a copy's whole life (issue 22): no stale phase after it, and
        // jitter only shortens it.
        let fallback_policy = Policy {
            ttl: Some(policy.ttl.map_or(short, |ttl| ttl.min(short))),
            null_ttl: policy.null_ttl.min(short),
            lock: Lock::Local,
            stale: Duration::ZERO,
            stale_if_error: Duration::ZERO,
            load_timeout: None,
            ..*policy
        };
        let shape = KeyShape::new(name, F::LAYOUT);
        let isolated = match layout::claim(&shape) {
            Ok(()) => false,
            Err(why) => {
                tracing::error!(cache = %name, "cache-runtime: {why}");
                true
            }
        };
        RedisState {
            head: OnceLock::new(),
            fingerprint: codec::fingerprint(std::any::type_name::<F::Value>()),
            shape,
            isolated,
            fallback: Engine::new(name.to_owned(), fallback_policy),
            fallback_epoch: AtomicU64::new(0),
            warnings: RateLimit {
                last_ms: AtomicU64::new(0),
                held_back: AtomicU64::new(0),
            },
            l1: tiered::Index::new(),
        }
    }

    fn key(engine: &Engine<F, Self>, lookup: &F::Lookup<'_>, tags: Tags) -> RedisKey<F> {
        let local = F::to_key(lookup);
        let head = engine
            .state
            .head
            .get_or_init(|| format!("{}{}:", config::current().key_prefix, engine.name));
        let mut buffer = String::with_capacity(head.len() + 24);
        buffer.push_str(head);
        let mut writer = KeyWriter::after(buffer, F::SEPARATORS);
        let redis = match F::render_key(lookup, &mut writer) {
            Ok(()) => Some(Keys::new(
                writer.into_key(),
                tags.names().map(self::tags::key).collect(),
            )),
            Err(e) => {
                let why = format!("a key part does not serialize: {e}");
                store_error(engine, &StoreError::Data(why));
                None
            }
        };
        RedisKey { local, tags, redis }
    }

    #[inline]
    fn local(key: &RedisKey<F>) -> &F::Key {
        &key.local
    }

    #[inline]
    fn tags(key: &RedisKey<F>) -> &Tags {
        &key.tags
    }

    fn into_local(key: RedisKey<F>) -> Tagged<F::Key> {
        Tagged {
            key: key.local,
            tags: key.tags,
        }
    }

    fn read(engine: &Engine<F, Self>, key: &RedisKey<F>) -> Read<F::Value> {
        let Some((redis, keys)) = target(engine, key) else {
            return Read::Failed;
        };
        let warm = Warm::start(engine, key);
        let read = answer(engine, key, redis.block(ops::read(redis, keys)));
        warm.read(read)
    }

    async fn read_async(engine: &Engine<F, Self>, key: &RedisKey<F>) -> Read<F::Value> {
        let Some((redis, keys)) = target(engine, key) else {
            return Read::Failed;
        };
        let warm = Warm::start(engine, key);
        let read = answer(engine, key, redis.run(ops::read(redis, keys)).await);
        warm.read(read)
    }

    fn lease(
        engine: &Engine<F, Self>,
        key: &RedisKey<F>,
        start: Start,
    ) -> Leased<HeldLease, F::Value> {
        let Some((redis, keys)) = target(engine, key) else {
            return Leased::Lease(None);
        };
        let wait = engine.policy.lock_timeout;
        let begun = redis.block(ops::begin(redis, keys.clone(), wait, start));
        leased(engine, key, redis, keys, begun)
    }

    async fn lease_async(
        engine: &Engine<F, Self>,
        key: &RedisKey<F>,
        start: Start,
    ) -> Leased<HeldLease, F::Value> {
        let Some((redis, keys)) = target(engine, key) else {
            return Leased::Lease(None);
        };
        let wait = engine.policy.lock_timeout;
        let begun = redis
            .run(ops::begin(redis, keys.clone(), wait, start))
            .await;
        leased(engine, key, redis, keys, begun)
    }

    fn publish(
        engine: &Engine<F, Self>,
        key: &RedisKey<F>,
        mut lease: HeldLease,
        stored: Option<(Slot<&F::Value>, Times)>,
    ) -> Published {
        let warm = Warm::start(engine, key);
        lease.done.store(true, Relaxed);
        let Some(held) = lease.lease.take() else {
            return Published::IN_PROCESS;
        };
        let write = stored
            .clone()
            .and_then(|stored| payload(engine, &held, stored));
        // The version every reader computes from these bytes, for this process's copies too.
        let version = write.as_ref().map(|(bytes, _)| codec::version_of(bytes));
        let stored = stored.map(|(slot, times)| (slot, with_version(times, version)));
        let (redis, keys) = (lease.redis, lease.keys.clone());
        let wrote = write.is_some();
        let answer = redis.block(ops::publish(
            redis,
            keys,
            held,
            write,
            tracked::<F, T>(engine),
        ));
        warm.published(&answer, stored.filter(|_| wrote));
        Published {
            valid: published(engine, answer),
            version,
        }
    }

    async fn publish_async(
        engine: &Engine<F, Self>,
        key: &RedisKey<F>,
        mut lease: HeldLease,
        stored: Option<(Slot<&F::Value>, Times)>,
    ) -> Published {
        let warm = Warm::start(engine, key);
        lease.done.store(true, Relaxed);
        let Some(held) = lease.lease.take() else {
            return Published::IN_PROCESS;
        };
        let write = stored
            .clone()
            .and_then(|stored| payload(engine, &held, stored));
        // The version every reader computes from these bytes, for this process's copies too.
        let version = write.as_ref().map(|(bytes, _)| codec::version_of(bytes));
        let stored = stored.map(|(slot, times)| (slot, with_version(times, version)));
        let (redis, keys) = (lease.redis, lease.keys.clone());
        let wrote = write.is_some();
        let answer = redis
            .run(ops::publish(
                redis,
                keys,
                held,
                write,
                tracked::<F, T>(engine),
            ))
            .await;
        warm.published(&answer, stored.filter(|_| wrote));
        Published {
            valid: published(engine, answer),
            version,
        }
    }

    fn keep(
        engine: &Engine<F, Self>,
        _: &RedisKey<F>,
        lease: &HeldLease,
        stored: (Slot<&F::Value>, Times),
    ) -> bool {
        let Some((redis, publish)) = kept_write(engine, lease, stored) else {
            return true;
        };
        published(engine, redis.block(publish))
    }

    async fn keep_async(
        engine: &Engine<F, Self>,
        _: &RedisKey<F>,
        lease: &HeldLease,
        stored: (Slot<&F::Value>, Times),
    ) -> bool {
        let Some((redis, publish)) = kept_write(engine, lease, stored) else {
            return true;
        };
        published(engine, redis.run(publish).await)
    }

    /// Deletes the value and its lock; kept to replay if Redis cannot be reached now.
    fn invalidate(engine: &Engine<F, Self>, key: &RedisKey<F>) -> Invalidation {
        let Some(keys) = key.redis.clone() else {
            return Invalidation::Done; // the key does not render: it has no Redis entry
        };
        let redis = match invalidation_redis(engine) {
            Ok(redis) => redis,
            Err(answer) => return answer,
        };
        let log = logged::<F, T>(engine, keys.value());
        let done = redis.block(ops::invalidate(redis, keys.clone(), log.clone()));
        invalidated(engine, Pending::Key(keys, log), done)
    }

    async fn invalidate_async(engine: &Engine<F, Self>, key: &RedisKey<F>) -> Invalidation {
        let Some(keys) = key.redis.clone() else {
            return Invalidation::Done;
        };
        let redis = match invalidation_redis(engine) {
            Ok(redis) => redis,
            Err(answer) => return answer,
        };
        let log = logged::<F, T>(engine, keys.value());
        let done = redis
            .run(ops::invalidate(redis, keys.clone(), log.clone()))
            .await;
        invalidated(engine, Pending::Key(keys, log), done)
    }

    /// Deletes every key of this function (and their locks) with `SCAN` and `UNLINK`: the
    /// keys under its name that have its shape, not those of a function named `{name}:…`.
    fn clear(engine: &Engine<F, Self>) -> Invalidation {
        let redis = match invalidation_redis(engine) {
            Ok(redis) => redis,
            Err(answer) => return answer,
        };
        let scan = clear_scan(engine);
        let log = logged::<F, T>(engine, "*");
        let done = redis.block(ops::clear(redis, scan.clone(), log.clone()));
        invalidated(engine, Pending::Clear(scan, log), done)
    }

    async fn clear_async(engine: &Engine<F, Self>) -> Invalidation {
        let redis = match invalidation_redis(engine) {
            Ok(redis) => redis,
            Err(answer) => return answer,
        };
        let scan = clear_scan(engine);
        let log = logged::<F, T>(engine, "*");
        let done = redis
            .run(ops::clear(redis, scan.clone(), log.clone()))
            .await;
        invalidated(engine, Pending::Clear(scan, log), done)
    }

    #[inline]
    fn serves_local_at(coarse: u64) -> bool {
        !T::LOCAL || tiered::serves_local_at(coarse)
    }

    fn keep_local(engine: &Engine<F, Self>, key: &RedisKey<F>, insert: impl FnOnce()) {
        if T::LOCAL {
            tiered::keep_local(engine, key, insert);
        } else {
            insert();
        }
    }

    fn on_create(engine: &'static Engine<F, Self>) {
        if T::LOCAL {
            tiered::register(&engine.name, engine);
        }
    }

    /// After `f_refresh` of a tiered cache: the change goes to the log (kept to replay if
    /// Redis cannot be reached).
    fn changed(engine: &Engine<F, Self>, key: &RedisKey<F>) {
        let (true, Some(keys)) = (T::LOCAL, key.redis.as_ref()) else {
            return;
        };
        let Ok(redis) = invalidation_redis(engine) else {
            return;
        };
        let Some(change) = logged::<F, T>(engine, keys.value()) else {
            return;
        };
        let done = redis.block(ops::changed(redis, change.clone()));
        let _ = invalidated(engine, Pending::Logged(change), done);
    }

    async fn changed_async(engine: &Engine<F, Self>, key: &RedisKey<F>) {
        let (true, Some(keys)) = (T::LOCAL, key.redis.as_ref()) else {
            return;
        };
        let Ok(redis) = invalidation_redis(engine) else {
            return;
        };
        let Some(change) = logged::<F, T>(engine, keys.value()) else {
            return;
        };
        let done = redis.run(ops::changed(redis, change.clone())).await;
        let _ = invalidated(engine, Pending::Logged(change), done);
    }

    /// The in-process fallback, emptied first if Redis recovered since its last use; none with
    /// an L1 (the L1 is the fallback: its copies live at most `l1_ttl`).
    fn fallback(engine: &Engine<F, Self>) -> Option<&Engine<F, Memory>> {
        if T::LOCAL {
            return None;
        }
        let state = &engine.state;
        let recoveries = Redis::get().map_or(0, |r| r.breaker.recoveries());
        // A load first: every Redis call passes here, and a write per call would bounce the
        // line between cores; only the first call after a recovery swaps and empties.
        if state.fallback_epoch.load(Relaxed) != recoveries
            && state.fallback_epoch.swap(recoveries, Relaxed) != recoveries
        {
            state.fallback.clear_local();
        }
        Some(&state.fallback)
    }
}

/// Keeps what this process reads from and writes to Redis in the fallback too, so that an
/// outage serves the keys this process already had (for at most `min(ttl, fallback_ttl)`)
/// instead of loading them again. The copy is fenced by a ticket taken before the Redis
/// operation: an invalidation of the key in this process meanwhile drops it.
struct Warm<'a, F: RedisFunction> {
    /// No copies for a backend with an L1 of its own.
    on: bool,
    fallback: &'a Engine<F, Memory>,
    key: &'a F::Key,
    tags: &'a Tags,
    ticket: crate::fence::Ticket,
}

impl<'a, F: RedisFunction> Warm<'a, F> {
    fn start<T: Tier>(engine: &'a Engine<F, RedisBackend<T>>, key: &'a RedisKey<F>) -> Self {
        // Through the accessor: after a recovery it first empties what an outage left.
        let fallback = &engine.state.fallback;
        let _ = <RedisBackend<T> as Backend<F>>::fallback(engine);
        Warm {
            on: !T::LOCAL,
            fallback,
            key: &key.local,
            tags: &key.tags,
            ticket: fallback.ticket(&key.local),
        }
    }

    /// After a read: keeps a hit on a fresh entry.
    fn read(self, read: Read<F::Value>) -> Read<F::Value> {
        if let Read::Hit(entry) = &read
            && entry.is_fresh()
        {
            self.keep(entry.slot.as_ref());
        }
        read
    }

    /// After a publish: keeps what it wrote, if it wrote a fresh entry.
    fn published(
        self,
        answer: &Result<bool, StoreError>,
        stored: Option<(Slot<&F::Value>, Times)>,
    ) {
        if let (Ok(true), Some((slot, times))) = (answer, stored)
            && times.retry_at_ms == 0
        {
            self.keep(slot);
        }
    }

    fn keep(self, slot: Slot<&F::Value>) {
        if !self.on {
            return;
        }
        let entry = self.fallback.entry(slot, self.tags);
        let key = self.key.clone();
        self.fallback
            .fenced(self.ticket, || self.fallback.store.insert(key, entry));
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

/// The Redis operations, as `'static` futures that run on the Redis runtime.
mod ops {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    use std::time::Duration;

    use super::super::Keys;
    use super::super::conn::{Redis, StoreError};
    use super::super::layout::ClearScan;
    use super::super::lease::{self, Begin, Lease};
    use super::super::pending;
    use super::super::tiered::{self, Change};
    use super::super::tracking::Echo;
    use crate::backend::Start;

    pub(super) async fn read(
        redis: &'static Redis,
        keys: Keys,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        pending::replayed(redis).await?;
        lease::read(redis, &keys).await
    }

    pub(super) async fn begin(
        redis: &'static Redis,
        keys: Keys,
        wait: Duration,
        start: Start,
    ) -> Result<Begin, StoreError> {
        pending::replayed(redis).await?;
        match start {
            Start::Wait => lease::begin(redis, &keys, wait).await,
            Start::ReadOrTake => lease::read_or_take(redis, &keys, wait).await,
            Start::Take => lease::force(redis, &keys, wait).await,
            Start::Refresh(seen) => {
                let seen = crate::clock::to_unix_ms(seen);
                let begun = lease::try_refresh(redis, &keys, wait, seen);
                begun.await
            }
        }
    }

    /// Publishes under `lease`; with `tracked` (a tiered cache's name) the write's own report
    /// from the tracking connection is verified rather than acted on (`tracking::Echo`).
    pub(super) async fn publish(
        redis: &'static Redis,
        keys: Keys,
        lease: Lease,
        write: Option<(Vec<u8>, lease::Write)>,
        tracked: Option<String>,
    ) -> Result<bool, StoreError> {
        match write {
            Some((payload, write)) => {
                let _echo = tracked.and_then(|cache| Echo::value(&cache, keys.value()));
                lease::publish(redis, &keys, &lease, &payload, write).await
            }
            None => lease::release(redis, keys.value(), keys.lock(), &lease)
                .await
                .map(|()| true),
        }
    }

    /// Renews `lease` every third of `lifetime` until `done`, or until the lock no longer
    /// holds its token, or Redis fails.
    pub(super) async fn renew(
        redis: &'static Redis,
        keys: Keys,
        lease: Lease,
        lifetime: Duration,
        done: Arc<AtomicBool>,
    ) -> Result<(), StoreError> {
        let every = (lifetime / 3).max(Duration::from_millis(1));
        loop {
            tokio::time::sleep(every).await;
            if done.load(Relaxed) || !lease::renew(redis, keys.lock(), &lease, lifetime).await? {
                return Ok(());
            }
        }
    }

    pub(super) async fn release(
        redis: &'static Redis,
        keys: Keys,
        lease: Lease,
    ) -> Result<(), StoreError> {
        lease::release(redis, keys.value(), keys.lock(), &lease).await
    }

    /// Deletes the value and its lock; with `log` (a tiered cache), appends the change to the
    /// invalidation log in the same script.
    pub(super) async fn invalidate(
        redis: &'static Redis,
        keys: Keys,
        log: Option<Change>,
    ) -> Result<(), StoreError> {
        pending::replayed(redis).await?;
        match log {
            Some(change) => tiered::invalidate(redis, keys.value(), keys.lock(), &change).await,
            None => lease::invalidate(redis, keys.value(), keys.lock()).await,
        }
    }

    pub(super) async fn clear(
        redis: &'static Redis,
        scan: ClearScan,
        log: Option<Change>,
    ) -> Result<(), StoreError> {
        pending::replayed(redis).await?;
        lease::delete_matching(redis, &scan).await?;
        match log {
            Some(change) => tiered::append(redis, &change).await,
            None => Ok(()),
        }
    }

    /// After `f_refresh` of a tiered cache wrote: the change appended to the log.
    pub(super) async fn changed(redis: &'static Redis, change: Change) -> Result<(), StoreError> {
        pending::replayed(redis).await?;
        tiered::append(redis, &change).await
    }
}
