//! How long callers waiting for another process's load take to answer after its publish: the
//! measure of issue 10's notifications, shared by the single-server test and the failover
//! test (where the subscription's node is the one killed).
//!
//! "Another process" is played on a raw connection, as another service would: it holds the
//! keys' locks, then writes each value (the README's envelope) and publishes its key. Ten
//! waiters (threads, one key each) wait until their backoff is capped (polls every 100–200 ms);
//! a median publish-to-answer time under 20 ms then needs the notification.

use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The median publish-to-answer time of ten waiters calling `call(0..10)` of a `u32 -> u32`
/// cache whose Redis keys are `{key_head}{id}`, on a server or cluster whose channel is
/// `{prefix}cache-runtime:published`. Panics if a waiter answers anything but the published
/// value (`1000 + id`) or not within `patience`.
pub fn publish_to_answer(
    raw: &mut dyn redis::ConnectionLike,
    prefix: &str,
    key_head: &str,
    call: fn(u32) -> u32,
    patience: Duration,
) -> Duration {
    let key = |id: u32| format!("{key_head}{id}");
    for id in 0..10 {
        let () = redis::cmd("SET")
            .arg(format!("{{{}}}:lock", key(id)))
            .arg("another-process")
            .arg("PX")
            .arg(60_000)
            .query(raw)
            .expect("SET lock");
    }
    let (tx, rx) = mpsc::channel();
    let waiters: Vec<_> = (0..10)
        .map(|id| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let value = call(id);
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
            .arg(crate::envelope::build("u32", &value))
            .query(raw)
            .expect("SET value");
        let _: i64 = redis::cmd("PUBLISH")
            .arg(format!("{prefix}cache-runtime:published"))
            .arg(key(id))
            .query(raw)
            .expect("PUBLISH");
        published.push(Instant::now());
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut after = Vec::new();
    for _ in 0..10 {
        let (id, value, at) = rx.recv_timeout(patience).expect("every waiter answers");
        assert_eq!(value, 1000 + id, "the published value, not a load");
        after.push(at.saturating_duration_since(published[id as usize]));
    }
    for w in waiters {
        w.join().expect("no panic");
    }
    after.sort_unstable();
    eprintln!("publish to answer: all {after:?}");
    after[after.len() / 2]
}
