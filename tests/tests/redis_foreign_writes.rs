//! Issue 22, part 4: a tiered L1 stays within its lag bound whoever changes Redis. A writer
//! that is not this library (a raw connection, as `redis-cli` or a service in another language
//! following the README's layout would be) deletes a value and its lock, overwrites a value,
//! moves a tag key, and flushes the database; every tiered copy is dropped at once (the
//! tracking connection, `CLIENT TRACKING … BCAST`), not after `l1_ttl` (60 s here, as before
//! the fix). The lag of each change is printed; each must be under 500 ms.
#![cfg(feature = "redis")]

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

use cache_runtime::cached;

/// The "database".
static SOURCE: AtomicU32 = AtomicU32::new(0);

#[cached(
    ttl = 600,
    key = "{id}",
    name = "foreign",
    backend = "tiered",
    l1_ttl = "60s"
)]
fn product(id: u32) -> u32 {
    id * 1000 + SOURCE.load(SeqCst)
}

#[cached(
    ttl = 600,
    key = "{id}",
    name = "foreign_tagged",
    backend = "tiered",
    l1_ttl = "60s",
    tags = ["foreign:{id}"]
)]
fn tagged(id: u32) -> u32 {
    id * 1000 + SOURCE.load(SeqCst)
}

/// Calls `read` until it returns `want`; how long that took.
fn lag(read: impl Fn() -> u32, want: u32, what: &str) -> Duration {
    let started = Instant::now();
    while read() != want {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what}: the L1 kept the old value"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
    started.elapsed()
}

/// Reads `read` until this process's L1 answers it (a hit of the copy).
fn in_l1(read: impl Fn() -> u32, l1_hits: impl Fn() -> u64) {
    let give_up = Instant::now() + Duration::from_secs(10);
    loop {
        let before = l1_hits();
        read();
        if l1_hits() > before {
            return;
        }
        assert!(Instant::now() < give_up, "the L1 never answered");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn issue_22_a_foreign_writer_reaches_every_tiered_l1() {
    let prefix = format!("t{}:", std::process::id());
    let Some(url) = tests::redis_server::setup(&prefix) else {
        return;
    };
    let mut raw = tests::redis_server::raw(url);
    let l1 = || product_cache().stats().l1_hits;
    let mut lags: Vec<(&str, Duration)> = Vec::new();
    for round in 0..20u32 {
        let id = round % 4;
        // DEL of the value and its lock (the README's way for another service).
        in_l1(|| product(id), l1);
        let new = SOURCE.fetch_add(1, SeqCst) + 1;
        let key = format!("{prefix}foreign:{id}");
        let _: () = redis::cmd("DEL")
            .arg(&key)
            .arg(format!("{{{key}}}:lock"))
            .query(&mut raw)
            .expect("DEL");
        lags.push(("DEL", lag(|| product(id), id * 1000 + new, "DEL")));
        // SET of a value written by another service, in the documented envelope.
        in_l1(|| product(id), l1);
        let written = 900_000 + round;
        let envelope = tests::envelope::build("u32", &written);
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg(envelope)
            .query(&mut raw)
            .expect("SET");
        lags.push(("SET", lag(|| product(id), written, "SET")));
        // A tag key moved (the README's tag invalidation by another service).
        in_l1(|| tagged(id), || tagged_cache().stats().l1_hits);
        let new = SOURCE.fetch_add(1, SeqCst) + 1;
        let _: () = redis::cmd("SET")
            .arg(format!("{prefix}cache-runtime:tag:foreign:{id}"))
            .arg(format!("foreign{round}"))
            .query(&mut raw)
            .expect("SET tag");
        lags.push(("tag", lag(|| tagged(id), id * 1000 + new, "tag")));
    }
    // A flush of every server: every copy goes.
    in_l1(|| product(1), l1);
    let new = SOURCE.fetch_add(1, SeqCst) + 1;
    for server in tests::redis_server::servers() {
        let _: () = redis::cmd("FLUSHALL")
            .query(&mut tests::redis_server::raw(&server))
            .expect("FLUSHALL");
    }
    lags.push(("FLUSHALL", lag(|| product(1), 1000 + new, "FLUSHALL")));
    for what in ["DEL", "SET", "tag", "FLUSHALL"] {
        let mut of: Vec<Duration> = lags.iter().filter(|l| l.0 == what).map(|l| l.1).collect();
        of.sort();
        let p50 = of[of.len() / 2];
        let max = of[of.len() - 1];
        println!(
            "foreign {what}: {} changes, lag p50 {p50:?}, max {max:?}",
            of.len()
        );
        assert!(max < Duration::from_millis(500), "{what}: lag {max:?}");
    }
}
