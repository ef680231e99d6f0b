//! Issue 10 (#5): a caller waiting for another process's load learns of the publish by
//! notification (`PUBLISH` on `{prefix}cache-runtime:published`), not at its next poll. Before,
//! waiters polled with a backoff capped at 200 ms (full jitter: a poll every 100–200 ms once
//! capped), so the median time from a publish to a capped waiter's answer was ~100 ms; with
//! the notification it is about a round trip.
//!
//! The measure is `tests::notified::publish_to_answer` (another process played on a raw
//! connection, ten waiters with capped backoff): the median publish-to-answer time must be
//! under 20 ms: 0.3 ms with notifications here; by polling alone (notifications disabled by hand)
//! it was 64 ms, and a median under 20 ms would need six of ten polls to land within 20 ms
//! of a publish (each about 1 in 8).
#![cfg(feature = "redis")]

mod common;

use std::time::Duration;

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
    let median = tests::notified::publish_to_answer(
        &mut raw,
        &prefix,
        &format!("{prefix}notified:"),
        notified,
        common::PATIENCE,
    );
    assert!(
        median < Duration::from_millis(20),
        "waiters found the value by polling, not by notification: median {median:?}"
    );
    let s = notified_cache().stats();
    assert_eq!((s.loads, s.waits), (0, 10), "{s:?}");
}
