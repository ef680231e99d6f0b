//! Issue 12: `backend = "tiered"` side by side with what it replaces. Starts its own
//! `redis-server`. Run: `cargo bench -p benches --features redis --bench tiered`.
//!
//! - L1 hit (sync, one thread) against the in-process backend's hit: target ≤ 1.1×.
//! - L1 miss that hits Redis (async, one task) against a raw redis-rs `GET`: target ≤ 1.05×.
//!   The L1 holds one entry and the calls alternate between two keys, so every call misses
//!   it, reads Redis, and fills it.
//! - Invalidation lag across processes (printed): a reader process (this benchmark re-run)
//!   reads one key from its L1 in a loop; this process changes the source and calls
//!   `f_invalidate` 500 times; the lag is the time from `f_invalidate` returning to the
//!   reader's first read of the new version (one load included).

#![allow(clippy::print_stdout, reason = "a benchmark prints what it measured")]

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use benches::raw_get;
use cache_runtime::cached;
use criterion::Criterion;
use redis::Commands;
use tests::redis_server::Server;

#[cached(ttl = 3600, backend = "memory", key = "{k}")]
fn memory_hit(k: u64) -> u64 {
    k.wrapping_mul(31)
}

#[cached(ttl = 3600, backend = "tiered", key = "{k}", name = "bench:tiered_hit")]
fn tiered_hit(k: u64) -> u64 {
    k.wrapping_mul(31)
}

#[cached(
    ttl = 3600,
    backend = "tiered",
    max_entries = 1,
    key = "{k}",
    name = "bench:l2"
)]
async fn tiered_l2(k: u64) -> u64 {
    k.wrapping_mul(31)
}

static SOURCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The lag reader's function: its body reads the source of truth from Redis.
#[cached(ttl = 3600, backend = "tiered", key = "{k}", name = "bench:lag")]
fn lagged(k: u64) -> u64 {
    let url = SOURCE.get().expect("set");
    let mut con = tests::redis_server::raw(url);
    con.get::<_, Option<u64>>(format!("bench-lag:src:{k}"))
        .expect("GET")
        .unwrap_or(0)
}

fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The reader process: reads key 0 until `bench-lag:stop` exists; prints
/// `seen=<version>:<unix µs>,...` for each new version it read.
fn reader(url: &str) {
    SOURCE.set(url.to_owned()).expect("once");
    cache_runtime::Config::builder()
        .redis_url(url)
        .key_prefix("bench:")
        .init()
        .expect("settings");
    let mut con = tests::redis_server::raw(url);
    let (mut last, mut seen) = (lagged(0), Vec::new());
    let _: i64 = con.incr("bench-lag:ready", 1).expect("INCR");
    let mut polls = 0u64;
    loop {
        let v = lagged(0);
        if v != last {
            seen.push(format!("{v}:{}", unix_us()));
            last = v;
        }
        polls += 1;
        if polls.is_multiple_of(4096) && con.exists::<_, bool>("bench-lag:stop").expect("EXISTS") {
            break;
        }
    }
    println!("seen={}", seen.join(","));
}

fn lag(url: &str) {
    SOURCE.set(url.to_owned()).expect("once");
    let mut con = tests::redis_server::raw(url);
    let _: () = redis::cmd("DEL")
        .arg("bench-lag:ready")
        .arg("bench-lag:stop")
        .arg("bench-lag:src:0")
        .query(&mut con)
        .expect("DEL");
    let exe = std::env::current_exe().expect("this benchmark");
    let child = std::process::Command::new(exe)
        .env("TIERED_LAG_READER", url)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the reader");
    while con.get::<_, Option<u32>>("bench-lag:ready").expect("GET") != Some(1) {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(300)); // its log reader is caught up
    let mut acked = Vec::new();
    for _ in 0..500 {
        let v: u64 = con.incr("bench-lag:src:0", 1).expect("INCR");
        assert!(lagged_invalidate(0).is_done());
        acked.push((v, unix_us()));
        std::thread::sleep(Duration::from_millis(4));
    }
    let () = con.set("bench-lag:stop", 1).expect("SET");
    let out = child.wait_with_output().expect("the reader ran");
    let line = String::from_utf8_lossy(&out.stdout);
    let seen: std::collections::HashMap<u64, u64> = line
        .trim()
        .strip_prefix("seen=")
        .unwrap_or_default()
        .split(',')
        .filter_map(|p| {
            let (v, t) = p.split_once(':')?;
            Some((v.parse().ok()?, t.parse().ok()?))
        })
        .collect();
    let mut lags: Vec<u64> = acked
        .iter()
        .filter_map(|(v, at)| seen.get(v).map(|t| t.saturating_sub(*at)))
        .collect();
    lags.sort_unstable();
    let q = |p: usize| {
        lags.get((lags.len().saturating_sub(1)) * p / 100)
            .copied()
            .unwrap_or(0)
    };
    println!(
        "invalidation lag across processes ({} of {} changes seen): p50 {} µs, p99 {} µs, max {} µs",
        lags.len(),
        acked.len(),
        q(50),
        q(99),
        q(100)
    );
}

fn main() {
    if let Ok(url) = std::env::var("TIERED_LAG_READER") {
        reader(&url);
        return;
    }
    let Ok(server) = Server::start() else {
        println!("tiered benchmarks skipped: no redis-server on PATH");
        return;
    };
    cache_runtime::Config::builder()
        .redis_url(server.url.as_str())
        .key_prefix("bench:")
        .init()
        .expect("settings");
    let mut c = Criterion::default().configure_from_args();
    memory_hit(1);
    tiered_hit(1);
    // The L1 answers once its log reader is caught up.
    let give_up = Instant::now() + Duration::from_secs(10);
    while tiered_hit_cache().stats().l1_hits == 0 && Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(10));
        tiered_hit(1);
    }
    let mut group = c.benchmark_group("tiered hit, 1 thread");
    group.bench_function("memory backend", |b| b.iter(|| memory_hit(black_box(1))));
    group.bench_function("tiered L1", |b| b.iter(|| tiered_hit(black_box(1))));
    group.finish();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt");
    let client = redis::Client::open(server.url.as_str()).expect("client");
    let con = rt
        .block_on(client.get_connection_manager())
        .expect("connection");
    rt.block_on(async {
        tiered_l2(0).await;
        tiered_l2(1).await;
        let mut c = con.clone();
        let _: () = redis::cmd("SET")
            .arg("raw:1")
            .arg(b"value")
            .query_async(&mut c)
            .await
            .expect("SET");
    });
    let mut group = c.benchmark_group("L1 miss, Redis hit, 1 task");
    group.bench_function("redis-rs GET", |b| {
        b.to_async(&rt).iter(|| {
            let mut con = con.clone();
            async move { black_box(raw_get(&mut con, "raw:1").await) }
        })
    });
    let mut k = 0u64;
    group.bench_function("tiered L2 hit", |b| {
        b.to_async(&rt).iter(|| {
            k ^= 1;
            tiered_l2(black_box(k))
        })
    });
    group.finish();
    let s = tiered_l2_cache().stats();
    println!(
        "tiered L2 hit: {} L2 hits, {} L1 hits, {} loads",
        s.l2_hits, s.l1_hits, s.loads
    );

    lag(&server.url);
    c.final_summary();
    server.stop();
}
