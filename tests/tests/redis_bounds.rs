//! Issue 22, part 2: the outage bound holds at its edge, whatever the jitter draws. Redis is
//! never reachable here, so every call goes through the in-process fallback. Before the fix
//! the fallback's policy took the function's jitter, which stretched a copy's life: with
//! `fallback_ttl = "2s"` copies were served up to 2.2 s. (An L1 copy's `l1_ttl` is not
//! jittered: `redis_tiered_outage.rs` checks it.) One test (the cache clock is process-wide),
//! in a binary of its own (the settings are too).
#![cfg(feature = "redis")]

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::Duration;

use cache_runtime::{cached, clock};

static PLAIN_LOADS: AtomicU32 = AtomicU32::new(0);
/// Lives a minute in Redis; at most `fallback_ttl` (2 s) in the fallback, with the default
/// jitter (0.1) and a `stale` window (which the fallback does not keep: issue 22).
#[cached(
    ttl = 60,
    stale = 30,
    key = "{k}",
    name = "bounds_plain",
    max_entries = 1000
)]
fn plain(k: u32) -> u32 {
    PLAIN_LOADS.fetch_add(1, SeqCst);
    k
}

#[test]
fn issue_22_no_outage_copy_outlives_fallback_ttl() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a port")
        .local_addr()
        .expect("its address")
        .port();
    cache_runtime::Config::builder()
        .redis_url(format!("redis://127.0.0.1:{port}"))
        .op_timeout(Duration::from_millis(50))
        .fallback_ttl(Duration::from_secs(2))
        .init()
        .expect("settings");
    for k in 0..200 {
        assert_eq!(plain(k), k);
    }
    assert_eq!(PLAIN_LOADS.load(SeqCst), 200);
    // Well before 0.9 × fallback_ttl every copy answers (jitter shortens a life by up to 10%;
    // the real time the calls take moves the cache clock too).
    clock::advance(Duration::from_millis(1_500));
    for k in 0..200 {
        assert_eq!(plain(k), k);
    }
    assert_eq!(
        PLAIN_LOADS.load(SeqCst),
        200,
        "a copy ended before 0.9 × fallback_ttl"
    );
    // At the bound every copy is gone.
    clock::advance(Duration::from_millis(500));
    for k in 0..200 {
        assert_eq!(plain(k), k);
    }
    assert_eq!(
        plain_cache().stats().stale_hits,
        0,
        "a fallback copy was served stale past fallback_ttl"
    );
    assert_eq!(
        PLAIN_LOADS.load(SeqCst),
        400,
        "a fallback copy was served past fallback_ttl"
    );
}
