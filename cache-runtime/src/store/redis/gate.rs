//! The gate of the L1 in front of Redis (`backend = "tiered"`): until when an L1 copy may
//! answer, the earliest of the deadlines of the invalidation log's reader (`log.rs`) and of
//! every tracking connection (`tracking.rs`); and the drops they report, handed to the L1s
//! through the registry.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

use super::conn::Redis;
use crate::clock;
use crate::registry::{self, Change as Feed};

/// The feed Redis reports under (`Store::FEED` of the Redis store).
pub(crate) const FEED: &str = "redis";

/// Until when (cache clock, ms) the L1 may answer; 0 while the reader is not caught up, or a
/// tracking connection (`tracking.rs`) is down. A plain static: the L1 hit path reads it.
static VALID_UNTIL: AtomicU64 = AtomicU64::new(0);

/// Until when (cache clock, ms) the log reader is known caught up.
static LOG_UNTIL: AtomicU64 = AtomicU64::new(0);

/// Each tracker's deadline: until when (cache clock, ms) its connection is known tracking
/// and alive; 0 while it is not (`tracking.rs` owns them; set anew when the nodes change).
pub(crate) static TRACKERS: Mutex<Vec<Arc<AtomicU64>>> = Mutex::new(Vec::new());

/// The log reader is caught up until `until` (cache clock, ms): the gate may open.
pub(crate) fn log_until(until: u64) {
    LOG_UNTIL.store(until, Relaxed);
    refresh_gate();
}

/// The log reader lost its connection: the gate closes until it is back.
pub(crate) fn log_lost() {
    LOG_UNTIL.store(0, Relaxed);
    close();
}

/// Until when every tracker is known live: the earliest of their deadlines (0 before they
/// started, or while one is down).
fn live_until() -> u64 {
    let trackers = TRACKERS.lock().unwrap_or_else(PoisonError::into_inner);
    trackers.iter().map(|t| t.load(Relaxed)).min().unwrap_or(0)
}

/// Orders the writes of `VALID_UNTIL` (never taken on the hit path, which only reads it): a
/// gate computed from deadlines read before a `close` is never stored after it.
static GATE: Mutex<()> = Mutex::new(());

/// Opens the L1 until both the log reader and every tracking connection may have missed
/// nothing: the earlier of their deadlines. Called by each after it heard from Redis.
pub(crate) fn refresh_gate() {
    let _gate = GATE.lock().unwrap_or_else(PoisonError::into_inner);
    let until = LOG_UNTIL.load(Relaxed).min(live_until());
    VALID_UNTIL.store(until, Relaxed);
}

/// Closes the L1 until the next `refresh_gate` finds everything live (a tracking connection
/// failed; its deadline is 0 before this is called).
pub(crate) fn close() {
    let _gate = GATE.lock().unwrap_or_else(PoisonError::into_inner);
    VALID_UNTIL.store(0, Relaxed);
}

/// Drops every copy of every tiered cache (writes were made that nobody reported).
pub(crate) fn drop_everything() {
    registry::changed(FEED, None, Feed::All);
}

/// Drops the copy of the Redis key `key` in the tiered cache(s) named `name`.
pub(crate) fn drop_key(name: &str, key: &str) {
    registry::changed(FEED, Some(name), Feed::Key(key));
}

/// Keeps the copy of `key` in the tiered cache(s) named `name` only if it is the entry Redis
/// holds now (`stored`, read after the report), else drops it.
pub(crate) fn verify_key(name: &str, key: &str, stored: Option<&[u8]>) {
    match stored {
        Some(bytes) => {
            let version = crate::codec::version_of(bytes);
            registry::changed(FEED, Some(name), Feed::Written(key, version));
        }
        None => drop_key(name, key),
    }
}

/// Drops every copy of the tiered cache(s) named `name` (a `clear()` elsewhere).
pub(crate) fn drop_all(name: &str) {
    registry::changed(FEED, Some(name), Feed::All);
}

/// The names of the tiered caches of this process.
pub(crate) fn names() -> Vec<String> {
    registry::listening(FEED)
}

/// Whether the L1 may answer now: while the reader is caught up, or while Redis is
/// unavailable to this process (its circuit breaker open: no other process's invalidation can
/// have been acknowledged through a Redis this process cannot reach, unless the network is
/// split; the copies then live at most `l1_ttl`).
#[inline]
pub(crate) fn serves_local_at(coarse: u64) -> bool {
    // The common case in one compare: the reader's deadline is well ahead on the coarse
    // clock; anything else (near the deadline, past it, Redis down) is decided out of line.
    coarse.saturating_add(clock::SLACK_MS) < VALID_UNTIL.load(Relaxed) || serves_local_slow(coarse)
}

#[cold]
#[inline(never)]
fn serves_local_slow(coarse: u64) -> bool {
    clock::before_at(coarse, VALID_UNTIL.load(Relaxed)) || redis_down()
}

#[cold]
fn redis_down() -> bool {
    // No usable Redis settings count as down: the L1 answers, each copy for at most `l1_ttl`.
    Redis::get().map_or(true, |redis| redis.breaker.is_open())
}
