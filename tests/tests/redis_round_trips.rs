//! Round trips per call, read from the server's own command counters (`INFO commandstats`):
//! a hit is one `GET`; a miss is one `GET`, one lock script (the read folded with the lock)
//! and one fenced publish. No `PING` per call. Alone in its binary, so no other test's commands
//! are counted.
#![cfg(feature = "redis")]

use std::collections::BTreeMap;

use cache_runtime::cached;

#[cached(ttl = 60, key = "{id}", name = "trips")]
fn trips(id: u32) -> u32 {
    id
}

#[cached(ttl = 60, key = "{id}", name = "tagged_trips", tags = ["trips:all", "trips:{id}"])]
fn tagged_trips(id: u32) -> u32 {
    id
}

use tests::redis_server::{command_delta as delta, commands};

#[test]
fn a_hit_is_one_get_and_a_miss_three_round_trips() {
    let prefix = format!("trips{}:", std::process::id());
    if tests::redis_server::cluster_mode() {
        // The counters are one server's: `redis_cluster.rs` covers the cluster's operations.
        return;
    }
    let Some(url) = tests::redis_server::setup(&prefix) else {
        return;
    };
    let mut con = tests::redis_server::raw(url);
    assert_eq!(trips(0), 0); // connects, loads scripts

    let before = commands(&mut con);
    assert_eq!(trips(1), 1);
    let miss = delta(&before, &commands(&mut con));
    let before = commands(&mut con);
    assert_eq!(trips(1), 1);
    let hit = delta(&before, &commands(&mut con));
    eprintln!("miss: {miss:?}\nhit: {hit:?}");

    let expected = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    };
    assert_eq!(hit, expected(&[("get", 1)]), "a hit is one GET");
    // commandstats also counts the commands scripts run: a miss is 3 round trips (GET,
    // EVALSHA lock, EVALSHA publish); inside the scripts, the lock script's GET of the value
    // and SET NX of the lock, the publish's GET of the lock, SET of the value, DEL of the lock
    // and PUBLISH of the notification to waiters (no round trip of its own).
    assert_eq!(
        miss,
        expected(&[
            ("del", 1),
            ("evalsha", 2),
            ("get", 3),
            ("publish", 1),
            ("set", 2)
        ])
    );

    // Issue 13: a tagged hit is one round trip too (a pipeline: `GET` of the value, `MGET` of
    // its two tag keys), and a tag invalidation is one (one script: the tag key's new version
    // and the log entry for the L1s).
    assert_eq!(tagged_trips(1), 1); // loads, and makes the tag keys
    assert!(cache_runtime::invalidate_tag("trips:unused").is_done()); // loads its script
    let before = commands(&mut con);
    assert_eq!(tagged_trips(1), 1);
    let tagged_hit = delta(&before, &commands(&mut con));
    let before = commands(&mut con);
    assert!(cache_runtime::invalidate_tag("trips:all").is_done());
    let invalidation = delta(&before, &commands(&mut con));
    eprintln!("tagged hit: {tagged_hit:?}\ntag invalidation: {invalidation:?}");
    assert_eq!(tagged_hit, expected(&[("get", 1), ("mget", 1)]));
    assert_eq!(
        invalidation,
        expected(&[
            ("evalsha", 1),
            ("pexpire", 1),
            ("pttl", 1),
            ("set", 1),
            ("xadd", 1)
        ])
    );
    let before = commands(&mut con);
    assert_eq!(tagged_trips(1), 1);
    let miss = delta(&before, &commands(&mut con));
    assert_eq!(
        miss["evalsha"], 2,
        "after it, a miss (read, lease, publish): {miss:?}"
    );
    assert_eq!(miss["mget"], 3, "each reads the tag keys: {miss:?}");
}
