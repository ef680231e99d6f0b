//! One process of the cross-process stampede comparison (`benches/redis.rs`): the same cold key
//! asked for by many tasks in several processes at once, through ours or through the `cached`
//! crate's Redis store.
//!
//! A worker is run as `<bin> <redis url> <key prefix> <tasks>`: it counts itself in
//! `<prefix>ready`, waits until `<prefix>go` exists, then calls `load` from `<tasks>` tasks at
//! once and prints `loads=<n> latencies_us=<a>,<b>,... after_load_us=<a>,<b>,...`: how many
//! times this process ran the body, each task's time from its start to its answer, and each
//! task's time from the end of the body that produced its value (the body returns its end
//! time, [`now_us`]; same machine, same clock) to its answer: for a waiter in another process,
//! the publish plus the notification (or the poll that found it).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

/// How long the body of the stampeded function takes.
pub const LOAD: Duration = Duration::from_millis(300);

/// Runs of the body in this process.
pub static LOADS: AtomicU64 = AtomicU64::new(0);

/// Microseconds since the Unix epoch: what the stampeded body returns, at its end.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The arguments of a worker: Redis URL, key prefix, tasks.
pub fn args() -> (String, String, usize) {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, prefix, tasks] = args.as_slice() else {
        panic!("usage: <worker> <redis url> <key prefix> <tasks>");
    };
    let tasks = tasks.parse().expect("a number of tasks");
    (url.clone(), prefix.clone(), tasks)
}

/// Waits for `go`, runs `load` from `tasks` tasks at once, and prints the results.
pub async fn run<F, Fut>(url: &str, prefix: &str, tasks: usize, load: F)
where
    F: Fn() -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = u64> + Send + 'static,
{
    let mut raw = tests::redis_server::raw(url);
    let _: i64 = redis::cmd("INCR")
        .arg(format!("{prefix}ready"))
        .query(&mut raw)
        .expect("INCR");
    let give_up = Instant::now() + Duration::from_secs(30);
    let go = format!("{prefix}go");
    while !redis::cmd("EXISTS")
        .arg(&go)
        .query::<bool>(&mut raw)
        .expect("EXISTS")
    {
        assert!(Instant::now() < give_up, "never told to go");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let load = load.clone();
            tokio::spawn(async move {
                let start = Instant::now();
                let value = load().await;
                (start.elapsed(), now_us().saturating_sub(value))
            })
        })
        .collect();
    let (mut latencies, mut after_load) = (Vec::new(), Vec::new());
    for h in handles {
        let (took, after) = h.await.expect("task");
        latencies.push(took.as_micros().to_string());
        after_load.push(after.to_string());
    }
    println!(
        "loads={} latencies_us={} after_load_us={}",
        LOADS.load(SeqCst),
        latencies.join(","),
        after_load.join(",")
    );
}
