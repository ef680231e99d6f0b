//! One process of the tiered tests (`tests/redis_tiered.rs`).
//!
//! Usage: `tiered-worker <redis url> <key prefix> <read|write|refresh> <keys> <seconds>
//! <lag bound ms>`.
//! Counts itself in `<prefix>ready`, waits for `<prefix>go`, then for `<seconds>`:
//! - `read`: reads keys `0..<keys>` of a tiered function round and round. The function's body
//!   reads the source of truth, `<prefix>src:<id>` (a version number). Before each read it
//!   reads `<prefix>acked:<id>` = `<version>:<unix ms>`, the last version whose invalidation
//!   the writer's `f_invalidate` acknowledged, and when; a read that started more than the lag
//!   bound after that acknowledgement and returned an older version is stale. Prints
//!   `reads=<n> stale=<n> late=<reads older than acked but within the bound> max_late_ms=<ms>
//!   l1_hits=<n> received=<n>`.
//! - `write` / `refresh`: 500 times a second, picks a key at random, increments the source,
//!   then `f_invalidate`s (or `f_refresh`es) the key, and on `Done` records `acked`. Prints
//!   `changes=<n>`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cache_runtime::{Invalidation, cached};
use redis::Commands;

static SOURCE: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();

fn source(id: u32) -> u64 {
    let (url, prefix) = SOURCE.get().expect("set");
    thread_local! {
        static CON: std::cell::RefCell<Option<tests::redis_server::Raw>> = const { std::cell::RefCell::new(None) };
    }
    CON.with(|c| {
        let mut c = c.borrow_mut();
        let con = c.get_or_insert_with(|| tests::redis_server::raw(url));
        con.get::<_, Option<u64>>(format!("{prefix}src:{id}"))
            .expect("GET")
            .unwrap_or(0)
    })
}

#[cached(
    ttl = 600,
    backend = "tiered",
    key = "{id}",
    name = "tiered_v",
    jitter = 0
)]
fn version(id: u32) -> u64 {
    source(id)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, prefix, mode, keys, seconds, bound] = args.as_slice() else {
        panic!("usage: tiered-worker <url> <prefix> <read|write|refresh> <keys> <seconds> <bound>");
    };
    let lag_bound_ms: u64 = bound.parse().expect("a lag bound in ms");
    let keys: u32 = keys.parse().expect("keys");
    let run = Duration::from_secs(seconds.parse().expect("seconds"));
    SOURCE.set((url.clone(), prefix.clone())).expect("once");
    // The server (or the cluster's nodes) from `CACHE_REDIS_URL`, as a deployment sets it;
    // `url` is for the test's own raw connection.
    cache_runtime::Config::builder()
        .key_prefix(prefix.as_str())
        .init()
        .expect("settings");
    let mut raw = tests::redis_server::raw(url);
    // Warm the L1 (and start its log reader) before the start.
    if mode == "read" {
        for id in 0..keys {
            version(id);
        }
    }
    let _: i64 = raw.incr(format!("{prefix}ready"), 1).expect("INCR");
    let give_up = Instant::now() + Duration::from_secs(60);
    while !raw
        .exists::<_, bool>(format!("{prefix}go"))
        .expect("EXISTS")
    {
        assert!(Instant::now() < give_up, "never told to go");
        std::thread::sleep(Duration::from_millis(2));
    }
    let until = Instant::now() + run;
    match mode.as_str() {
        "read" => {
            let (mut reads, mut stale, mut late, mut max_late) = (0u64, 0u64, 0u64, 0u64);
            let mut max_stale = 0u64;
            let mut lags = Vec::new();
            while Instant::now() < until {
                for id in 0..keys {
                    let acked: Option<String> =
                        raw.get(format!("{prefix}acked:{id}")).expect("GET");
                    let started = now_ms();
                    let got = version(id);
                    reads += 1;
                    let Some((ver, at)) = acked.as_deref().and_then(|a| a.split_once(':')) else {
                        continue;
                    };
                    let (ver, at): (u64, u64) = (ver.parse().unwrap(), at.parse().unwrap());
                    if got < ver {
                        let behind = started.saturating_sub(at);
                        if behind > lag_bound_ms {
                            stale += 1;
                            max_stale = max_stale.max(behind);
                        } else {
                            late += 1;
                            max_late = max_late.max(behind);
                            lags.push(behind);
                        }
                    }
                }
            }
            let s = version_cache().stats();
            lags.sort_unstable();
            let p99 = lags.get(lags.len() * 99 / 100).copied().unwrap_or(0);
            println!(
                "reads={reads} stale={stale} max_stale_ms={max_stale} late={late} \
                 max_late_ms={max_late} p99_late_ms={p99} l1_hits={} received={}",
                s.l1_hits, s.invalidations_received
            );
        }
        _ => {
            let mut changes = 0u64;
            let started = Instant::now();
            while Instant::now() < until {
                let id = fastrand_u32(keys);
                let ver: u64 = raw.incr(format!("{prefix}src:{id}"), 1).expect("INCR");
                let done = if mode == "write" {
                    version_invalidate(id)
                } else {
                    assert!(version_refresh(id) >= ver);
                    Invalidation::Done
                };
                if done == Invalidation::Done {
                    let () = raw
                        .set(format!("{prefix}acked:{id}"), format!("{ver}:{}", now_ms()))
                        .expect("SET");
                    changes += 1;
                }
                // Paced at 500 changes a second.
                let next = started + Duration::from_millis(2) * (changes as u32 + 1);
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            println!("changes={changes}");
        }
    }
}

/// A pseudo-random key (no dependency: the nanoseconds of the clock).
fn fastrand_u32(n: u32) -> u32 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    nanos.wrapping_mul(2_654_435_761) % n
}
