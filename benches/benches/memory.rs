//! In-process: the hit cost of `#[cached]` against the `cached` crate 4.1, moka and a
//! `RwLock<HashMap>` floor, on 1 and 2 threads; the miss path; memory per entry; and a
//! stampede of 32 threads on a cold key. Run: `cargo bench -p benches --bench memory`.
//!
//! Every candidate is `fn(u64) -> u64` over a warm set of 10,000 keys read in one shuffled
//! order (10,000 keys, capacity 100,000, TTL 3600 s).

#![allow(
    clippy::print_stdout,
    reason = "a benchmark prints what criterion does not measure"
)]

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, Barrier, LazyLock, RwLock};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

/// Counts live heap bytes, for memory per entry.
#[global_allocator]
static ALLOC: tests::counting::Counting = tests::counting::Counting;

const KEYS: u64 = 10_000;

fn body(x: u64) -> u64 {
    black_box(x).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5555
}

#[cache_runtime::cached(ttl = 3600, max_entries = 100_000, backend = "memory")]
fn ours(x: u64) -> u64 {
    body(x)
}

/// Ours with `verify = 0.01` (issue 27): one hit in 100 re-loads off the caller's path.
#[cache_runtime::cached(ttl = 3600, max_entries = 100_000, backend = "memory", verify = 0.01)]
fn ours_verified(x: u64) -> u64 {
    body(x)
}

#[cached::macros::cached(max_size = 100_000, ttl_secs = 3600)]
fn theirs(x: u64) -> u64 {
    body(x)
}

#[cached::macros::concurrent_cached(max_size = 100_000, ttl_secs = 3600)]
fn theirs_concurrent(x: u64) -> u64 {
    body(x)
}

static MOKA: LazyLock<moka::sync::Cache<u64, u64>> = LazyLock::new(|| {
    moka::sync::Cache::builder()
        .max_capacity(100_000)
        .time_to_live(Duration::from_secs(3600))
        .build()
});

fn moka_get(x: u64) -> u64 {
    if let Some(v) = MOKA.get(&x) {
        return v;
    }
    let v = body(x);
    MOKA.insert(x, v);
    v
}

static FLOOR: LazyLock<RwLock<HashMap<u64, u64>>> = LazyLock::new(Default::default);

fn floor(x: u64) -> u64 {
    if let Some(&v) = FLOOR.read().unwrap_or_else(|e| e.into_inner()).get(&x) {
        return v;
    }
    let v = body(x);
    FLOOR
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(x, v);
    v
}

/// A candidate: the name the report uses, and its cached function.
type Candidate = (&'static str, fn(u64) -> u64);

/// The candidates.
const CANDIDATES: [Candidate; 6] = [
    ("cache-runtime #[cached]", ours),
    ("cache-runtime #[cached] verify = 0.01", ours_verified),
    ("cached 4.1 #[cached]", theirs),
    ("cached 4.1 #[concurrent_cached]", theirs_concurrent),
    ("moka 0.12 sync get", moka_get),
    ("RwLock<HashMap> floor", floor),
];

fn hits(c: &mut Criterion) {
    let order = Arc::new(benches::key_order(KEYS));
    for (_, f) in CANDIDATES {
        for &k in order.iter() {
            f(k);
        }
    }
    let before = ours_verified_cache().stats();
    let mut one = c.benchmark_group("hit/1 thread");
    for (name, f) in CANDIDATES {
        let order = Arc::clone(&order);
        one.bench_function(name, move |b| {
            let mut i = 0;
            b.iter(|| {
                let k = order[i % order.len()];
                i += 1;
                black_box(f(black_box(k)))
            });
        });
    }
    one.finish();
    // Two threads, released together; time per lookup = wall time / lookups of both.
    let mut two = c.benchmark_group("hit/2 threads");
    for (name, f) in CANDIDATES {
        let order = Arc::clone(&order);
        two.bench_function(name, move |b| {
            b.iter_custom(|iters| {
                let barrier = Barrier::new(2);
                let start = std::thread::scope(|s| {
                    let run = |offset: usize| {
                        let (order, barrier) = (&order, &barrier);
                        move || {
                            barrier.wait();
                            let start = Instant::now();
                            for i in 0..iters as usize {
                                black_box(f(black_box(order[(i + offset) % order.len()])));
                            }
                            start
                        }
                    };
                    let a = s.spawn(run(0));
                    let b = s.spawn(run(order.len() / 2));
                    let (a, b) = (
                        a.join().unwrap_or_else(|_| Instant::now()),
                        b.join().unwrap_or_else(|_| Instant::now()),
                    );
                    a.min(b)
                });
                start.elapsed() / 2
            });
        });
    }
    two.finish();
    verified_share(before);
}

/// How many of `ours_verified`'s hits since `before` were picked for verification (verified,
/// or skipped for want of room): one in 100 of each thread's.
fn verified_share(before: cache_runtime::Stats) {
    // The verifications still running end first.
    std::thread::sleep(Duration::from_millis(200));
    let s = ours_verified_cache().stats();
    let hits = s.hits - before.hits;
    let picked = (s.verified + s.verify_skipped) - (before.verified + before.verify_skipped);
    #[allow(clippy::cast_precision_loss, reason = "a share")]
    let share = picked as f64 / hits.max(1) as f64;
    println!(
        "verify = 0.01: {picked} of {hits} hits picked ({:.4}%): {} verified, {} skipped",
        share * 100.0,
        s.verified - before.verified,
        s.verify_skipped - before.verify_skipped,
    );
}

static MISS_KEY: AtomicU32 = AtomicU32::new(0);

#[cache_runtime::cached(ttl = 3600, max_entries = 100_000, backend = "memory")]
fn ours_miss(x: u64) -> u64 {
    body(x)
}

#[cached::macros::cached(max_size = 100_000, ttl_secs = 3600)]
fn theirs_miss(x: u64) -> u64 {
    body(x)
}

fn misses(c: &mut Criterion) {
    let mut g = c.benchmark_group("miss (new key, load and insert)");
    g.bench_function("cache-runtime #[cached]", |b| {
        b.iter(|| {
            black_box(ours_miss(
                u64::from(MISS_KEY.fetch_add(1, Relaxed)) + (1 << 40),
            ))
        });
    });
    g.bench_function("cached 4.1 #[cached]", |b| {
        b.iter(|| {
            black_box(theirs_miss(
                u64::from(MISS_KEY.fetch_add(1, Relaxed)) + (1 << 41),
            ))
        });
    });
    g.finish();
}

#[cache_runtime::cached(ttl = 3600, max_entries = 100_000, backend = "memory")]
async fn ours_async_miss(x: u64) -> u64 {
    body(x)
}

/// The same, with a borrowed argument: its body cannot leave the caller, so its miss runs in
/// place as every async miss did before issue 22 (no box, no hand-over on cancel).
#[cache_runtime::cached(ttl = 3600, max_entries = 100_000, backend = "memory")]
async fn ours_async_miss_in_place(x: &u64) -> u64 {
    body(*x)
}

/// Issue 22: an async miss whose load can outlive a cancelled caller (the load future boxed,
/// dropped into the runtime only on a cancel) against one that runs in place.
fn async_misses(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let mut g = c.benchmark_group("async miss (new key, load and insert)");
    g.bench_function("owned body (goes on if cancelled)", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(ours_async_miss(u64::from(MISS_KEY.fetch_add(1, Relaxed)) + (1 << 42)).await)
        });
    });
    g.bench_function("borrowed body (in place, as before)", |b| {
        b.to_async(&rt).iter(|| async {
            let key = u64::from(MISS_KEY.fetch_add(1, Relaxed)) + (1 << 43);
            black_box(ours_async_miss_in_place(&key).await)
        });
    });
    g.finish();
}

#[cache_runtime::cached(ttl = 3600, max_entries = 200_000, backend = "memory")]
fn ours_mem(x: u64) -> u64 {
    body(x)
}

#[cached::macros::cached(max_size = 200_000, ttl_secs = 3600)]
fn theirs_mem(x: u64) -> u64 {
    body(x)
}

static MOKA_MEM: LazyLock<moka::sync::Cache<u64, u64>> = LazyLock::new(|| {
    moka::sync::Cache::builder()
        .max_capacity(200_000)
        .time_to_live(Duration::from_secs(3600))
        .build()
});

/// Heap bytes per entry after 100,000 inserts of `u64 -> u64` (printed, not timed).
fn memory() {
    let per_entry = |name: &str, fill: &dyn Fn(u64)| {
        let before = tests::counting::live();
        for k in 0..100_000 {
            fill(k);
        }
        let bytes = tests::counting::live() - before;
        println!(
            "memory: {name}: {:.1} bytes per entry (100,000 entries of u64 -> u64)",
            bytes as f64 / 100_000.0
        );
    };
    per_entry("cache-runtime #[cached]", &|k| {
        ours_mem(k);
    });
    per_entry("cached 4.1 #[cached]", &|k| {
        theirs_mem(k);
    });
    per_entry("moka 0.12 sync", &|k| {
        MOKA_MEM.insert(k, body(k));
        if k == 99_999 {
            MOKA_MEM.run_pending_tasks();
        }
    });
}

static OURS_LOADS: AtomicU32 = AtomicU32::new(0);
static THEIRS_LOADS: AtomicU32 = AtomicU32::new(0);

#[cache_runtime::cached(ttl = 3600, backend = "memory")]
fn ours_slow(x: u64) -> u64 {
    OURS_LOADS.fetch_add(1, Relaxed);
    std::thread::sleep(Duration::from_millis(20));
    x
}

#[cached::macros::cached(ttl_secs = 3600)]
fn theirs_slow(x: u64) -> u64 {
    THEIRS_LOADS.fetch_add(1, Relaxed);
    std::thread::sleep(Duration::from_millis(20));
    x
}

/// 32 threads on one cold key whose load takes 20 ms: loads and waiter latency (printed).
fn stampede() {
    let run = |name: &str, f: fn(u64) -> u64, loads: &AtomicU32, key: u64| {
        let before = loads.load(Relaxed);
        let barrier = Arc::new(Barrier::new(32));
        let mut latencies: Vec<Duration> = (0..32)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    barrier.wait();
                    let t = Instant::now();
                    black_box(f(key));
                    t.elapsed()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap_or_default())
            .collect();
        latencies.sort();
        println!(
            "stampede: {name}: 32 threads on a cold key (20 ms load): {} loads, p50 {:.1?}, p99 {:.1?}",
            loads.load(Relaxed) - before,
            latencies[15],
            latencies[31]
        );
    };
    for key in 0..3 {
        run("cache-runtime #[cached]", ours_slow, &OURS_LOADS, key);
        run("cached 4.1 #[cached]", theirs_slow, &THEIRS_LOADS, key);
    }
}

fn extras(_: &mut Criterion) {
    memory();
    stampede();
}

criterion_group!(benches, hits, misses, async_misses, extras);
criterion_main!(benches);
