//! One process of the cross-process freshness tests (`tests/redis_freshness.rs`).
//!
//! Usage: `freshness-worker <redis url> <key prefix> <stale|error|panic|hang|early> <tasks>`. Counts itself in
//! `<prefix>ready`, waits until the key `<prefix>go` exists, then calls one cached async
//! function on one key (which the test wrote as an expired entry holding 70) from `<tasks>`
//! tasks at once, and prints what they got and the cache's counts:
//! `values=<v>,.. slow=<calls that took 250 ms or more> loads=<n> refreshes=<n>
//! stale_hits=<n> stale_if_error_hits=<n>` (the hits as counted when the tasks ended). In
//! `stale` and `hang` modes it first waits (up to 20 s) for the new value, 99. In `early` mode
//! each task reads for 600 ms, and `values` lists the distinct values seen.

use std::time::{Duration, Instant};

use cache_runtime::cached;

/// Revalidated in the background: a slow load (500 ms) of 99.
#[cached(ttl = 60, stale = 60, key = "{id}", name = "fresh_stale")]
async fn stale_value(id: u32) -> u64 {
    tokio::time::sleep(Duration::from_millis(500)).await;
    u64::from(id) + 92
}

/// Its database is down: every load fails after 100 ms.
#[cached(ttl = 60, stale_if_error = 600, key = "{id}", name = "fresh_error")]
async fn failing_value(id: u32) -> Result<u64, String> {
    tokio::time::sleep(Duration::from_millis(100)).await;
    Err(format!("database down for {id}"))
}

/// Its loader panics.
#[cached(ttl = 60, stale_if_error = 600, key = "{id}", name = "fresh_panic")]
async fn panicking_value(id: u32) -> u64 {
    tokio::time::sleep(Duration::from_millis(100)).await;
    panic!("the loader of {id} panicked");
}

/// Its loader hangs for 2 s, past `load_timeout`; then it stores 99.
#[cached(
    ttl = 60,
    stale_if_error = 600,
    load_timeout = "100ms",
    key = "{id}",
    name = "fresh_hang"
)]
async fn hanging_value(id: u32) -> u64 {
    tokio::time::sleep(Duration::from_secs(2)).await;
    u64::from(id) + 92
}

/// XFetch with a large β: the entry the test wrote (δ = 7 ms, expiring soon) is refreshed
/// before it expires; the refresh (100 ms) stores 99.
#[cached(ttl = 60, early_refresh = 10.0, key = "{id}", name = "fresh_early")]
async fn early_value(id: u32) -> u64 {
    tokio::time::sleep(Duration::from_millis(100)).await;
    u64::from(id) + 92
}

async fn call(mode: &str) -> u64 {
    match mode {
        "stale" => stale_value(7).await,
        "panic" => panicking_value(7).await,
        "hang" => hanging_value(7).await,
        "early" => early_value(7).await,
        _ => failing_value(7).await.unwrap_or(0),
    }
}

fn handle(mode: &str) -> &'static cache_runtime::CacheHandle {
    match mode {
        "stale" => stale_value_cache(),
        "panic" => panicking_value_cache(),
        "hang" => hanging_value_cache(),
        "early" => early_value_cache(),
        _ => failing_value_cache(),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, prefix, mode, tasks] = args.as_slice() else {
        panic!("usage: freshness-worker <redis url> <key prefix> <stale|error> <tasks>");
    };
    let tasks: usize = tasks.parse().expect("a number of tasks");
    // The server (or the cluster's nodes) from `CACHE_REDIS_URL`, as a deployment sets it;
    // `url` is for the test's own raw connection.
    cache_runtime::Config::builder()
        .key_prefix(prefix.as_str())
        .init()
        .expect("settings");
    let mut raw = tests::redis_server::raw(url);
    let _: i64 = redis::cmd("INCR")
        .arg(format!("{prefix}ready"))
        .query(&mut raw)
        .expect("INCR");
    let give_up = Instant::now() + Duration::from_secs(30);
    while !redis::cmd("EXISTS")
        .arg(format!("{prefix}go"))
        .query::<bool>(&mut raw)
        .expect("EXISTS")
    {
        assert!(Instant::now() < give_up, "never told to go");
        std::thread::sleep(Duration::from_millis(2));
    }
    let mode: &'static str = ["stale", "panic", "hang", "early", "error"]
        .into_iter()
        .find(|m| m == mode)
        .expect("a mode");
    // `early`: each task reads for 600 ms, across the entry's expiry; the others call once.
    let rounds = if mode == "early" {
        Duration::from_millis(600)
    } else {
        Duration::ZERO
    };
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            tokio::spawn(async move {
                let until = Instant::now() + rounds;
                let mut seen = Vec::new();
                loop {
                    let started = Instant::now();
                    seen.push((call(mode).await, started.elapsed()));
                    if Instant::now() >= until {
                        return seen;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
        })
        .collect();
    let (mut values, mut slow) = (Vec::new(), 0);
    for h in handles {
        for (value, took) in h.await.expect("task") {
            if !values.contains(&value.to_string()) || mode != "early" {
                values.push(value.to_string());
            }
            slow += usize::from(took >= Duration::from_millis(250));
        }
    }
    let at_once = handle(mode).stats();
    if mode == "stale" || mode == "hang" {
        // The revalidation (or the late load) stores 99.
        let give_up = Instant::now() + Duration::from_secs(20);
        while call(mode).await != 99 {
            assert!(Instant::now() < give_up, "never stored the new value");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let s = handle(mode).stats();
    println!(
        "values={} slow={slow} loads={} refreshes={} stale_hits={} stale_if_error_hits={}",
        values.join(","),
        s.loads,
        s.refreshes,
        at_once.stale_hits,
        at_once.stale_if_error_hits
    );
}
