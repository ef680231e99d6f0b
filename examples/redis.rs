//! Two "instances" of a service sharing one Redis: what one loads, the other reads; an
//! invalidation in one is seen by the other; a stampede across both loads once.
//!
//! Run it with a Redis server at hand:
//! `REDIS_URL=redis://127.0.0.1:6379 cargo run --example redis --features redis`.
//! Each instance is a separate process (this program starts the second one itself), so they
//! share nothing but Redis.

#![allow(clippy::print_stdout, reason = "an example program prints its results")]

use std::process::Command;
use std::time::{Duration, Instant};

use cache_runtime::cached;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Quote {
    symbol: String,
    cents: u64,
    served_by: u32,
}

/// A slow pricing call (200 ms), cached in Redis for a minute under `quotes:<symbol>`.
#[cached(ttl = 60, key = "{symbol}", name = "quotes")]
async fn quote(symbol: &str) -> Option<Quote> {
    tokio::time::sleep(Duration::from_millis(200)).await;
    (symbol != "NOPE").then(|| Quote {
        symbol: symbol.to_owned(),
        cents: symbol.bytes().map(u64::from).sum::<u64>() * 7,
        served_by: std::process::id(),
    })
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

async fn timed_quote(who: &str, symbol: &str) {
    let start = Instant::now();
    let q = quote(symbol).await;
    let took = start.elapsed();
    match q {
        Some(q) => println!(
            "  [{who} {}] quote({symbol}) = {} cents, loaded by process {}, in {}",
            std::process::id(),
            q.cents,
            q.served_by,
            ms(took)
        ),
        None => println!(
            "  [{who} {}] quote({symbol}) = None, in {}",
            std::process::id(),
            ms(took)
        ),
    }
}

fn second_instance(step: &str) {
    let exe = std::env::current_exe().expect("this program");
    let status = Command::new(exe)
        .arg(step)
        .status()
        .expect("the second instance ran");
    assert!(status.success(), "the second instance failed");
}

#[tokio::main]
async fn main() {
    let config = cache_runtime::Config::builder()
        .key_prefix("example:")
        .build()
        .expect("valid settings");
    println!("Redis: {}", config.redis_url_redacted());
    config.clone().init().expect("settings installed once");
    if let Some(step) = std::env::args().nth(1) {
        // The second instance.
        match step.as_str() {
            "read" => timed_quote("instance B", "ACME").await,
            "stampede" => {
                let calls: Vec<_> = (0..10).map(|_| tokio::spawn(quote("INIT"))).collect();
                for c in calls {
                    c.await.expect("task");
                }
            }
            _ => {}
        }
        let s = quote_cache().stats();
        println!(
            "  [instance B] stats: hits {} misses {} loads {}",
            s.hits, s.misses, s.loads
        );
        return;
    }

    let _ = quote_cache().clear_async().await; // a fresh start
    println!("\n1. Instance A loads; instance B (another process) reads it from Redis");
    timed_quote("instance A", "ACME").await;
    second_instance("read");

    println!("\n2. Instance A invalidates; the next read anywhere loads again");
    if quote_invalidate("ACME").await.is_pending() {
        println!("   (Redis unreachable: invalidated here, replayed when it answers)");
    }
    timed_quote("instance A", "ACME").await;

    println!("\n3. A stampede across both instances on a cold key loads once");
    let b = std::thread::spawn(|| second_instance("stampede"));
    let calls: Vec<_> = (0..10).map(|_| tokio::spawn(quote("INIT"))).collect();
    for c in calls {
        c.await.expect("task");
    }
    b.join().expect("instance B");

    println!("\n4. A missing symbol is cached as a null");
    timed_quote("instance A", "NOPE").await;
    timed_quote("instance A", "NOPE").await;

    let s = quote_cache().stats();
    println!(
        "\n  [instance A] stats: hits {} null hits {} misses {} loads {} waits {} store errors {}",
        s.hits, s.null_hits, s.misses, s.loads, s.waits, s.store_errors
    );
    println!("  (A and B together loaded INIT once: see the loads above.)");
}
