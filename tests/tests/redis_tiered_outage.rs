//! Issue 12: a tiered cache through a Redis outage, with a `redis-server` of its own that the
//! test stops and starts again (without its data). While Redis is down the L1 answers what
//! it has (copies live at most `l1_ttl`) and misses load in process; when Redis is back the
//! reader finds the invalidation log gone, drops the whole L1, and reads on.
#![cfg(feature = "redis")]

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

use cache_runtime::cached;

static LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(
    ttl = 600,
    backend = "tiered",
    l1_ttl = "3s",
    key = "{id}",
    name = "outage"
)]
fn product(id: u32) -> u32 {
    LOADS.fetch_add(1, SeqCst);
    id * 2
}

fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < give_up, "never: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn issue_12_the_l1_serves_through_an_outage_for_at_most_l1_ttl_and_is_reconciled_after() {
    let Some(server) = tests::redis_server::own_server("the tiered outage test") else {
        return;
    };
    cache_runtime::Config::builder()
        .redis_url(server.url.as_str())
        .key_prefix(format!("outage{}:", std::process::id()))
        .op_timeout(Duration::from_millis(100))
        .init()
        .expect("settings");
    for id in 0..50 {
        assert_eq!(product(id), id * 2);
    }
    assert_eq!(LOADS.load(SeqCst), 50);
    // The log reader starts with the first tiered cache: the L1 answers once it is caught up.
    // A load's own write comes back through the tracking connection and drops the copy it
    // made (issue 22): each key is read until its copy (from Redis) answers.
    for id in 0..50 {
        eventually("the L1 answers", || {
            let before = product_cache().stats().l1_hits;
            product(id);
            product_cache().stats().l1_hits > before
        });
    }

    server.stop();
    // Redis is down: once the breaker opens, the L1 answers what it has, without loads.
    let started = Instant::now();
    for _ in 0..3 {
        for id in 0..50 {
            assert_eq!(product(id), id * 2);
        }
    }
    let loads = LOADS.load(SeqCst);
    assert!(
        loads <= 50 + 50,
        "the L1 did not answer through the outage: {loads} loads"
    );
    // ... and misses load in process.
    assert_eq!(product(1000), 2000);
    // After `l1_ttl` (3 s from when each copy was made) the copies are gone: loads again.
    std::thread::sleep(
        Duration::from_secs(3).saturating_sub(started.elapsed()) + Duration::from_millis(200),
    );
    let before = LOADS.load(SeqCst);
    assert_eq!(product(2), 4);
    assert!(LOADS.load(SeqCst) > before, "an L1 copy outlived l1_ttl");

    server.restart().expect("redis-server starts again");
    // Back: the restarted Redis has no log, so the reader drops every L1 before it answers.
    let received = product_cache().stats().invalidations_received;
    eventually("the reader reconciled the L1", || {
        product(3);
        product_cache().stats().invalidations_received > received
    });
    for id in 0..50 {
        assert_eq!(product(id), id * 2);
    }
}
