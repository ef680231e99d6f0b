//! Changes made in Redis by anyone reach every tiered L1 (issue 22): Redis's server-assisted
//! client-side caching in broadcast mode (`CLIENT TRACKING ON BCAST`, Redis 6 and later).
//!
//! The invalidation log (`tiered.rs`) carries what this library changes, resumably; a service
//! in another language, `redis-cli`, an eviction or a `FLUSHDB` writes nothing to it. So each
//! process also keeps, per Redis server (per primary on a cluster), one connection that asks
//! the server to report every write to the keys of its tiered caches and to the tag keys:
//! `CLIENT ID`, then `CLIENT TRACKING ON REDIRECT <its own id> BCAST PREFIX <head> …` (one
//! prefix per tiered cache, `{prefix}{name}:`, and `{prefix}cache-runtime:tag:`, none covering
//! another), then `SUBSCRIBE __redis__:invalidate`. Each message names the keys written
//! (`SET`, `DEL`, `EXPIRE`, a script, an eviction, an expiry) or is nil (`FLUSHDB`,
//! `FLUSHALL`): the L1 copy of each key is dropped, a tag key moves its tag's version on in
//! this process, nil drops every copy. No Redis read on receipt.
//!
//! **When the L1 may answer.** Only while every tracking connection is subscribed and alive:
//! a read that waits `READ_MS` for a message is followed by a `PING`, and each answer keeps
//! the L1 open until `VALID_MS` after it (`live_until`; the log reader combines it with its
//! own deadline). A connection that fails closes the L1 at once; when it is back (subscribed
//! again) every copy is dropped first, since writes made meanwhile were not reported. A new
//! tiered cache changes the prefixes: the connections subscribe again the same way.
//!
//! What it costs: one message per write to a tracked key, to every process with a tiered
//! cache; a process's own loads are reported back to it too (the copy it just kept is dropped,
//! and its next call reads Redis once). Expiries are reported late (when Redis finds the key
//! expired), which does not matter: a copy never outlives its entry's own deadline. `SWAPDB`
//! is not reported (by Redis 7.0): do not swap a database under tiered caches.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use redis::Value;

use super::conn::Redis;
use super::tiered;
use crate::clock;
use crate::config;

/// How long one read of the subscription waits for a message before a `PING`.
const READ_MS: u64 = 100;
/// How long after the last answer the L1 may answer: a live connection answers within
/// `READ_MS` plus a round trip.
const VALID_MS: u64 = READ_MS + 100;
/// The channel Redis sends tracking messages to (RESP2, redirected to a subscriber).
const CHANNEL: &str = "__redis__:invalidate";

/// The tracked prefixes, and a count of their changes (a tracker subscribes again when it
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

/// Each tracker's deadline: until when (cache clock, ms) its connection is known subscribed
/// and alive; 0 while it is not.
static TRACKERS: Mutex<Vec<Arc<AtomicU64>>> = Mutex::new(Vec::new());
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
        }
    }
    STARTED.get_or_init(|| start(redis));
}

/// Until when every tracker is known live: the earliest of their deadlines (0 before they
/// started, or while one is down).
pub(crate) fn live_until() -> u64 {
    let trackers = TRACKERS.lock().unwrap_or_else(PoisonError::into_inner);
    trackers.iter().map(|t| t.load(Relaxed)).min().unwrap_or(0)
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
/// cluster, found again whenever a tracker fails: a failover moves primaries).
fn start(redis: &'static Redis) {
    let started = std::thread::Builder::new()
        .name("cache-runtime-tracking".into())
        .spawn(move || supervise(redis));
    if let Err(e) = started {
        tracing::warn!(error = %e, "cache-runtime: the tracking thread did not start");
    }
}

fn supervise(redis: &'static Redis) {
    let (failed_tx, failed_rx) = std::sync::mpsc::channel::<()>();
    let mut current: Vec<(String, u16)> = Vec::new();
    loop {
        match nodes(redis) {
            Some(found) if found != current => {
                let epoch = EPOCH.fetch_add(1, Relaxed) + 1;
                let mut trackers = TRACKERS.lock().unwrap_or_else(PoisonError::into_inner);
                trackers.clear();
                for (addr, client) in found.iter().cloned().zip(clients(redis, &found)) {
                    let deadline = Arc::new(AtomicU64::new(0));
                    trackers.push(Arc::clone(&deadline));
                    let failed = failed_tx.clone();
                    let spawned = std::thread::Builder::new()
                        .name("cache-runtime-tracking".into())
                        .spawn(move || follow(redis, &client, &deadline, epoch, &failed));
                    if let Err(e) = spawned {
                        tracing::warn!(node = %addr.0, error = %e, "cache-runtime: a tracking thread did not start");
                    }
                }
                current = found;
            }
            _ => {}
        }
        // Look again when a tracker fails (a cluster may have moved its primaries), and now
        // and then.
        let _ = failed_rx.recv_timeout(Duration::from_secs(5));
    }
}

/// The servers to track: the single server, or the primaries of the cluster (`None` when they
/// cannot be found now).
fn nodes(redis: &'static Redis) -> Option<Vec<(String, u16)>> {
    if !redis.is_cluster() {
        return Some(vec![(String::new(), 0)]);
    }
    let mut found = redis.block(super::lease::primaries(redis)).ok()?;
    found.sort();
    (!found.is_empty()).then_some(found)
}

/// A client per node: the settings' own for a single server; for a cluster's primaries, the
/// first seed's settings (user, password, TLS) with the primary's address.
fn clients(redis: &'static Redis, nodes: &[(String, u16)]) -> Vec<redis::Client> {
    if !redis.is_cluster() {
        return redis.clients.first().cloned().into_iter().collect();
    }
    let Some(base) = redis
        .clients
        .first()
        .map(|c| c.get_connection_info().clone())
    else {
        return Vec::new();
    };
    nodes
        .iter()
        .filter_map(|(host, port)| {
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

/// While its set of nodes is current: subscribe, drop every copy, follow; after an error or a
/// change of prefixes, close the L1 and do it again.
fn follow(
    redis: &'static Redis,
    client: &redis::Client,
    deadline: &AtomicU64,
    epoch: u64,
    failed: &std::sync::mpsc::Sender<()>,
) {
    while EPOCH.load(Relaxed) == epoch {
        if let Err(e) = subscribed(redis, client, deadline, epoch) {
            if WARNED.set(()).is_ok() {
                tracing::warn!(
                    error = %e,
                    "cache-runtime: the tracking connection of tiered caches failed; their \
                     L1 does not answer until it works (it needs CLIENT TRACKING and the \
                     channel __redis__:invalidate; further failures are logged at debug)"
                );
            } else {
                tracing::debug!(error = %e, "cache-runtime: the tracking connection failed");
            }
            let _ = failed.send(());
        }
        deadline.store(0, Relaxed);
        tiered::close();
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One subscription: until it fails, or the prefixes change (`Ok`).
fn subscribed(
    redis: &'static Redis,
    client: &redis::Client,
    deadline: &AtomicU64,
    epoch: u64,
) -> redis::RedisResult<()> {
    let config = redis.config;
    let mut con = client.get_connection_with_timeout(config.connect_timeout)?;
    con.set_read_timeout(Some(Duration::from_millis(READ_MS + 200)))?;
    let _: Value = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("cache-runtime-tracking")
        .query(&mut con)?;
    let id: i64 = redis::cmd("CLIENT").arg("ID").query(&mut con)?;
    let (generation, prefixes) = wanted();
    let mut tracking = redis::cmd("CLIENT");
    tracking
        .arg("TRACKING")
        .arg("ON")
        .arg("REDIRECT")
        .arg(id)
        .arg("BCAST");
    for p in &prefixes {
        tracking.arg("PREFIX").arg(p);
    }
    let _: Value = tracking.query(&mut con)?;
    let mut pubsub = con.as_pubsub();
    pubsub.subscribe(CHANNEL)?;
    pubsub.set_read_timeout(Some(Duration::from_millis(READ_MS)))?;
    // Writes made while no subscription listened were not reported.
    tiered::drop_everything();
    let tag_head = tag_head();
    let heads = tiered_heads();
    deadline.store(clock::now_ms().saturating_add(VALID_MS), Relaxed);
    loop {
        match pubsub.get_message() {
            Ok(message) => {
                if message.get_channel_name() == CHANNEL {
                    apply(&message, &tag_head, &heads);
                }
            }
            Err(e) if e.is_timeout() => {
                let _: Value = pubsub.ping()?;
            }
            Err(e) => return Err(e),
        }
        let moved = PREFIXES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .generation;
        if moved != generation || EPOCH.load(Relaxed) != epoch {
            return Ok(());
        }
        deadline.store(clock::now_ms().saturating_add(VALID_MS), Relaxed);
        tiered::refresh_gate();
    }
}

/// The tiered caches' heads, by cache name.
fn tiered_heads() -> HashMap<String, String> {
    tiered::names().into_iter().map(|n| (head(&n), n)).collect()
}

/// One tracking message: the copies of the keys it names dropped (nil: every copy).
fn apply(message: &redis::Msg, tag_head: &str, heads: &HashMap<String, String>) {
    let keys = match message.get_payload::<Option<Vec<Vec<u8>>>>() {
        Ok(Some(keys)) => keys,
        Ok(None) => {
            tiered::drop_everything();
            return;
        }
        Err(_) => {
            // Not a message this reader understands: drop everything rather than miss one.
            tiered::drop_everything();
            return;
        }
    };
    for key in keys {
        let Ok(key) = std::str::from_utf8(&key) else {
            continue;
        };
        if let Some(tag) = key.strip_prefix(tag_head) {
            crate::tags::invalidate_local(tag);
            continue;
        }
        for (head, name) in heads {
            if key.starts_with(head.as_str()) {
                tiered::drop_key(name, key);
            }
        }
    }
}
