//! One process of the multi-process stampede test (`tests/redis_stampede.rs`).
//!
//! Usage: `stampede-worker <redis url> <key prefix> <tasks>`. Counts itself in
//! `<prefix>ready`, waits until the key `<prefix>go` exists, then calls one cached async function on one cold key from `<tasks>`
//! tasks at once, and prints `loads=<n> waits=<n> values=<v>,<v>,...`.

use std::time::Duration;

use cache_runtime::cached;

/// A slow load (300 ms), so that every process races with it.
#[cached(ttl = 60, key = "{id}", name = "stampede")]
async fn slow_value(id: u32) -> u64 {
    tokio::time::sleep(Duration::from_millis(300)).await;
    u64::from(id) * 10
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, prefix, tasks] = args.as_slice() else {
        panic!("usage: stampede-worker <redis url> <key prefix> <tasks>");
    };
    let tasks: usize = tasks.parse().expect("a number of tasks");
    // The server (or the cluster's nodes) from `CACHE_REDIS_URL`, as a deployment sets it;
    // `url` is for the test's own raw connection.
    cache_runtime::Config::builder()
        .key_prefix(prefix.as_str())
        .init()
        .expect("settings");
    let mut raw = tests::redis_server::raw(url);
    let go = format!("{prefix}go");
    let _: i64 = redis::cmd("INCR")
        .arg(format!("{prefix}ready"))
        .query(&mut raw)
        .expect("INCR");
    let give_up = std::time::Instant::now() + Duration::from_secs(30);
    while !redis::cmd("EXISTS")
        .arg(&go)
        .query::<bool>(&mut raw)
        .expect("EXISTS")
    {
        assert!(std::time::Instant::now() < give_up, "never told to go");
        std::thread::sleep(Duration::from_millis(2));
    }
    let handles: Vec<_> = (0..tasks).map(|_| tokio::spawn(slow_value(7))).collect();
    let mut values = Vec::new();
    for h in handles {
        values.push(h.await.expect("task").to_string());
    }
    let stats = slow_value_cache().stats();
    println!(
        "loads={} waits={} values={}",
        stats.loads,
        stats.waits,
        values.join(",")
    );
}
