//! Issue 13: tags, side by side with what a user would do without them. Run:
//! `cargo bench -p benches --bench tags` (in process), and with `--features redis` (on Redis:
//! it starts its own `redis-server`; every `invalidate_tag` then goes to Redis too).
//!
//! - Tagged hit (3 tags) against an untagged hit of the same function shape: in process
//!   (target ≤ 1.1×) and on Redis (target ≤ 1.05×: no extra round trip), one thread / task.
//! - `invalidate_tag` on a tag carried by 1,000,000 entries (target: one command, < 1 ms on
//!   loopback), against what a user without tags does: in process, `clear()` of the cache; on
//!   Redis, a set of member keys read and unlinked (cashews, Laravel, Symfony before tag
//!   versions) and `clear()` (`SCAN` + `UNLINK`). Those are timed once each (seconds, not
//!   nanoseconds); the entries are then checked to be misses.

#![allow(clippy::print_stdout, reason = "a benchmark prints what it measured")]

use std::hint::black_box;
use std::time::Instant;

use cache_runtime::{cached, invalidate_tag};
use criterion::Criterion;

const MILLION: u64 = 1_000_000;

#[cached(ttl = 3600, backend = "memory", key = "{k}")]
fn plain(k: u64) -> u64 {
    k.wrapping_mul(31)
}

#[cached(
    ttl = 3600,
    backend = "memory",
    key = "{k}",
    tags = ["catalog", "product:{k}", "category:{k}"]
)]
fn tagged(k: u64) -> u64 {
    k.wrapping_mul(31)
}

#[cached(
    ttl = 3600,
    backend = "memory",
    key = "{k}",
    max_entries = 1_100_000,
    tags = ["million"]
)]
fn million(k: u64) -> u64 {
    k
}

fn memory(c: &mut Criterion) {
    plain(1);
    tagged(1);
    let mut group = c.benchmark_group("memory hit, 1 thread");
    group.bench_function("untagged", |b| b.iter(|| plain(black_box(1))));
    group.bench_function("3 tags", |b| b.iter(|| tagged(black_box(1))));
    group.finish();
    if cfg!(feature = "redis") {
        // With the `redis` feature every `invalidate_tag` also goes to Redis: the in-process
        // invalidation is measured by the build without it.
        return;
    }

    let fill = Instant::now();
    for k in 0..MILLION {
        million(k);
    }
    println!(
        "memory: {MILLION} tagged entries loaded in {:?} ({} held)",
        fill.elapsed(),
        million_cache().len()
    );
    let mut group = c.benchmark_group("invalidate_tag, 1,000,000 entries carry it");
    group.bench_function("memory: invalidate_tag", |b| {
        b.iter(|| invalidate_tag(black_box("million")))
    });
    group.finish();
    let loads = million_cache().stats().loads;
    for k in (0..MILLION).step_by(1000) {
        million(k);
    }
    println!(
        "memory: after invalidate_tag, 1,000 sampled entries loaded again: {}",
        million_cache().stats().loads - loads
    );
    for k in 0..MILLION {
        million(k);
    }
    let clear = Instant::now();
    let _ = million_cache().clear();
    println!(
        "memory: clear() of the {MILLION} entries (the alternative without tags): {:?}",
        clear.elapsed()
    );
}

#[cfg(feature = "redis")]
mod on_redis {
    use std::hint::black_box;
    use std::time::Instant;

    use benches::raw_get;
    use cache_runtime::{cached, invalidate_tag_async};
    use criterion::Criterion;
    use redis::Commands;

    use super::MILLION;

    #[cached(ttl = 3600, key = "{k}", name = "plain")]
    async fn redis_plain(k: u64) -> u64 {
        k.wrapping_mul(31)
    }

    #[cached(
        ttl = 3600,
        key = "{k}",
        name = "tagged",
        tags = ["catalog", "product:{k}", "category:{k}"]
    )]
    async fn redis_tagged(k: u64) -> u64 {
        k.wrapping_mul(31)
    }

    #[cached(ttl = 3600, key = "{k}", name = "million", tags = ["million"])]
    async fn redis_million(k: u64) -> u64 {
        k
    }

    /// Calls of `name` in `INFO commandstats`.
    fn calls(con: &mut tests::redis_server::Raw, name: &str) -> u64 {
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(con)
            .expect("INFO");
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("cmdstat_{name}:")))
            .and_then(|rest| rest.split(',').find_map(|f| f.strip_prefix("calls=")))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// Writes `n` entries of `million` (the library's envelope, as another process of it
    /// would) recording the tag version `version`, and `n` members of a set of their keys.
    fn fill(con: &mut tests::redis_server::Raw, n: u64, version: &[u8]) {
        let far = tests::envelope::now_ms() + 3_600_000;
        let start = Instant::now();
        for chunk in (0..n).collect::<Vec<_>>().chunks(10_000) {
            let mut pipe = redis::pipe();
            for k in chunk {
                let entry = tests::envelope::build_tagged("u64", k, far, version);
                pipe.set(format!("bench:million:{k}"), entry).ignore();
                pipe.sadd("bench:members", format!("bench:million:{k}"))
                    .ignore();
            }
            let () = pipe.query(con).expect("pipeline");
        }
        println!(
            "redis: {n} tagged entries and a {n}-member set written in {:?}",
            start.elapsed()
        );
    }

    pub(super) fn run(c: &mut Criterion, url: &str) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("rt");
        let client = redis::Client::open(url).expect("client");
        let con = rt
            .block_on(client.get_connection_manager())
            .expect("connection");
        rt.block_on(async {
            redis_plain(1).await;
            redis_tagged(1).await;
            let mut c = con.clone();
            let _: () = redis::cmd("SET")
                .arg("raw:1")
                .arg(b"value")
                .query_async(&mut c)
                .await
                .expect("SET");
        });
        let mut group = c.benchmark_group("redis hit, 1 task");
        group.bench_function("redis-rs GET", |b| {
            b.to_async(&rt).iter(|| {
                let mut con = con.clone();
                async move { black_box(raw_get(&mut con, "raw:1").await) }
            })
        });
        group.bench_function("untagged", |b| {
            b.to_async(&rt).iter(|| redis_plain(black_box(1)))
        });
        group.bench_function("3 tags", |b| {
            b.to_async(&rt).iter(|| redis_tagged(black_box(1)))
        });
        group.finish();

        let mut raw = tests::redis_server::raw(url);
        let version = b"0123456789abcdef";
        let () = raw
            .set("bench:cache-runtime:tag:million", version)
            .expect("SET");
        fill(&mut raw, MILLION, version);
        rt.block_on(async {
            assert_eq!(redis_million(7).await, 7);
            // The first invalidation loads its script.
            let _ = invalidate_tag_async("million-warm-up").await;
        });
        let loads = redis_million_cache().stats().loads;
        assert_eq!(loads, 0, "the written entries are hits");
        let before = (calls(&mut raw, "evalsha"), calls(&mut raw, "set"));
        let one = Instant::now();
        let done = rt.block_on(invalidate_tag_async("million"));
        let took = one.elapsed();
        let after = (calls(&mut raw, "evalsha"), calls(&mut raw, "set"));
        println!(
            "redis: one invalidate_tag of a tag 1,000,000 entries carry: {took:?}, {:?}, {} \
             command ({} SET inside the script)",
            done,
            after.0 - before.0,
            after.1 - before.1
        );
        let mut group = c.benchmark_group("invalidate_tag, 1,000,000 entries carry it");
        group.bench_function("redis: invalidate_tag", |b| {
            b.to_async(&rt)
                .iter(|| invalidate_tag_async(black_box("million")))
        });
        group.finish();
        rt.block_on(async {
            for k in (0..MILLION).step_by(1000) {
                assert_eq!(redis_million(k).await, k);
            }
        });
        println!(
            "redis: after invalidate_tag, 1,000 sampled entries loaded again: {}",
            redis_million_cache().stats().loads - loads
        );

        // Without tags: a set of member keys, read and unlinked.
        let start = Instant::now();
        let members: Vec<String> = raw.smembers("bench:members").expect("SMEMBERS");
        let mut unlinked = 0u64;
        for chunk in members.chunks(10_000) {
            unlinked += raw.unlink::<_, u64>(chunk).expect("UNLINK");
        }
        let () = raw.del("bench:members").expect("DEL");
        let by_set = start.elapsed();
        println!(
            "redis: member set (the alternative without tag versions): {unlinked} keys unlinked \
             in {by_set:?}, {} round trips",
            1 + members.len().div_ceil(10_000) + 1
        );

        // Without tags: `clear()`, which scans and unlinks.
        fill(&mut raw, MILLION, version);
        let start = Instant::now();
        let _ = rt.block_on(redis_million_cache().clear_async());
        let by_clear = start.elapsed();
        println!("redis: clear() of the cache (SCAN + UNLINK): {by_clear:?}");
        println!(
            "redis: invalidate_tag against the member set: {:.5}×, against clear(): {:.5}×",
            took.as_secs_f64() / by_set.as_secs_f64(),
            took.as_secs_f64() / by_clear.as_secs_f64()
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    memory(&mut c);
    #[cfg(feature = "redis")]
    {
        match tests::redis_server::Server::start() {
            Ok(server) => {
                cache_runtime::Config::builder()
                    .redis_url(server.url.as_str())
                    .key_prefix("bench:")
                    .init()
                    .expect("settings");
                on_redis::run(&mut c, &server.url);
                server.stop();
            }
            Err(why) => println!("Redis benchmarks skipped: {why}"),
        }
    }
    c.final_summary();
}
