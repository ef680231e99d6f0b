//! Issue 10 (#7): an invalidation during an outage is not lost. Redis frozen (`SIGSTOP`, so its
//! data survives), the value changed in the database and invalidated: the invalidation is kept
//! and replayed when Redis answers again, before this process reads from it, so the old value
//! is never served again (it used to be served for the rest of its TTL). One test, in a
//! process of its own, with a `redis-server` of its own; then the same test in a child
//! process, on a 3-primary cluster of its own, every node frozen (issue 14: the kept clear
//! scans every primary, the kept tag invalidation sets a tag key on another slot).
#![cfg(feature = "redis")]

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

use cache_runtime::{Invalidation, cached};

/// The "database": the current version of product 3.
static VERSION: AtomicU32 = AtomicU32::new(1);

/// Cleared during the outage.
#[cached(ttl = 300, key = "{id}", name = "pending_other")]
fn other(id: u32) -> u32 {
    id
}

#[cached(ttl = 300, key = "{id}", name = "pending")]
fn product(id: u32) -> u32 {
    id * 100 + VERSION.load(SeqCst)
}

/// Its tag is invalidated during the outage (issue 13).
#[cached(ttl = 300, key = "{id}", name = "pending_tagged", tags = ["pending:listing"])]
fn listing(id: u32) -> u32 {
    id * 100 + VERSION.load(SeqCst)
}

/// Set by the parent for its child process: run the test on a cluster.
const ON_CLUSTER: &str = "CACHE_TEST_PENDING_ON_CLUSTER";

#[test]
fn issue_14_the_same_on_a_cluster() {
    if std::env::var(ON_CLUSTER).is_ok() {
        return; // the child runs the test below
    }
    let mut child = tests::child::test(
        "issue_10_an_invalidation_during_an_outage_is_replayed_before_redis_serves_again",
    );
    child.env(ON_CLUSTER, "1");
    tests::child::passes(child);
}

#[test]
fn issue_10_an_invalidation_during_an_outage_is_replayed_before_redis_serves_again() {
    use tests::redis_server::{pid, raw};
    let on_cluster = std::env::var(ON_CLUSTER).is_ok();
    // The servers live until the test ends.
    let Some(own) = tests::redis_server::Own::start("the pending invalidation test", on_cluster)
    else {
        return;
    };
    let urls = own.urls.clone();
    // Frozen and thawed together: every node.
    let pids: Vec<u32> = urls.iter().map(|u| pid(&mut raw(u))).collect();
    let mut raw = match on_cluster {
        true => tests::redis_server::raw_cluster(&urls),
        false => raw(&urls[0]),
    };
    let settings = cache_runtime::Config::builder()
        .op_timeout(Duration::from_millis(100))
        .breaker_threshold(1)
        .breaker_cooldown(Duration::from_secs(1));
    let settings = match on_cluster {
        true => settings.cluster_nodes(urls.clone()),
        false => settings.redis_url(urls[0].as_str()),
    };
    let prefix = format!("pending{}:", std::process::id());
    settings
        .key_prefix(prefix.as_str())
        .init()
        .expect("settings");
    let freeze = |signal: &str| {
        for &p in &pids {
            tests::redis_server::signal(p, signal);
        }
    };
    assert_eq!(product(3), 301);
    assert_eq!(product(3), 301, "cached in Redis");
    assert_eq!(other(1), 1);
    assert_eq!(listing(4), 401);
    let tag_key = format!("{prefix}cache-runtime:tag:pending:listing");
    let version: String = redis::cmd("GET")
        .arg(&tag_key)
        .query(&mut raw)
        .expect("GET");
    let other_key = format!("{prefix}pending_other:1");
    let exists = |raw: &mut tests::redis_server::Raw, key: &str| -> bool {
        redis::cmd("EXISTS").arg(key).query(raw).expect("EXISTS")
    };
    assert!(exists(&mut raw, &other_key));

    freeze("-STOP");
    // One timed-out read opens the breaker, so the invalidation below is not even sent (a
    // command sent to a frozen server would wait in its socket and run on `SIGCONT`).
    assert_eq!(product(3), 301, "the warm fallback answers");
    VERSION.store(2, SeqCst);
    assert_eq!(
        product_invalidate(3),
        Invalidation::Pending,
        "Redis cannot be reached: kept, and the caller is told"
    );
    assert_eq!(
        product(3),
        302,
        "the fallback dropped the key and loads the new version"
    );
    assert_eq!(
        other_cache().clear(),
        Invalidation::Pending,
        "the clear is kept too"
    );
    assert_eq!(
        cache_runtime::invalidate_tag("pending:listing"),
        Invalidation::Pending,
        "so is a tag invalidation"
    );
    freeze("-CONT");

    // Until Redis serves again, and after: never the old version.
    let key = format!("{prefix}pending:3");
    let give_up = Instant::now() + Duration::from_secs(20);
    loop {
        assert_eq!(
            product(3),
            302,
            "a value older than the invalidation was served"
        );
        let stored: Option<Vec<u8>> = redis::cmd("GET").arg(&key).query(&mut raw).expect("GET");
        // Redis serves again once the new version was loaded and published there.
        if stored.is_some_and(|v| tests::envelope::parse(&v).decode::<u32>() == 302) {
            break;
        }
        assert!(Instant::now() < give_up, "Redis never served again");
        std::thread::sleep(Duration::from_millis(20));
    }
    for _ in 0..20 {
        assert_eq!(product(3), 302);
    }
    assert!(!exists(&mut raw, &other_key), "the kept clear was replayed");
    let now: String = redis::cmd("GET")
        .arg(&tag_key)
        .query(&mut raw)
        .expect("GET");
    assert_ne!(now, version, "the kept tag invalidation was replayed");
    assert_eq!(listing(4), 402, "and its entry is a miss");

    // With Redis up, both report that they reached it; `clear_async` on any executor.
    assert_eq!(product_invalidate(3), Invalidation::Done);
    assert_eq!(other(2), 2);
    let cleared = block_on(other_cache().clear_async());
    assert_eq!(cleared, Invalidation::Done);
    assert!(!exists(&mut raw, &format!("{prefix}pending_other:2")));
}

/// Runs a future on a bare current-thread runtime (no I/O or timer driver: `clear_async`
/// needs none of the caller's).
fn block_on<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
        .block_on(fut)
}
