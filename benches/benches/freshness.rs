//! Issue 11: one hot key around its expiry. `ttl = 2` s, a 50 ms loader, 8 threads calling it
//! in a loop for 10 s, for plain TTL, `stale`, and `early_refresh = 1.0`: call latency
//! (p50/p99/max), loads per expiry, and calls that waited for a load (the cache's own count of
//! misses and waits, after the cold start; and, for comparison, calls that took ≥ 25 ms,
//! which on a 2-core machine running 8 busy threads also counts a few calls descheduled by the
//! OS). Then `stale_if_error` with the loader failing for 5 s of the 10: errors returned to
//! callers.
//!
//! In process always; with `--features redis` the same on Redis (one process of 8 threads),
//! and 4 processes of 2 threads each (this binary re-run as workers).
//!
//! ```sh
//! cargo bench -p benches --bench freshness
//! cargo bench -p benches --features redis --bench freshness
//! ```
//!
//! Not criterion: the figures are distributions over a fixed 10 s run, not a mean per call.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use cache_runtime::{CacheHandle, Stats, cached};

const THREADS: usize = 8;
const RUN: Duration = Duration::from_secs(10);
const LOAD: Duration = Duration::from_millis(50);
/// A call that took this long waited for a load.
const WAITED: Duration = Duration::from_millis(25);

static FAILING: AtomicBool = AtomicBool::new(false);
static BODY_RUNS: AtomicU64 = AtomicU64::new(0);

fn load() -> u64 {
    std::thread::sleep(LOAD);
    BODY_RUNS.fetch_add(1, Relaxed) + 1
}

fn load_or_fail() -> Result<u64, String> {
    std::thread::sleep(LOAD);
    if FAILING.load(Relaxed) {
        return Err("database down".into());
    }
    Ok(1)
}

#[cached(ttl = 2, jitter = 0, backend = "memory")]
fn mem_plain(k: u32) -> u64 {
    load() + u64::from(k)
}

#[cached(ttl = 2, stale = 10, jitter = 0, backend = "memory")]
fn mem_stale(k: u32) -> u64 {
    load() + u64::from(k)
}

#[cached(ttl = 2, early_refresh = 1.0, jitter = 0, backend = "memory")]
fn mem_early(k: u32) -> u64 {
    load() + u64::from(k)
}

#[cached(ttl = 2, jitter = 0, backend = "memory")]
fn mem_plain_failing(k: u32) -> Result<u64, String> {
    load_or_fail().map(|v| v + u64::from(k))
}

#[cached(ttl = 2, stale_if_error = 60, jitter = 0, backend = "memory")]
fn mem_fail_safe(k: u32) -> Result<u64, String> {
    load_or_fail().map(|v| v + u64::from(k))
}

#[cfg(feature = "redis")]
mod on_redis {
    use super::*;

    #[cached(ttl = 2, jitter = 0, name = "fb:plain")]
    pub(crate) fn redis_plain(k: u32) -> u64 {
        load() + u64::from(k)
    }

    #[cached(ttl = 2, stale = 10, jitter = 0, name = "fb:stale")]
    pub(crate) fn redis_stale(k: u32) -> u64 {
        load() + u64::from(k)
    }

    #[cached(ttl = 2, early_refresh = 1.0, jitter = 0, name = "fb:early")]
    pub(crate) fn redis_early(k: u32) -> u64 {
        load() + u64::from(k)
    }

    #[cached(ttl = 2, jitter = 0, name = "fb:plain_failing")]
    pub(crate) fn redis_plain_failing(k: u32) -> Result<u64, String> {
        load_or_fail().map(|v| v + u64::from(k))
    }

    #[cached(ttl = 2, stale_if_error = 60, jitter = 0, name = "fb:fail_safe")]
    pub(crate) fn redis_fail_safe(k: u32) -> Result<u64, String> {
        load_or_fail().map(|v| v + u64::from(k))
    }
}

/// A function of the benchmark: a call (whether it answered without error) and its cache.
type Subject = (fn() -> bool, fn() -> &'static CacheHandle);

/// What `threads` threads calling `call` for `run` saw.
struct Run {
    /// Every call's latency, in ns, sorted.
    latencies: Vec<u64>,
    errors: u64,
}

impl Run {
    fn percentile(&self, p: f64) -> Duration {
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        Duration::from_nanos(self.latencies.get(i).copied().unwrap_or(0))
    }

    /// Calls that took ≥ 25 ms.
    fn waited(&self) -> usize {
        let limit = u64::try_from(WAITED.as_nanos()).unwrap_or(u64::MAX);
        self.latencies.iter().filter(|&&ns| ns >= limit).count()
    }

    /// p99 of the calls that did not wait: the hit latency.
    fn hit_p99(&self) -> Duration {
        let limit = u64::try_from(WAITED.as_nanos()).unwrap_or(u64::MAX);
        let hits: Vec<u64> = self
            .latencies
            .iter()
            .copied()
            .filter(|&ns| ns < limit)
            .collect();
        let i = ((hits.len() as f64 - 1.0) * 0.99).round() as usize;
        Duration::from_nanos(hits.get(i).copied().unwrap_or(0))
    }
}

/// Calls `call` from `threads` threads in a loop for `run`; `fail` says when (seconds into the
/// run) the loader fails.
fn hammer(threads: usize, run: Duration, fail: Option<(u64, u64)>, call: fn() -> bool) -> Run {
    let started = Instant::now();
    let stop = started + run;
    let failer = fail.map(|(from, to)| {
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(from));
            FAILING.store(true, Relaxed);
            std::thread::sleep(Duration::from_secs(to - from));
            FAILING.store(false, Relaxed);
        })
    });
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            std::thread::spawn(move || {
                let (mut latencies, mut errors) = (Vec::with_capacity(1 << 20), 0);
                while Instant::now() < stop {
                    let t = Instant::now();
                    let ok = call();
                    latencies.push(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));

                    errors += u64::from(!ok);
                }
                (latencies, errors)
            })
        })
        .collect();
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for w in workers {
        let (l, e) = w.join().expect("a worker");
        latencies.extend(l);
        errors += e;
    }
    if let Some(f) = failer {
        f.join().expect("the failer");
    }
    latencies.sort_unstable();
    Run { latencies, errors }
}

fn ms(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{:.2} µs", d.as_secs_f64() * 1e6)
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    }
}

/// One row of the latency table.
fn row(what: &str, r: &Run, s: Stats, plain_hit_p99: Duration) {
    let expiries = RUN.as_secs() / 2;
    println!(
        "| {what} | {} | {} | {} | {:.2} | {} | {} ({} expiries) | {} | {} | {} | {} |",
        r.latencies.len(),
        ms(r.percentile(0.5)),
        ms(r.percentile(0.99)),
        r.percentile(0.99).as_secs_f64() / plain_hit_p99.as_secs_f64().max(1e-9),
        ms(r.percentile(1.0)),
        s.loads.saturating_sub(1),
        expiries - 1,
        s.misses.saturating_sub(THREADS as u64),
        r.waited(),
        s.stale_hits,
        s.refreshes,
    );
}

fn header(title: &str) {
    println!("\n### {title}\n");
    println!(
        "| | calls | p50 | p99 | p99 / plain hit p99 | max | loads after the cold one | calls that waited for a load after the cold start | calls ≥ 25 ms | stale hits | refreshes |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
}

/// The three latency rows and the fail-safe row for one backend.
fn scenario(title: &str, fns: [(&str, Subject); 3]) {
    header(title);
    let mut plain_hit_p99 = Duration::ZERO;
    for (i, (what, (call, handle))) in fns.into_iter().enumerate() {
        let r = hammer(THREADS, RUN, None, call);
        if i == 0 {
            plain_hit_p99 = r.hit_p99();
        }
        row(what, &r, handle().stats(), plain_hit_p99);
    }
    println!("\nplain hit p99 (calls under 25 ms): {}", ms(plain_hit_p99));
}

fn fail_safe(title: &str, plain: fn() -> bool, safe: fn() -> bool) {
    println!("\n### {title}: the loader fails from 3 s to 8 s of the 10 s run\n");
    println!("| | calls | errors returned | p99 | max |");
    println!("|---|---|---|---|---|");
    for (what, call) in [("plain `ttl = 2`", plain), ("`stale_if_error = 60`", safe)] {
        let r = hammer(THREADS, RUN, Some((3, 8)), call);
        println!(
            "| {what} | {} | {} | {} | {} |",
            r.latencies.len(),
            r.errors,
            ms(r.percentile(0.99)),
            ms(r.percentile(1.0))
        );
    }
}

fn in_process() {
    scenario(
        "In process (8 threads, one hot key)",
        [
            ("plain `ttl = 2`", (|| mem_plain(1) > 0, mem_plain_cache)),
            ("`stale = 10`", (|| mem_stale(1) > 0, mem_stale_cache)),
            (
                "`early_refresh = 1.0`",
                (|| mem_early(1) > 0, mem_early_cache),
            ),
        ],
    );
    fail_safe(
        "In process, fail-safe",
        || mem_plain_failing(1).is_ok(),
        || mem_fail_safe(1).is_ok(),
    );
}

#[cfg(feature = "redis")]
fn on_redis_in_one_process(url: &str) {
    use on_redis::*;
    cache_runtime::Config::builder()
        .redis_url(url)
        .key_prefix(format!("fb{}:", std::process::id()).as_str())
        .init()
        .expect("settings");
    scenario(
        "Redis, one process (8 threads, one hot key)",
        [
            (
                "plain `ttl = 2`",
                (|| redis_plain(1) > 0, redis_plain_cache),
            ),
            ("`stale = 10`", (|| redis_stale(1) > 0, redis_stale_cache)),
            (
                "`early_refresh = 1.0`",
                (|| redis_early(1) > 0, redis_early_cache),
            ),
        ],
    );
    fail_safe(
        "Redis, fail-safe",
        || redis_plain_failing(1).is_ok(),
        || redis_fail_safe(1).is_ok(),
    );
}

/// A worker process of the 4-process run: `FRESHNESS_WORKER=<mode>,<url>,<prefix>`; prints
/// `latencies=<ns>,... loads=<n> refreshes=<n> stale_hits=<n>`.
#[cfg(feature = "redis")]
fn worker(spec: &str) {
    use on_redis::*;
    let mut parts = spec.splitn(3, ',');
    let (mode, url, prefix) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    cache_runtime::Config::builder()
        .redis_url(url)
        .key_prefix(prefix)
        .init()
        .expect("settings");
    let (call, handle): Subject = match mode {
        "plain" => (|| redis_plain(1) > 0, redis_plain_cache),
        "stale" => (|| redis_stale(1) > 0, redis_stale_cache),
        _ => (|| redis_early(1) > 0, redis_early_cache),
    };
    let r = hammer(2, RUN, None, call);
    let s = handle().stats();
    let lat: Vec<String> = r.latencies.iter().map(u64::to_string).collect();
    println!(
        "latencies={} loads={} refreshes={} stale_hits={} waited={}",
        lat.join(","),
        s.loads,
        s.refreshes,
        s.stale_hits,
        s.misses.saturating_sub(2),
    );
}

#[cfg(feature = "redis")]
fn four_processes(url: &str) {
    println!("\n### Redis, 4 processes × 2 threads, one hot key\n");
    println!(
        "| | calls | p50 | p99 | max | loads (all processes) | calls that waited for a load after each process's cold start | calls ≥ 25 ms | stale hits | refreshes |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let exe = std::env::current_exe().expect("this benchmark's path");
    for (mode, what) in [
        ("plain", "plain `ttl = 2`"),
        ("stale", "`stale = 10`"),
        ("early", "`early_refresh = 1.0`"),
    ] {
        let prefix = format!("fb4{}{mode}:", std::process::id());
        let workers: Vec<_> = (0..4)
            .map(|_| {
                std::process::Command::new(&exe)
                    .env("FRESHNESS_WORKER", format!("{mode},{url},{prefix}"))
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .expect("a worker")
            })
            .collect();
        let (mut latencies, mut loads, mut waited) = (Vec::new(), 0, 0);
        let (mut stale_hits, mut refreshes) = (0, 0);
        for w in workers {
            let out = w.wait_with_output().expect("the worker ran");
            let line = String::from_utf8_lossy(&out.stdout).to_string();
            let field = |name: &str| -> String {
                line.split_whitespace()
                    .find_map(|f| f.strip_prefix(&format!("{name}=")).map(str::to_owned))
                    .unwrap_or_default()
            };
            latencies.extend(
                field("latencies")
                    .split(',')
                    .filter_map(|v| v.parse::<u64>().ok()),
            );
            loads += field("loads").parse::<u64>().unwrap_or(0);
            refreshes += field("refreshes").parse::<u64>().unwrap_or(0);
            stale_hits += field("stale_hits").parse::<u64>().unwrap_or(0);
            waited += field("waited").parse::<u64>().unwrap_or(0);
        }
        latencies.sort_unstable();
        let r = Run {
            latencies,
            errors: 0,
        };
        println!(
            "| {what} | {} | {} | {} | {} | {loads} | {waited} | {} | {stale_hits} | {refreshes} |",
            r.latencies.len(),
            ms(r.percentile(0.5)),
            ms(r.percentile(0.99)),
            ms(r.percentile(1.0)),
            r.waited(),
        );
    }
}

fn main() {
    #[cfg(feature = "redis")]
    if let Ok(spec) = std::env::var("FRESHNESS_WORKER") {
        worker(&spec);
        return;
    }
    // `cargo bench` passes `--bench`; a filter that names no group skips this run.
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && a != "freshness")
    {
        return;
    }
    in_process();
    #[cfg(feature = "redis")]
    {
        let server = tests::redis_server::Server::start().expect("a redis-server");
        on_redis_in_one_process(&server.url);
        four_processes(&server.url);
        server.stop();
    }
}
