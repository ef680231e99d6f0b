//! Issue 24: a `Cache<K, V>` against a `#[cached]` function on the same engine (the hit, in
//! process), and, with the `redis` feature, a batch of 1,000 Redis keys (30% missing, and all
//! present) through `get_many_or_load_async` against 1,000 single `get_or_load_async` calls and
//! against a hand-written `MGET` + pipelined `SET`. Run:
//! `cargo bench -p benches --bench cache_value` (add `--features redis` for the batch).

#![allow(clippy::print_stdout, reason = "a benchmark prints its setup")]

use std::hint::black_box;
use std::sync::LazyLock;
use std::time::Duration;

use cache_runtime::{Backend, Cache};
use criterion::{Criterion, criterion_group, criterion_main};

const KEYS: u64 = 10_000;

fn body(x: u64) -> u64 {
    black_box(x).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5555
}

#[cache_runtime::cached(ttl = 3600, max_entries = 100_000, backend = "memory")]
fn attribute(x: u64) -> u64 {
    body(x)
}

static HELD: LazyLock<Cache<u64, u64>> = LazyLock::new(|| {
    Cache::builder("bench-held")
        .ttl(Duration::from_secs(3600))
        .max_entries(100_000)
        .backend(Backend::Memory)
        .build()
        .expect("valid settings")
});

fn held(x: u64) -> u64 {
    HELD.get_or_load(x, || body(x))
}

/// A candidate: the name the report uses, and its cached function.
type Candidate = (&'static str, fn(u64) -> u64);

fn hits(c: &mut Criterion) {
    let order = benches::key_order(KEYS);
    let candidates: [Candidate; 2] = [("#[cached] fn", attribute), ("Cache::get_or_load", held)];
    for (_, f) in candidates {
        for &k in &order {
            f(k);
        }
    }
    let mut g = c.benchmark_group("held hit/1 thread");
    for (name, f) in candidates {
        let order = &order;
        g.bench_function(name, move |b| {
            let mut i = 0;
            b.iter(|| {
                let k = order[i % order.len()];
                i += 1;
                black_box(f(black_box(k)))
            });
        });
    }
    g.finish();
}

#[cfg(feature = "redis")]
mod batch {
    use std::collections::HashMap;
    use std::hint::black_box;
    use std::time::Duration;

    use cache_runtime::{Backend, Cache};
    use criterion::Criterion;
    use redis::aio::ConnectionManager;

    const BATCH: u64 = 1_000;

    /// The keys a batch asks for; `missing` of every 10 are deleted before each run.
    fn keys() -> Vec<u64> {
        (0..BATCH).collect()
    }

    fn value(k: u64) -> Vec<u8> {
        format!("{{\"id\":{k},\"name\":\"user {k}\"}}").into_bytes()
    }

    /// The hand-written alternative: one `MGET`, then one pipeline of `SET PX` for the misses.
    async fn by_hand(con: &mut ConnectionManager, keys: &[u64]) -> HashMap<u64, Vec<u8>> {
        let names: Vec<String> = keys.iter().map(|k| format!("hand:{k}")).collect();
        let got: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
            .arg(&names)
            .query_async(con)
            .await
            .expect("MGET");
        let mut out = HashMap::with_capacity(keys.len());
        let mut pipe = redis::pipe();
        for ((k, name), v) in keys.iter().zip(&names).zip(got) {
            let v = match v {
                Some(v) => v,
                None => {
                    let v = value(*k);
                    pipe.cmd("SET")
                        .arg(name)
                        .arg(&v)
                        .arg("PX")
                        .arg(3_600_000)
                        .ignore();
                    v
                }
            };
            out.insert(*k, v);
        }
        if pipe.cmd_iter().next().is_some() {
            let () = pipe.query_async(con).await.expect("SET pipeline");
        }
        out
    }

    /// Deletes `missing` keys of every 10 in the caches' and the hand-written key spaces.
    async fn drop_some(con: &mut ConnectionManager, missing: u64) {
        if missing == 0 {
            return;
        }
        let mut pipe = redis::pipe();
        for k in (0..BATCH).filter(|k| k % 10 < missing) {
            pipe.cmd("DEL")
                .arg(format!("bench:bench-batch:[{k}]"))
                .arg(format!("bench:bench-single:[{k}]"))
                .arg(format!("hand:{k}"))
                .ignore();
        }
        let () = pipe.query_async(con).await.expect("DEL");
    }

    pub(super) fn batches(c: &mut Criterion) {
        let Some((server, rt)) = benches::redis_bench("redis") else {
            return;
        };
        let client = redis::Client::open(server.url.as_str()).expect("client");
        let con = rt
            .block_on(client.get_connection_manager())
            .expect("connection");
        let make = |name: &str| -> Cache<u64, Vec<u8>> {
            Cache::builder(name)
                .ttl(Duration::from_secs(3600))
                .backend(Backend::Redis)
                .build()
                .expect("valid settings")
        };
        let (batch, single) = (make("bench-batch"), make("bench-single"));
        let keys = keys();
        for missing in [3_u64, 0] {
            let mut g = c.benchmark_group(format!(
                "redis batch of 1,000 keys, {}% missing",
                missing * 10
            ));
            g.sample_size(20);
            g.bench_function("Cache::get_many_or_load_async", |b| {
                b.to_async(&rt).iter_custom(|iters| {
                    let (mut con, keys) = (con.clone(), keys.clone());
                    async move {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            drop_some(&mut con, missing).await;
                            let start = std::time::Instant::now();
                            let found = batch
                                .get_many_or_load_async(keys.clone(), |missing| async move {
                                    missing.into_iter().map(|k| (k, value(k))).collect()
                                })
                                .await;
                            total += start.elapsed();
                            black_box(found);
                        }
                        total
                    }
                })
            });
            g.bench_function("1,000 x Cache::get_or_load_async", |b| {
                b.to_async(&rt).iter_custom(|iters| {
                    let (mut con, keys) = (con.clone(), keys.clone());
                    async move {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            drop_some(&mut con, missing).await;
                            let start = std::time::Instant::now();
                            for &k in &keys {
                                black_box(
                                    single
                                        .get_or_load_async(k, || async move { value(k) })
                                        .await,
                                );
                            }
                            total += start.elapsed();
                        }
                        total
                    }
                })
            });
            g.bench_function("hand-written MGET + pipelined SET", |b| {
                b.to_async(&rt).iter_custom(|iters| {
                    let (mut con, keys) = (con.clone(), keys.clone());
                    async move {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            drop_some(&mut con, missing).await;
                            let start = std::time::Instant::now();
                            black_box(by_hand(&mut con, &keys).await);
                            total += start.elapsed();
                        }
                        total
                    }
                })
            });
            g.finish();
        }
        server.stop();
    }
}

#[cfg(feature = "redis")]
fn batches(c: &mut Criterion) {
    batch::batches(c);
}

#[cfg(not(feature = "redis"))]
fn batches(_: &mut Criterion) {}

criterion_group!(benches, hits, batches);
criterion_main!(benches);
