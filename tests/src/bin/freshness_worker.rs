//! One process of the cross-process freshness tests (`tests/redis_freshness.rs`).
//!
//! Usage: `freshness-worker <redis url> <key prefix> <stale|error> <tasks>`. Counts itself in
//! `<prefix>ready`, waits until the key `<prefix>go` exists, then calls one cached async
//! function on one key (which the test wrote as an expired entry holding 70) from `<tasks>`
//! tasks at once, and prints what they got and the cache's counts:
//! `values=<v>,.. slow=<calls that took 250 ms or more> loads=<n> refreshes=<n>
//! stale_hits=<n> stale_if_error_hits=<n>` (the hits as counted when the tasks ended). In
//! `stale` mode it first waits (up to 20 s) for the revalidated value, 99.

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

async fn call(mode: &str) -> u64 {
    match mode {
        "stale" => stale_value(7).await,
        _ => failing_value(7).await.unwrap_or(0),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, prefix, mode, tasks] = args.as_slice() else {
        panic!("usage: freshness-worker <redis url> <key prefix> <stale|error> <tasks>");
    };
    let tasks: usize = tasks.parse().expect("a number of tasks");
    cache_runtime::Config::builder()
        .redis_url(url.as_str())
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
    let mode: &'static str = if mode == "stale" { "stale" } else { "error" };
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            tokio::spawn(async move {
                let started = Instant::now();
                (call(mode).await, started.elapsed())
            })
        })
        .collect();
    let (mut values, mut slow) = (Vec::new(), 0);
    for h in handles {
        let (value, took) = h.await.expect("task");
        values.push(value.to_string());
        slow += usize::from(took >= Duration::from_millis(250));
    }
    let at_once = match mode {
        "stale" => stale_value_cache().stats(),
        _ => failing_value_cache().stats(),
    };
    let handle = match mode {
        "stale" => {
            let give_up = Instant::now() + Duration::from_secs(20);
            while stale_value(7).await != 99 {
                assert!(Instant::now() < give_up, "never revalidated");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            stale_value_cache()
        }
        _ => failing_value_cache(),
    };
    let s = handle.stats();
    println!(
        "values={} slow={slow} loads={} refreshes={} stale_hits={} stale_if_error_hits={}",
        values.join(","),
        s.loads,
        s.refreshes,
        at_once.stale_hits,
        at_once.stale_if_error_hits
    );
}
