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
    clock::advance(Duration::from_secs(60)); // the ttl: jitter only shortens a life
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
    clock::advance(Duration::from_millis(49_000));
    assert_eq!(misses(0), 0, "an entry expired before ttl × (1 − jitter)");
    clock::advance(Duration::from_millis(26_000)); // 75 s: half-way through [50 s, 100 s]
    let expired = misses(0);
    assert!(
        (300..700).contains(&expired),
        "{expired} of 1000 expired at 75 s"
    );
    // Issue 22: jitter spreads expiries within the ttl, never past it. At 100 s every entry
    // written at 0 s has expired; the ones reloaded at 75 s live until 125 s at least.
    clock::advance(Duration::from_millis(25_000));
    assert_eq!(misses(0), 1000 - expired, "an entry outlived its ttl");
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

// Issue 22: every bound a user relies on holds at its edge, whatever the jitter draws. Jitter
// (default 0.1 here, or the largest, 1.0) spreads expiries within a bound, never past it: at
// the bound itself no entry written at the start is served any more. Each function has 200
// keys, so a stretch of any one of them fails the test.

static BOUND_NULL_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = "1h", null_ttl = "20s", max_entries = 1000)]
fn bound_null(key: u32) -> Option<u32> {
    BOUND_NULL_LOADS.fetch_add(1, SeqCst);
    let _ = key;
    None
}

#[test]
fn issue_22_no_null_outlives_null_ttl() {
    let _serial = serial();
    for k in 0..200 {
        assert_eq!(bound_null(k), None);
    }
    clock::advance(Duration::from_millis(17_000)); // before 20 s × (1 − 0.1): all kept
    for k in 0..200 {
        assert_eq!(bound_null(k), None);
    }
    assert_eq!(
        BOUND_NULL_LOADS.load(SeqCst),
        200,
        "a null expired before 0.9 × null_ttl"
    );
    clock::advance(Duration::from_millis(3_000)); // 20 s: the bound
    for k in 0..200 {
        assert_eq!(bound_null(k), None);
    }
    assert_eq!(
        BOUND_NULL_LOADS.load(SeqCst),
        400,
        "a null was served past its null_ttl"
    );
}

static BOUND_STALE_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 10, stale = 5, jitter = 1.0, max_entries = 1000)]
fn bound_stale(key: u32) -> u32 {
    let _ = key;
    BOUND_STALE_LOADS.fetch_add(1, SeqCst)
}

#[test]
fn issue_22_no_stale_answer_past_ttl_plus_stale() {
    let _serial = serial();
    for k in 0..200 {
        bound_stale(k);
    }
    let first = bound_stale_cache().stats();
    clock::advance(Duration::from_secs(15)); // ttl + stale: the bound
    for k in 0..200 {
        bound_stale(k);
    }
    let s = bound_stale_cache().stats();
    assert_eq!(
        s.stale_hits - first.stale_hits,
        0,
        "an entry was served stale past ttl + stale"
    );
    assert_eq!(s.misses - first.misses, 200);
}

static BOUND_SIE_FAIL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[cached(ttl = 10, stale_if_error = 5, jitter = 1.0, max_entries = 1000)]
fn bound_fail_safe(key: u32) -> Result<u32, String> {
    if BOUND_SIE_FAIL.load(SeqCst) {
        return Err("down".into());
    }
    Ok(key)
}

#[test]
fn issue_22_no_fail_safe_answer_past_ttl_plus_stale_if_error() {
    let _serial = serial();
    for k in 0..200 {
        assert_eq!(bound_fail_safe(k), Ok(k));
    }
    BOUND_SIE_FAIL.store(true, SeqCst);
    clock::advance(Duration::from_secs(15)); // ttl + stale_if_error: the bound
    for k in 0..200 {
        assert_eq!(
            bound_fail_safe(k),
            Err("down".into()),
            "a kept value answered past ttl + stale_if_error"
        );
    }
    assert_eq!(bound_fail_safe_cache().stats().stale_if_error_hits, 0);
}

// ---------------------------------------------------------------- ttl_fn (issue 24)

#[derive(Clone, Debug, PartialEq)]
struct Token {
    user: u32,
    expires_in_s: u64,
}

static TOKEN_LOADS: AtomicU32 = AtomicU32::new(0);

/// The lifetime of a token: what the issuer said.
fn token_life(token: &Token) -> Duration {
    Duration::from_secs(token.expires_in_s)
}

/// `ttl_fn` receives the value inside `Ok`; the error is never passed to it (nor cached).
#[cached(ttl = "1h", jitter = 0, ttl_fn = token_life)]
fn token(user: u32) -> Result<Token, String> {
    TOKEN_LOADS.fetch_add(1, SeqCst);
    match user {
        0 => Err("issuer down".into()),
        _ => Ok(Token {
            user,
            expires_in_s: u64::from(user),
        }),
    }
}

#[test]
fn ttl_fn_gives_each_entry_the_lifetime_its_value_says() {
    let _serial = serial();
    let loads = || TOKEN_LOADS.load(SeqCst);
    token(10).unwrap();
    token(100).unwrap();
    assert!(token(0).is_err());
    assert_eq!(loads(), 3);
    clock::advance(Duration::from_millis(9_900));
    token(10).unwrap();
    token(100).unwrap();
    assert_eq!(loads(), 3, "a token expired before its own lifetime");
    clock::advance(Duration::from_millis(200));
    token(10).unwrap();
    assert_eq!(loads(), 4, "the 10 s token outlived its lifetime");
    token(100).unwrap();
    assert_eq!(loads(), 4, "the 100 s token took another's lifetime");
    assert_eq!(token_entry(100).lifetime(), Duration::from_secs(100));
    clock::advance(Duration::from_secs(100));
    token(100).unwrap();
    assert_eq!(loads(), 5);
}

static ZERO_LOADS: AtomicU32 = AtomicU32::new(0);

fn never(_: &u32) -> Duration {
    Duration::ZERO
}

/// `Duration::ZERO` means do not store: every call loads.
#[cached(ttl = "1h", ttl_fn = never)]
fn uncacheable(key: u32) -> u32 {
    ZERO_LOADS.fetch_add(1, SeqCst);
    key
}

#[test]
fn a_zero_lifetime_is_not_stored() {
    let _serial = serial();
    assert_eq!(uncacheable(1), 1);
    assert_eq!(uncacheable(1), 1);
    assert_eq!(ZERO_LOADS.load(SeqCst), 2);
    assert_eq!(uncacheable_cache().len(), 0);
}
