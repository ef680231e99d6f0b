//! Two processes sharing one Redis, each with an in-process L1 (`backend = "tiered"`): one
//! invalidates a key, and the other's L1 drops its copy at once (through the invalidation
//! log), so its next read loads the new value.
//!
//! Run it with a Redis server at hand:
//! `REDIS_URL=redis://127.0.0.1:6379 cargo run --example tiered --features redis`.
//! This program starts the second process itself; they share nothing but Redis.

#![allow(clippy::print_stdout, reason = "an example program prints its results")]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use cache_runtime::cached;

/// The "database" both processes read: a file holding the base price.
fn database() -> PathBuf {
    std::env::temp_dir().join("cache-runtime-example-tiered-price")
}

/// A slow lookup (50 ms), cached in each process's L1 and in Redis under `prices:<sku>`.
#[cached(ttl = 600, backend = "tiered", key = "{sku}", name = "prices")]
fn price(sku: u32) -> u64 {
    std::thread::sleep(Duration::from_millis(50));
    let base = std::fs::read_to_string(database()).unwrap_or_default();
    base.trim().parse::<u64>().unwrap_or(0) + u64::from(sku)
}

fn timed(who: &str, sku: u32) -> u64 {
    let start = Instant::now();
    let p = price(sku);
    let took = start.elapsed();
    let stats = price_cache().stats();
    println!(
        "  [{who}] price({sku}) = {p:<4} in {:>9.1} µs   (L1 hits {}, Redis hits {}, loads {})",
        took.as_secs_f64() * 1e6,
        stats.l1_hits,
        stats.l2_hits,
        stats.loads
    );
    p
}

fn settings(url: &str) {
    cache_runtime::Config::builder()
        .redis_url(url)
        .key_prefix("example-tiered:")
        .init()
        .expect("settings");
}

/// The second process: reads `price(7)` every 20 ms for 1.5 s and prints each change it sees.
fn reader(url: &str) {
    settings(url);
    let mut last = timed("reader", 7);
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        let p = price(7);
        if p != last {
            println!("  [reader] its L1 copy was dropped by the writer's invalidation:");
            timed("reader", 7);
            last = p;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let s = price_cache().stats();
    println!(
        "  [reader] invalidations received: {}",
        s.invalidations_received
    );
}

fn main() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    if std::env::args().nth(1).as_deref() == Some("reader") {
        reader(&url);
        return;
    }
    settings(&url);
    std::fs::write(database(), "100").expect("the example's database file");
    let _ = price_cache().clear();
    println!("1. The writer loads price(7): a miss, stored in Redis and in its L1");
    timed("writer", 7);
    timed("writer", 7);
    println!("2. A second process reads it: from Redis, then from its own L1");
    let exe = std::env::current_exe().expect("this program");
    let mut child = Command::new(exe)
        .arg("reader")
        .spawn()
        .expect("the second process");
    std::thread::sleep(Duration::from_millis(500));
    println!("3. The writer changes the price and invalidates the key");
    std::fs::write(database(), "250").expect("the example's database file");
    let done = price_invalidate(7);
    println!("  [writer] price_invalidate(7) -> {done:?}");
    timed("writer", 7);
    child.wait().expect("the second process ran");
}
