//! One process of the chaos test (`tests/redis_chaos.rs`, issue 22).
//!
//! Usage: `chaos-worker <redis url> <key prefix> <dir> <read|write0|write1> <seconds>`.
//! The source of truth is a file per key under `<dir>/db` holding its version (not in Redis:
//! Redis is what the test breaks). For `<seconds>` the process reads keys `0..KEYS` (skewed to
//! the low ones) through three functions: plain Redis, tiered, and tagged. A writer also, every
//! few milliseconds, bumps the version of one of its keys (`write0`: even keys, `write1`: odd)
//! and invalidates it in all three (`f_invalidate` twice, `invalidate_tag` once). Every read
//! (`R <fn> <key> <version> <start ms> <end ms>`) and every invalidation (`A <fn> <key>
//! <version> <acknowledged ms> <1 if Done, 0 if Pending>`) goes to `<dir>/<role>.log`; the
//! test checks them afterwards; two more threads read the same way (`<role>.t1.log`,
//! `<role>.t2.log`). The process panics on nothing: its exit code says it ran.

use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cache_runtime::{Invalidation, cached};

/// Keys per function.
const KEYS: u32 = 200;

static DIR: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The version of `key` in the source of truth.
fn version(key: u32) -> u32 {
    let path = format!("{}/db/{key}", DIR.get().expect("set"));
    std::fs::read_to_string(path)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[cached(ttl = 30, key = "{key}", name = "chaos_plain")]
fn plain(key: u32) -> u32 {
    version(key)
}

#[cached(
    ttl = 30,
    key = "{key}",
    name = "chaos_tiered",
    backend = "tiered",
    l1_ttl = "1s"
)]
fn tiered(key: u32) -> u32 {
    version(key)
}

#[cached(ttl = 30, key = "{key}", name = "chaos_tagged", tags = ["chaos:{key}"])]
fn tagged(key: u32) -> u32 {
    version(key)
}

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_millis(),
    )
    .expect("ms fit")
}

/// A skewed key: low keys are read far more often.
fn skewed() -> u32 {
    let u = fastrand_like();
    // u² in [0, 1): about 30% of reads hit the lowest 10% of keys.
    ((u * u) * f64::from(KEYS)) as u32
}

/// A uniform number in `[0, 1)` from a per-thread xorshift (no dependency).
fn fastrand_like() -> f64 {
    use std::cell::Cell;
    thread_local!(static STATE: Cell<u64> = Cell::new(
        u64::from(std::process::id()).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1
    ));
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, prefix, dir, role, seconds] = args.as_slice() else {
        panic!("usage: chaos-worker <redis url> <key prefix> <dir> <role> <seconds>");
    };
    DIR.set(dir.clone()).expect("once");
    cache_runtime::Config::builder()
        .redis_url(url.as_str())
        .key_prefix(prefix.as_str())
        .op_timeout(Duration::from_millis(100))
        .fallback_ttl(Duration::from_secs(1))
        .init()
        .expect("settings");
    let seconds: u64 = seconds.parse().expect("seconds");
    let writer = match role.as_str() {
        "read" => None,
        "write0" => Some(0),
        "write1" => Some(1),
        other => panic!("unknown role {other}"),
    };
    let name = std::env::var("CHAOS_LOG_NAME").unwrap_or_else(|_| role.clone());
    let log = |part: &str| {
        let file = std::fs::File::create(format!("{dir}/{name}{part}.log")).expect("log file");
        std::io::BufWriter::new(file)
    };
    let end = Instant::now() + Duration::from_secs(seconds);
    // Two more threads read the same keys meanwhile: a read of one thread races the replays
    // and invalidations of another (the process's own).
    let readers: Vec<_> = (1..=2)
        .map(|t| {
            let mut log = log(&format!(".t{t}"));
            std::thread::spawn(move || {
                let mut n = 0u64;
                while Instant::now() < end {
                    read_one(&mut log, n);
                    n += 1;
                }
                log.flush().expect("flush");
                n
            })
        })
        .collect();
    let mut log = log("");
    let mut next_write = Instant::now();
    let mut n = 0u64;
    while Instant::now() < end {
        if let Some(parity) = writer
            && Instant::now() >= next_write
        {
            let key = (skewed() & !1) | parity;
            let new = version(key) + 1;
            let path = format!("{dir}/db/{key}");
            let tmp = format!("{path}.{role}");
            std::fs::write(&tmp, new.to_string()).expect("write");
            std::fs::rename(&tmp, &path).expect("rename");
            let done = |i: Invalidation| u8::from(i.is_done());
            let results = [
                ("plain", done(plain_invalidate(key))),
                ("tiered", done(tiered_invalidate(key))),
                (
                    "tagged",
                    done(cache_runtime::invalidate_tag(&format!("chaos:{key}"))),
                ),
            ];
            let at = now_ms();
            for (f, d) in results {
                writeln!(log, "A {f} {key} {new} {at} {d}").expect("log");
            }
            next_write = Instant::now() + Duration::from_millis(5);
        }
        read_one(&mut log, n);
        n += 1;
    }
    log.flush().expect("flush");
    let others: u64 = readers
        .into_iter()
        .map(|r| r.join().expect("a reader thread"))
        .sum();
    println!("reads={}", n + others);
}

/// One read of a skewed key through one of the three functions, logged.
fn read_one(log: &mut impl Write, n: u64) {
    let key = skewed();
    let (f, read): (&str, fn(u32) -> u32) = match n % 3 {
        0 => ("plain", plain),
        1 => ("tiered", tiered),
        _ => ("tagged", tagged),
    };
    let start = now_ms();
    let got = read(key);
    writeln!(log, "R {f} {key} {got} {start} {}", now_ms()).expect("log");
    // A few thousand reads a second per thread: enough to meet every fault, and logs the test
    // can read back quickly.
    std::thread::sleep(Duration::from_micros(300));
}
