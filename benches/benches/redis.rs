//! Redis: a hit and a miss of `#[cached]` against raw redis-rs (`GET`, and `GET` + `SET`), one
//! call at a time and 32 concurrent tasks. Starts its own `redis-server` on a free loopback
//! port. Run: `cargo bench -p benches --features redis --bench redis`.

#![allow(clippy::print_stdout, reason = "a benchmark prints its setup")]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use benches::raw_get;
use criterion::{Criterion, criterion_group, criterion_main};
use redis::aio::ConnectionManager;
use tests::redis_server::Server;

#[cache_runtime::cached(ttl = 3600, key = "{k}", name = "bench:get")]
async fn ours(k: u64) -> u64 {
    k.wrapping_mul(31)
}

static NEXT: AtomicU64 = AtomicU64::new(1 << 32);

fn fresh() -> u64 {
    NEXT.fetch_add(1, Relaxed)
}

async fn raw_get_set(con: &mut ConnectionManager, key: &str) {
    if raw_get(con, key).await.is_none() {
        let _: Result<(), _> = redis::cmd("SET")
            .arg(key)
            .arg(b"value")
            .arg("PX")
            .arg(3_600_000)
            .query_async(con)
            .await;
    }
}

/// Runs `op(i)` for `iters` values of `i`, spread over 32 tasks; the wall time.
async fn concurrent<F, Fut>(iters: u64, op: F) -> std::time::Duration
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let start = std::time::Instant::now();
    let tasks: Vec<_> = (0..32)
        .map(|t| {
            let op = Arc::clone(&op);
            tokio::spawn(async move {
                let mut i = t;
                while i < iters {
                    op(i).await;
                    i += 32;
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    start.elapsed()
}

/// 32 tasks hitting one warm key: ours and raw redis-rs in interleaved rounds (ours, raw, ours,
/// raw, ...), so that drift of the machine hits both alike; prints the median of the per-round
/// throughput ratios (ours / raw) and their range.
fn interleaved(rt: &tokio::runtime::Runtime, con: &ConnectionManager) {
    const ROUNDS: usize = 15;
    const CALLS: u64 = 20_000;
    let mut ratios = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let ours_time = rt.block_on(concurrent(CALLS, |_| async {
            black_box(ours(1).await);
        }));
        let raw = con.clone();
        let raw_time = rt.block_on(concurrent(CALLS, move |_| {
            let mut con = raw.clone();
            async move {
                black_box(raw_get(&mut con, "raw:1").await);
            }
        }));
        ratios.push(raw_time.as_secs_f64() / ours_time.as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "interleaved: 32 tasks x {CALLS} hits, {ROUNDS} rounds: throughput ours/raw median \
         {:.3}, range {:.3}..{:.3}",
        ratios[ROUNDS / 2],
        ratios[0],
        ratios[ROUNDS - 1]
    );
}

/// 4 processes x 16 tasks on one cold key whose load takes 300 ms, through ours and through
/// the `cached` crate's Redis store (`src/bin/stampede_*.rs`), 3 rounds each: how many loads
/// ran in all, and the tasks' latencies (p50, p99), printed.
fn stampede_across_processes(server: &Server) {
    use std::process::{Command, Stdio};
    let workers = [
        (
            "cache-runtime #[cached]",
            env!("CARGO_BIN_EXE_stampede-ours"),
        ),
        (
            "cached 4.1 #[concurrent_cached] AsyncRedisCache",
            env!("CARGO_BIN_EXE_stampede-cached"),
        ),
    ];
    let mut con = tests::redis_server::raw(&server.url);
    for (w, (who, exe)) in workers.iter().enumerate() {
        for round in 0..3 {
            let prefix = format!("st{}-{w}-{round}:", std::process::id());
            let children: Vec<_> = (0..4)
                .map(|_| {
                    Command::new(exe)
                        .args([server.url.as_str(), prefix.as_str(), "16"])
                        .stdout(Stdio::piped())
                        .spawn()
                        .expect("a worker process")
                })
                .collect();
            let ready = format!("{prefix}ready");
            let give_up = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while redis::cmd("GET")
                .arg(&ready)
                .query::<Option<u32>>(&mut con)
                .expect("GET")
                != Some(4)
            {
                assert!(std::time::Instant::now() < give_up, "workers did not start");
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            let () = redis::cmd("SET")
                .arg(format!("{prefix}go"))
                .arg(1)
                .query(&mut con)
                .expect("SET");
            let (mut loads, mut latencies, mut after_load) = (0u64, Vec::new(), Vec::new());
            for child in children {
                let out = child.wait_with_output().expect("the worker ran");
                assert!(out.status.success(), "a worker failed: {out:?}");
                let line = String::from_utf8_lossy(&out.stdout).into_owned();
                for field in line.split_whitespace() {
                    if let Some(n) = field.strip_prefix("loads=") {
                        loads += n.parse::<u64>().expect("loads");
                    } else if let Some(list) = field.strip_prefix("latencies_us=") {
                        latencies.extend(list.split(',').map(|v| v.parse::<u64>().expect("us")));
                    } else if let Some(list) = field.strip_prefix("after_load_us=") {
                        after_load.extend(list.split(',').map(|v| v.parse::<u64>().expect("us")));
                    }
                }
            }
            let ms = |list: &mut Vec<u64>, q: f64| {
                list.sort_unstable();
                list[((list.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0
            };
            println!(
                "stampede across processes: {who}: 4 processes x 16 tasks on a cold key \
                 (300 ms load): {loads} loads, p50 {:.1} ms, p99 {:.1} ms; from the end of the \
                 load to each answer: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                ms(&mut latencies, 0.5),
                ms(&mut latencies, 0.99),
                ms(&mut after_load, 0.5),
                ms(&mut after_load, 0.99),
                ms(&mut after_load, 1.0),
            );
        }
    }
}

fn benches(c: &mut Criterion) {
    let Some((server, rt)) = benches::redis_bench("redis") else {
        return;
    };
    let client = redis::Client::open(server.url.as_str()).expect("client");
    let con = rt
        .block_on(client.get_connection_manager())
        .expect("connection");
    rt.block_on(async {
        ours(1).await;
        let mut c = con.clone();
        let _: () = redis::cmd("SET")
            .arg("raw:1")
            .arg(vec![b'x'; 60])
            .query_async(&mut c)
            .await
            .expect("SET");
    });

    let mut g = c.benchmark_group("redis hit/1 task");
    g.bench_function("cache-runtime #[cached]", |b| {
        b.to_async(&rt).iter(|| async { black_box(ours(1).await) })
    });
    g.bench_function("redis-rs GET", |b| {
        b.to_async(&rt).iter(|| {
            let mut con = con.clone();
            async move { black_box(raw_get(&mut con, "raw:1").await) }
        })
    });
    g.finish();

    let mut g = c.benchmark_group("redis miss/1 task");
    g.bench_function("cache-runtime #[cached]", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(ours(fresh()).await) })
    });
    g.bench_function("redis-rs GET+SET", |b| {
        b.to_async(&rt).iter(|| {
            let mut con = con.clone();
            async move { raw_get_set(&mut con, &format!("raw:{}", fresh())).await }
        })
    });
    g.finish();

    interleaved(&rt, &con);
    stampede_across_processes(&server);

    let mut g = c.benchmark_group("redis hit/32 tasks");
    g.bench_function("cache-runtime #[cached]", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            concurrent(iters, |_| async {
                black_box(ours(1).await);
            })
        })
    });
    let raw = con.clone();
    g.bench_function("redis-rs GET", move |b| {
        let raw = raw.clone();
        b.to_async(&rt).iter_custom(move |iters| {
            let raw = raw.clone();
            concurrent(iters, move |_| {
                let mut con = raw.clone();
                async move {
                    black_box(raw_get(&mut con, "raw:1").await);
                }
            })
        })
    });
    g.finish();
    server.stop();
}

criterion_group!(redis_benches, benches);
criterion_main!(redis_benches);
