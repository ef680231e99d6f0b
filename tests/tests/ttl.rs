//! Expiry: `ttl`, `null_ttl` and `jitter`, on the cache clock moved by `clock::advance`.
//!
//! The clock is process-wide, so these tests run one at a time (`SERIAL`) in a test binary
//! of their own: nothing else in this process has entries that could age under it.

// The in-process backend: with the `redis` feature, Redis is the default backend of the
// whole build, so these run in the build without it (`cargo test --workspace`).
#![cfg(not(feature = "redis"))]

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::Duration;

use cache_runtime::{cached, clock};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

static TTL_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 10, jitter = 0)]
fn ten_seconds(key: u32) -> u32 {
    TTL_LOADS.fetch_add(1, SeqCst);
    key
}

#[test]
fn an_entry_expires_after_its_ttl() {
    let _serial = serial();
    assert_eq!(ten_seconds(1), 1);
    clock::advance(Duration::from_millis(9_900));
    assert_eq!(ten_seconds(1), 1);
    assert_eq!(TTL_LOADS.load(SeqCst), 1, "expired before its ttl");
    clock::advance(Duration::from_millis(200));
    assert_eq!(ten_seconds(1), 1);
    assert_eq!(TTL_LOADS.load(SeqCst), 2, "served after its ttl");
    let s = ten_seconds_cache().stats();
    assert_eq!((s.hits, s.misses), (1, 2));
}

static NULL_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = "1h", null_ttl = "30s", jitter = 0)]
fn maybe(key: u32) -> Option<u32> {
    NULL_LOADS.fetch_add(1, SeqCst);
    (key > 0).then_some(key)
}

#[test]
fn nulls_live_for_null_ttl_and_values_for_ttl() {
    let _serial = serial();
    assert_eq!(maybe(0), None);
    assert_eq!(maybe(1), Some(1));
    clock::advance(Duration::from_secs(29));
    assert_eq!((maybe(0), maybe(1)), (None, Some(1)));
    assert_eq!(NULL_LOADS.load(SeqCst), 2);
    clock::advance(Duration::from_secs(2));
    assert_eq!((maybe(0), maybe(1)), (None, Some(1)));
    assert_eq!(
        NULL_LOADS.load(SeqCst),
        3,
        "the null outlived null_ttl, or the value expired"
    );
}

#[cached(ttl = 60)]
fn default_null_ttl(key: u32) -> Option<u32> {
    (key > 0).then_some(key)
}

#[test]
fn the_default_null_ttl_is_at_most_the_ttl() {
    let _serial = serial();
    assert_eq!(default_null_ttl(0), None);
    clock::advance(Duration::from_secs(67)); // past 60 s × (1 + 0.1 jitter)
    assert_eq!(default_null_ttl(0), None);
    assert_eq!(default_null_ttl_cache().stats().misses, 2);
}

#[cached(ttl = 100, jitter = 0.5, max_entries = 2000)]
fn jittered(key: u32) -> u32 {
    key
}

#[test]
fn jitter_spreads_expiry_over_the_window() {
    let _serial = serial();
    for k in 0..1000 {
        jittered(k);
    }
    let misses = |from: u32| {
        (0..1000)
            .filter(|&k| {
                let before = jittered_cache().stats().misses;
                jittered(k + from);
                jittered_cache().stats().misses > before
            })
            .count()
    };
    clock::advance(Duration::from_millis(99_000));
    assert_eq!(misses(0), 0, "an entry expired before its ttl");
    clock::advance(Duration::from_millis(26_000)); // 125 s: half-way through [100 s, 150 s]
    let expired = misses(0);
    assert!(
        (300..700).contains(&expired),
        "{expired} of 1000 expired at 125 s"
    );
    clock::advance(Duration::from_secs(200)); // the reloaded entries have their own deadlines
    assert_eq!(misses(0), 1000, "an entry outlived ttl × (1 + jitter)");
}

static FOREVER_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached]
fn forever(key: u32) -> u32 {
    FOREVER_LOADS.fetch_add(1, SeqCst);
    key
}

#[test]
fn without_ttl_entries_do_not_expire() {
    let _serial = serial();
    assert_eq!(forever(1), 1);
    clock::advance(Duration::from_secs(365 * 86_400));
    assert_eq!(forever(1), 1);
    assert_eq!(FOREVER_LOADS.load(SeqCst), 1);
}
