//! Changes made in Redis by anyone reach every tiered L1 (issue 22): Redis's server-assisted
//! client-side caching in broadcast mode (`CLIENT TRACKING ON BCAST`, Redis 6 and later).
//!
//! The invalidation log (`tiered.rs`) carries what this library changes, resumably; a service
//! in another language, `redis-cli`, an eviction or a `FLUSHDB` writes nothing to it. So each
//! process also keeps, per Redis server (per primary on a cluster), one RESP3 connection that
//! asks the server to report every write to the keys of its tiered caches and to the tag keys:
//! `CLIENT TRACKING ON BCAST PREFIX <head> …` (one prefix per tiered cache, `{prefix}{name}:`,
//! and `{prefix}cache-runtime:tag:`, none covering another). Each report (a RESP3 push) names
//! the keys written (`SET`, `DEL`, `EXPIRE`, a script, an eviction, an expiry) or is nil
//! (`FLUSHDB`, `FLUSHALL`): the L1 copy of each key is dropped, a tag key moves its tag's
//! version on in this process, nil drops every copy. No Redis read on receipt.
//!
//! **When the L1 may answer.** Only while every tracking connection is live and caught up:
//! every 50 ms it is sent a `PING`; once the answer is read, every report sent before it has
//! been queued, and once those are applied the L1 may answer until `VALID_MS` after the
//! `PING` before it was sent (a write in the same pass of Redis's event loop as a `PING` is
//! reported after its answer) (`live_until`; the log reader combines it with its own deadline). A
//! connection that fails closes the L1 at once; when it is back every copy is dropped first,
//! since writes made meanwhile were not reported. A new tiered cache adds its prefix to the
//! same connection (the L1 closes until it is tracked, at the next `PING`); a prefix that
//! covers one tracked already, or is covered, needs a new connection (every copy dropped).
//!
//! **Own writes.** A write of this process is reported back to it too (`NOLOOP` does not
//! cover writes made by a script, which every publish is, in Redis 7.0). A report of a key
//! this process wrote in the last second is verified (the key read, pipelined with the next
//! `PING`) instead of acted on, so a load keeps the copy it made while it is still what Redis
//! holds (see `Echoes`).
//!
//! What it costs: one message per write to a tracked key, to every process with a tiered
//! cache. Expiries are reported late (when Redis finds the key expired), which does not
//! matter: a copy never outlives its entry's own deadline. `SWAPDB` is not reported (by Redis
//! 7.0): do not swap a database under tiered caches.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, LazyLock, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use redis::Value;

use super::conn::Redis;
use super::gate::{self, TRACKERS};
use crate::clock;
use crate::config;

/// How often a tracking connection is sent a `PING`.
const PING_MS: u64 = 50;
/// How long after a `PING` was sent (its answer read, every report before it applied) the L1
/// may answer: the next one is sent `PING_MS` later and answers within a round trip.
const VALID_MS: u64 = 200;
/// How long a `PING` may take before the connection is given up.
const PING_TIMEOUT: Duration = Duration::from_secs(1);
/// The tracked prefixes, and a count of their changes (a tracker adds the new ones when it
/// moves).
struct Prefixes {
    generation: u64,
    /// `{prefix}{name}:` of each tiered cache.
    heads: Vec<String>,
}

static PREFIXES: Mutex<Prefixes> = Mutex::new(Prefixes {
    generation: 0,
    heads: Vec::new(),
});

static STARTED: OnceLock<()> = OnceLock::new();
/// Whether a tracking failure was logged at warn level (once per process).
static WARNED: OnceLock<()> = OnceLock::new();
/// The head of a tiered cache's keys, and of tag keys.
fn head(name: &str) -> String {
    format!("{}{name}:", config::current().key_prefix)
}

fn tag_head() -> String {
    format!("{}cache-runtime:tag:", config::current().key_prefix)
}

/// A tiered cache is made: its keys are tracked from now on (the trackers start with the first
/// one).
pub(crate) fn track(redis: &'static Redis, name: &str) {
    {
        let mut prefixes = PREFIXES.lock().unwrap_or_else(PoisonError::into_inner);
        let head = head(name);
        if !prefixes.heads.contains(&head) {
            prefixes.heads.push(head);
            prefixes.generation += 1;
            // Its keys are not tracked until every tracker has added its prefix (within a
            // PING): no copy answers meanwhile. Under the lock a tracker decides its deadline
            // under, so none reopens the gate for the older prefixes.
            for tracker in TRACKERS
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
            {
                tracker.store(0, Relaxed);
            }
            gate::close();
        }
    }
    STARTED.get_or_init(|| start(redis));
}

/// The prefixes to ask for, none covering another (Redis refuses overlapping prefixes).
fn wanted() -> (u64, Vec<String>) {
    let prefixes = PREFIXES.lock().unwrap_or_else(PoisonError::into_inner);
    let mut all = prefixes.heads.clone();
    all.push(tag_head());
    all.sort();
    let mut kept: Vec<String> = Vec::new();
    for p in all {
        if !kept.iter().any(|k| p.starts_with(k.as_str())) {
            kept.push(p);
        }
    }
    (prefixes.generation, kept)
}

/// Bumped when the set of nodes changes: trackers of an older set end.
static EPOCH: AtomicU64 = AtomicU64::new(0);

/// Starts the supervisor: one tracker per server (the single server, or each primary of a
/// cluster, found again whenever a tracker fails: a failover moves primaries). All of them are
/// tasks of the Redis runtime.
fn start(redis: &'static Redis) {
    redis.background(supervise(redis));
}

async fn supervise(redis: &'static Redis) {
    let (failed_tx, mut failed_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut current: Vec<(String, u16)> = Vec::new();
    loop {
        match nodes(redis).await {
            Some(found) if found != current => {
                let epoch = EPOCH.fetch_add(1, Relaxed) + 1;
                let mut trackers = TRACKERS.lock().unwrap_or_else(PoisonError::into_inner);
                trackers.clear();
                for client in clients(redis, &found) {
                    // A node without a client keeps its deadline at 0: the L1 stays closed.
                    let deadline = Arc::new(AtomicU64::new(0));
                    trackers.push(Arc::clone(&deadline));
                    if let Some(client) = client {
                        let failed = failed_tx.clone();
                        redis.background(follow(redis, client, deadline, epoch, failed));
                    }
                }
                current = found;
            }
            _ => {}
        }
        // Look again when a tracker fails (a cluster may have moved its primaries), and every
        // second on a cluster (slots moved to a new primary are tracked within about that).
        let again = if redis.is_cluster() { 1 } else { 5 };
        let _ = tokio::time::timeout(Duration::from_secs(again), failed_rx.recv()).await;
    }
}

/// The servers to track: the single server, or the primaries of the cluster (`None` when they
/// cannot be found now).
async fn nodes(redis: &'static Redis) -> Option<Vec<(String, u16)>> {
    if !redis.is_cluster() {
        return Some(vec![(String::new(), 0)]);
    }
    let mut found = super::scan::primaries(redis).await.ok()?;
    found.sort();
    (!found.is_empty()).then_some(found)
}

/// A client per node (`None` where none could be made), speaking RESP3 (tracking reports
/// come as pushes on the connection itself): the settings' own for a single server; for a
/// cluster's primaries, the first seed's settings (user, password, TLS) with the primary's
/// address.
fn clients(redis: &'static Redis, nodes: &[(String, u16)]) -> Vec<Option<redis::Client>> {
    let Some(base) = redis
        .clients
        .first()
        .map(|c| c.get_connection_info().clone())
    else {
        return nodes.iter().map(|_| None).collect();
    };
    let settings = base
        .redis_settings()
        .clone()
        .set_protocol(redis::ProtocolVersion::RESP3);
    let base = base.set_redis_settings(settings);
    if !redis.is_cluster() {
        return vec![redis::Client::open(base).ok()];
    }
    nodes
        .iter()
        .map(|(host, port)| {
            let (host, port) = (host.clone(), *port);
            let addr = match base.addr() {
                redis::ConnectionAddr::TcpTls {
                    insecure,
                    tls_params,
                    ..
                } => redis::ConnectionAddr::TcpTls {
                    host,
                    port,
                    insecure: *insecure,
                    tls_params: tls_params.clone(),
                },
                _ => redis::ConnectionAddr::Tcp(host, port),
            };
            redis::Client::open(base.clone().set_addr(addr)).ok()
        })
        .collect()
}

/// While its set of nodes is current: track, drop every copy, follow; after an error or a
/// change of prefixes that cannot be added, close the L1 and do it again.
async fn follow(
    redis: &'static Redis,
    client: redis::Client,
    deadline: Arc<AtomicU64>,
    epoch: u64,
    failed: tokio::sync::mpsc::UnboundedSender<()>,
) {
    let mut backoff = Duration::from_millis(100);
    while EPOCH.load(Relaxed) == epoch {
        if let Err(e) = tracked(redis, &client, &deadline, epoch).await {
            if WARNED.set(()).is_ok() {
                tracing::warn!(
                    error = %e,
                    "cache-runtime: the tracking connection of tiered caches failed; their \
                     L1 does not answer until it works (it needs RESP3 and CLIENT TRACKING; \
                     further failures are logged at debug)"
                );
            } else {
                tracing::debug!(error = %e, "cache-runtime: the tracking connection failed");
            }
            let _ = failed.send(());
            deadline.store(0, Relaxed);
            gate::close();
            // Where tracking is refused (an old server, a proxy, a user without the rights),
            // try again less and less often (at most every 5 s).
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
            continue;
        }
        deadline.store(0, Relaxed);
        gate::close();
        backoff = Duration::from_millis(100);
    }
}

/// `CLIENT TRACKING ON BCAST PREFIX … ` for `prefixes` (added to those tracked already).
fn tracking_on(prefixes: &[String]) -> redis::Cmd {
    let mut on = redis::cmd("CLIENT");
    on.arg("TRACKING").arg("ON").arg("BCAST");
    for p in prefixes {
        on.arg("PREFIX").arg(p);
    }
    on
}

/// One tracking connection: until it fails, or the prefixes change so that they cannot be
/// added (`Ok`). Reports come as RESP3 pushes, read by the connection's driver as they arrive
/// and queued in order; the answer to a `PING` comes after every report sent before it, so
/// once it is read, the queue holds every write before the `PING` was sent.
async fn tracked(
    redis: &'static Redis,
    client: &redis::Client,
    deadline: &AtomicU64,
    epoch: u64,
) -> redis::RedisResult<()> {
    let (tx, mut reports) = tokio::sync::mpsc::unbounded_channel::<redis::PushInfo>();
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(redis.config.connect_timeout))
        .set_response_timeout(Some(PING_TIMEOUT))
        .set_push_sender(tx);
    let mut con = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let _: Value = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("cache-runtime-tracking")
        .query_async(&mut con)
        .await?;
    let (mut generation, mut prefixes) = wanted();
    let _: Value = tracking_on(&prefixes).query_async(&mut con).await?;
    // Writes made while no connection tracked them were not reported.
    gate::drop_everything();
    let (tag_head, mut heads) = (tag_head(), tiered_heads());
    let every = Duration::from_millis(PING_MS);
    // When the previous PING was sent (the deadline counts from it).
    let mut previous: Option<u64> = None;
    loop {
        if EPOCH.load(Relaxed) != epoch {
            return Ok(());
        }
        let (now, wanted) = wanted();
        if now != generation {
            // A new tiered cache: its prefix added without a gap, unless it covers one
            // tracked already (or is covered): then everything again.
            if !prefixes.iter().all(|p| wanted.contains(p)) {
                return Ok(());
            }
            let added: Vec<String> = wanted
                .iter()
                .filter(|p| !prefixes.contains(p))
                .cloned()
                .collect();
            let _: Value = tracking_on(&added).query_async(&mut con).await?;
            // A new cache's copies made before its prefix was tracked may have missed writes.
            gate::drop_everything();
            (generation, prefixes, heads) = (now, wanted, tiered_heads());
        }
        // Reports as they come, for a while; then a PING, with a read of each key this
        // process wrote that was reported meanwhile (see `Echoes`).
        let until = tokio::time::Instant::now() + every;
        let mut verify: Vec<(String, Act)> = Vec::new();
        while let Ok(report) = tokio::time::timeout_at(until, reports.recv()).await {
            apply(report, &tag_head, &heads, &mut verify)?;
        }
        let sent = clock::now_ms();
        pinged(&mut con, &mut reports, verify, &tag_head, &heads).await?;
        forget_old_echoes();
        // Not for prefixes that changed meanwhile (a new cache's keys are not tracked yet:
        // decided under the lock `track` takes to close the gate). From the previous PING: a
        // write made in the same pass of Redis's event loop as a PING is reported after its
        // answer.
        let prefixes_now = PREFIXES.lock().unwrap_or_else(PoisonError::into_inner);
        if prefixes_now.generation == generation
            && let Some(from) = previous.replace(sent)
        {
            deadline.store(from.saturating_add(VALID_MS), Relaxed);
            gate::refresh_gate();
        }
        drop(prefixes_now);
    }
}

/// A `PING`, pipelined with a read of each key in `verify`; then the reports that came before
/// its answer are applied (those of own writes read the same way, until none is left).
async fn pinged(
    con: &mut redis::aio::MultiplexedConnection,
    reports: &mut tokio::sync::mpsc::UnboundedReceiver<redis::PushInfo>,
    mut verify: Vec<(String, Act)>,
    tag_head: &str,
    heads: &HashMap<String, String>,
) -> redis::RedisResult<()> {
    loop {
        let mut pipe = redis::pipe();
        for (key, _) in &verify {
            pipe.cmd("GET").arg(key);
        }
        pipe.cmd("PING");
        let mut replies: Vec<Value> = pipe.query_async(con).await?;
        let _pong = replies.pop();
        for ((key, act), stored) in verify.drain(..).zip(replies) {
            match stored {
                Value::BulkString(bytes) => act.verified(&key, Some(&bytes)),
                _ => act.verified(&key, None),
            }
        }
        while let Ok(report) = reports.try_recv() {
            apply(Some(report), tag_head, heads, &mut verify)?;
        }
        if verify.is_empty() {
            return Ok(());
        }
    }
}

/// The tiered caches' heads, by cache name.
fn tiered_heads() -> HashMap<String, String> {
    gate::names().into_iter().map(|n| (head(&n), n)).collect()
}

/// One report (`None`: the connection's queue closed): the copies of the keys it names
/// dropped (nil: every copy), those this process wrote lately queued in `verify`; the
/// connection's end is an error.
fn apply(
    report: Option<redis::PushInfo>,
    tag_head: &str,
    heads: &HashMap<String, String>,
    verify: &mut Vec<(String, Act)>,
) -> redis::RedisResult<()> {
    let gone = || redis::RedisError::from((redis::ErrorKind::Io, "the tracking connection closed"));
    let Some(report) = report else {
        return Err(gone());
    };
    match report.kind {
        redis::PushKind::Invalidate => {}
        redis::PushKind::Disconnection => return Err(gone()),
        _ => return Ok(()),
    }
    let keys: Vec<&[u8]> = match report.data.first() {
        Some(Value::Array(keys)) => keys
            .iter()
            .filter_map(|k| match k {
                Value::BulkString(k) => Some(k.as_slice()),
                _ => None,
            })
            .collect(),
        // Nil: a flush. Anything else: not a report this reader understands, so everything
        // goes rather than miss one.
        _ => {
            gate::drop_everything();
            return Ok(());
        }
    };
    for key in keys {
        let Ok(key) = std::str::from_utf8(key) else {
            continue;
        };
        if let Some(act) = echoed(key) {
            verify.push((key.to_owned(), act));
            continue;
        }
        if let Some(tag) = key.strip_prefix(tag_head) {
            crate::tags::invalidate_local(tag);
            continue;
        }
        for (head, name) in heads {
            if key.starts_with(head.as_str()) {
                gate::drop_key(name, key);
            }
        }
    }
    Ok(())
}

/// This process's own writes of tracked keys. Their reports come back to it too (`NOLOOP`
/// does not cover writes made by a script, which every publish is, in Redis 7.0), and acting
/// on them would drop the copy a load just made (and fence every copy in flight). Skipping
/// them cannot be done by counting: Redis merges the reports of every write to a key made in
/// one pass of its event loop, so a report may stand for this process's write and another
/// client's at once. So a report of a key this process wrote lately is *verified* instead:
/// the key is read on the tracking connection (pipelined with the next `PING`), and the copy
/// is kept only if it is the entry Redis holds now (its version, a hash of the bytes), a tag
/// moved on only if its key no longer holds the version this process wrote (so such a report
/// is applied within a `PING` period, 50 ms, not at once: by then the load that wrote has kept
/// its copy, which a read at once would fence out). Every other report is acted on at once. The list only saves work: a key missing from it is acted on,
/// which is always safe.
#[derive(Default)]
struct Echoes {
    /// Keys written by this process: writes in flight, and when the last one ended.
    keys: HashMap<String, Written>,
}

/// An own write of a tracked key.
struct Written {
    /// What a report of it stands for.
    act: Act,
    in_flight: u32,
    /// When the last write ended (its report comes within milliseconds).
    ended: Option<std::time::Instant>,
}

/// How long after an own write ended its key is still verified rather than acted on.
const ECHO_FOR: Duration = Duration::from_secs(1);

static ECHOES: LazyLock<Mutex<Echoes>> = LazyLock::new(Mutex::default);

fn echoes() -> std::sync::MutexGuard<'static, Echoes> {
    ECHOES.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a report of a key this process wrote lately stands for: to verify (`Some`), or
/// `None` to act on at once.
fn echoed(key: &str) -> Option<Act> {
    echoes().keys.get(key).map(|w| w.act.clone())
}

/// Forgets own writes that ended long enough ago for their reports to have come.
fn forget_old_echoes() {
    echoes()
        .keys
        .retain(|_, w| w.in_flight > 0 || w.ended.is_some_and(|at| at.elapsed() < ECHO_FOR));
}

/// What a report of an own write stands for, and how to verify it.
#[derive(Clone)]
pub(crate) enum Act {
    /// A value of the tiered cache of this name: keep the copy only if it is what Redis holds.
    Value(String),
    /// The tag key of this tag, which this process set to this version: move the tag on only
    /// if the key holds another one.
    Tag(String, Vec<u8>),
}

impl Act {
    /// Applies a report of `key` once Redis was read: `stored` is what the key holds now.
    fn verified(&self, key: &str, stored: Option<&[u8]>) {
        match self {
            Act::Value(cache) => gate::verify_key(cache, key, stored),
            Act::Tag(tag, version) => {
                if stored != Some(version.as_slice()) {
                    crate::tags::invalidate_local(tag);
                }
            }
        }
    }
}

/// An own write of a tracked key, from before it is sent until it ended.
pub(crate) struct Echo {
    key: String,
}

impl Echo {
    /// Before the write of `key` (a Redis key of the tiered cache `cache`) is sent; `None`
    /// while nothing is tracked (no tiered cache in this process).
    pub(crate) fn value(cache: &str, key: &str) -> Option<Echo> {
        Echo::expect(Act::Value(cache.to_owned()), key)
    }

    /// Before the tag key `key` of `tag` is set to `version`; `None` while nothing is tracked.
    pub(crate) fn tag(tag: &str, key: &str, version: &[u8]) -> Option<Echo> {
        Echo::expect(Act::Tag(tag.to_owned(), version.to_vec()), key)
    }

    fn expect(act: Act, key: &str) -> Option<Echo> {
        STARTED.get()?;
        let mut echoes = echoes();
        if echoes.keys.len() >= 4096 {
            // Also where no tracking connection runs to forget them.
            echoes.keys.retain(|_, w| {
                w.in_flight > 0 || w.ended.is_some_and(|at| at.elapsed() < ECHO_FOR)
            });
        }
        let written = echoes.keys.entry(key.to_owned()).or_insert(Written {
            act: act.clone(),
            in_flight: 0,
            ended: None,
        });
        written.act = act;
        written.in_flight += 1;
        Some(Echo {
            key: key.to_owned(),
        })
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        if let Some(written) = echoes().keys.get_mut(&self.key) {
            written.in_flight = written.in_flight.saturating_sub(1);
            written.ended = Some(std::time::Instant::now());
        }
    }
}
