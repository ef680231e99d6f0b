//! Issue 24: round trips of a batch of 1,000 keys on a `Cache`, from the server's own command
//! counters (`INFO commandstats`). Alone in its binary, so no other test's commands are
//! counted.
#![cfg(feature = "redis")]

use std::time::Duration;

use cache_runtime::{Backend, Cache};
use tests::redis_server::{command_delta, commands};

/// Issue 24: a batch of 1,000 keys, 30% missing, on a `Cache`: one `MGET` reads them all, the
/// loader runs once with the 300, and each of the 300 takes its lease and publishes (one
/// script each, pipelined on the connection); no `GET` per key.
#[test]
fn a_batch_is_one_mget_one_load_and_a_lease_and_publish_per_missing_key() {
    let prefix = format!("btrips{}:", std::process::id());
    if tests::redis_server::cluster_mode() {
        return;
    }
    let Some(url) = tests::redis_server::setup(&prefix) else {
        return;
    };
    let mut con = tests::redis_server::raw(url);
    let users: Cache<u32, u32> = Cache::builder("batch_trips")
        .ttl(Duration::from_secs(60))
        .backend(Backend::Redis)
        .build()
        .unwrap();
    for id in 0..1000 {
        if id % 10 >= 3 {
            users.insert(id, id);
        }
    }
    users.get_or_load(5000, || 5000); // loads the lease and publish scripts
    let before = commands(&mut con);
    let mut calls = Vec::new();
    let found = users.get_many_or_load(0..1000, |missing| {
        calls.push(missing.len());
        missing.iter().map(|&id| (id, id)).collect()
    });
    let batch = command_delta(&before, &commands(&mut con));
    eprintln!("batch: {batch:?}");
    assert_eq!(found.len(), 1000);
    assert_eq!(calls, vec![300], "one load, with the 300 missing keys");
    assert_eq!(batch.get("mget"), Some(&1), "one MGET reads every key");
    // Inside the scripts: the lock script's GET of the value, the publish's GET of the lock.
    assert_eq!(
        batch.get("get"),
        Some(&600),
        "no GET per key besides the scripts'"
    );
    assert_eq!(
        batch.get("evalsha"),
        Some(&600),
        "a lease and a publish per missing key"
    );
}
