//! Issue 10 (#5): a caller waiting for another process's load learns of the publish by
//! notification (`PUBLISH` on `{prefix}cache-runtime:published`), not at its next poll. Before,
//! waiters polled with a backoff capped at 200 ms (full jitter: a poll every 100–200 ms once
//! capped), so the median time from a publish to a capped waiter's answer was ~100 ms; with
//! the notification it is about a round trip.
//!
//! "Another process" is played by this test on a raw connection, as another service would: it
//! holds the key's lock, then writes the value (the README's envelope) and publishes its key.
//! Ten waiters (threads, one key each) wait until their backoff is capped; the keys are then
//! published one by one, and the median of the ten publish-to-answer times must be under
//! 20 ms: 0.3 ms with notifications here; by polling alone (notifications disabled by hand)
//! it was 64 ms, and a median under 20 ms would need six of ten polls to land within 20 ms
//! of a publish (each about 1 in 8).
#![cfg(feature = "redis")]

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use cache_runtime::cached;

#[cached(ttl = 60, key = "{id}", name = "notified", lock_timeout = "60s")]
fn notified(id: u32) -> u32 {
    id // never runs: another process holds every lock
}

#[test]
fn issue_10_waiters_are_woken_by_the_publish() {
    if !common::backend_ready() {
        return;
    }
    let mut raw = tests::redis_server::raw(tests::redis_server::url().expect("a server"));
    let prefix = format!("t{}:", std::process::id());
    let key = |id: u32| format!("{prefix}notified:{id}");
    for id in 0..10 {
        let () = redis::cmd("SET")
            .arg(format!("{{{}}}:lock", key(id)))
            .arg("another-process")
            .arg("PX")
            .arg(60_000)
            .query(&mut raw)
            .expect("SET lock");
    }
    let (tx, rx) = mpsc::channel();
    let waiters: Vec<_> = (0..10)
        .map(|id| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let value = notified(id);
                tx.send((id, value, Instant::now()))
                    .expect("the test waits");
            })
        })
        .collect();
    // Long enough for every waiter's backoff to reach its cap (10 → 200 ms doubling).
    std::thread::sleep(Duration::from_millis(1_500));
    let mut published = Vec::new();
    for id in 0..10u32 {
        let value = 1000 + id;
        let () = redis::cmd("SET")
            .arg(key(id))
            .arg(tests::envelope::build("u32", &value))
            .query(&mut raw)
            .expect("SET value");
        let _: i64 = redis::cmd("PUBLISH")
            .arg(format!("{prefix}cache-runtime:published"))
            .arg(key(id))
            .query(&mut raw)
            .expect("PUBLISH");
        published.push(Instant::now());
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut after = Vec::new();
    for _ in 0..10 {
        let (id, value, at) = rx
            .recv_timeout(common::PATIENCE)
            .expect("every waiter answers");
        assert_eq!(value, 1000 + id, "the published value, not a load");
        after.push(at.saturating_duration_since(published[id as usize]));
    }
    for w in waiters {
        w.join().expect("no panic");
    }
    after.sort_unstable();
    let median = after[after.len() / 2];
    eprintln!("publish to answer: median {median:?}, all {after:?}");
    assert!(
        median < Duration::from_millis(20),
        "waiters found the value by polling, not by notification: {after:?}"
    );
    let s = notified_cache().stats();
    assert_eq!((s.loads, s.waits), (0, 10), "{s:?}");
}
