//! Issue 14 (Cluster, first part): a cache on a local 3-primary Redis Cluster — misses under
//! the lease, hits, `f_invalidate`, `f_refresh`, one load for many callers, and `clear()` on
//! every primary (only this cache's keys), tags (their keys live on other slots than the
//! values), and a tiered cache whose L1 another process's invalidation reaches through the log.
//! A cluster of its own, in a process of its own (and a second process, this binary run again).
#![cfg(feature = "redis")]

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Barrier};

use cache_runtime::{Invalidation, cached};

static LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 60, key = "{id}", name = "cl")]
fn value(id: u32) -> u32 {
    LOADS.fetch_add(1, SeqCst);
    id + 1
}

/// Beside `cl`: its keys must survive `cl`'s `clear()`.
#[cached(ttl = 60, key = "{id}", name = "cl_other")]
fn other(id: u32) -> u32 {
    id
}

static SLOW_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 60, key = "{id}", name = "cl_slow")]
fn slow(id: u32) -> u32 {
    SLOW_LOADS.fetch_add(1, SeqCst);
    std::thread::sleep(std::time::Duration::from_millis(200));
    id
}

static TIERED_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(backend = "tiered", ttl = 60, key = "{id}", name = "cl_tiered")]
fn tiered(id: u32) -> u32 {
    TIERED_LOADS.fetch_add(1, SeqCst);
    id
}

const CHILD: &str = "CACHE_TEST_CLUSTER_CHILD";

/// The other process of the tiered part: invalidates `tiered(1)` on the same cluster. Does
/// nothing when the harness runs it.
#[test]
fn other_process_invalidates_a_tiered_key() {
    let Ok(urls) = std::env::var(CHILD) else {
        return;
    };
    cache_runtime::Config::builder()
        .cluster_nodes(urls.split(' '))
        .key_prefix("cl:")
        .op_timeout(std::time::Duration::from_secs(1))
        .init()
        .expect("settings");
    assert_eq!(tiered_invalidate(1), Invalidation::Done);
}

static TAGGED_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 60, key = "{id}", name = "cl_tagged", tags = ["cl:{id}"])]
fn tagged(id: u32) -> u32 {
    TAGGED_LOADS.fetch_add(1, SeqCst);
    id
}

fn keys_per_node(cluster: &tests::redis_server::Cluster, pattern: &str) -> Vec<usize> {
    cluster
        .nodes
        .iter()
        .map(|n| {
            let mut con = tests::redis_server::raw(&n.url);
            let keys: Vec<String> = redis::cmd("KEYS").arg(pattern).query(&mut con).unwrap();
            keys.len()
        })
        .collect()
}

#[test]
fn a_cache_on_a_three_primary_cluster() {
    let Some(cluster) =
        tests::redis_server::or_skip("the cluster test", tests::redis_server::Cluster::start(3))
    else {
        return;
    };
    cache_runtime::Config::builder()
        .cluster_nodes(cluster.urls())
        .key_prefix("cl:")
        .op_timeout(std::time::Duration::from_secs(1))
        .init()
        .expect("settings");

    // 300 keys spread over the slots of the three primaries: misses, then hits.
    for id in 0..300 {
        assert_eq!(value(id), id + 1);
        assert_eq!(other(id), id);
    }
    for id in 0..300 {
        assert_eq!(value(id), id + 1);
    }
    assert_eq!(LOADS.load(SeqCst), 300, "the second round hit the cluster");
    let per_node = keys_per_node(&cluster, "cl:cl:*");
    assert!(per_node.iter().all(|n| *n > 0), "spread: {per_node:?}");
    assert_eq!(per_node.iter().sum::<usize>(), 300);

    assert_eq!(value_invalidate(7), Invalidation::Done);
    assert_eq!(value(7), 8);
    assert_eq!(LOADS.load(SeqCst), 301);
    assert_eq!(value_refresh(8), 9);
    assert_eq!(value(8), 9);
    assert_eq!(LOADS.load(SeqCst), 302, "the refresh stored its result");

    // Single-flight through the lease: 16 threads on a cold key, one load.
    let barrier = Arc::new(Barrier::new(16));
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                slow(5)
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 5);
    }
    assert_eq!(SLOW_LOADS.load(SeqCst), 1);

    // `clear()` on every primary, and only this cache's keys.
    assert_eq!(value_cache().clear(), Invalidation::Done);
    assert_eq!(keys_per_node(&cluster, "cl:cl:*").iter().sum::<usize>(), 0);
    assert_eq!(
        keys_per_node(&cluster, "cl:cl_other:*")
            .iter()
            .sum::<usize>(),
        300
    );
    assert_eq!(value(1), 2);
    assert_eq!(LOADS.load(SeqCst), 303);

    let s = value_cache().stats();
    assert_eq!((s.store_errors, s.store_skips), (0, 0), "{s:?}");

    // Tags: the tag keys live on other slots than the values.
    for id in 0..50 {
        assert_eq!(tagged(id), id);
        assert_eq!(tagged(id), id);
    }
    assert_eq!(
        TAGGED_LOADS.load(SeqCst),
        50,
        "tagged entries hit the cluster"
    );
    assert_eq!(
        cache_runtime::invalidate_tag("cl:7"),
        Invalidation::Done,
        "one tag"
    );
    assert_eq!(
        cache_runtime::invalidate_tags(["cl:8", "cl:9"]),
        Invalidation::Done
    );
    for id in 0..50 {
        assert_eq!(tagged(id), id);
    }
    assert_eq!(
        TAGGED_LOADS.load(SeqCst),
        53,
        "exactly the three invalidated reloaded"
    );
    // Another process's invalidation is a new version in the tag key: seen at the next read.
    let mut con = tests::redis_server::raw_cluster(&cluster.urls());
    let () = redis::cmd("SET")
        .arg("cl:cache-runtime:tag:cl:10")
        .arg("0123456789abcdef")
        .query(&mut con)
        .unwrap();
    assert_eq!(tagged(10), 10);
    assert_eq!(TAGGED_LOADS.load(SeqCst), 54);
    let s = tagged_cache().stats();
    assert_eq!((s.store_errors, s.store_skips), (0, 0), "{s:?}");

    // Tiered: the invalidation log's reader follows the stream on its node, so the L1 answers;
    // another process's `f_invalidate` drops this process's copy through the log.
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while tiered_cache().stats().l1_hits == 0 {
        assert!(std::time::Instant::now() < give_up, "the L1 never answered");
        tiered(1);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(TIERED_LOADS.load(SeqCst), 1);
    let mut child = tests::child::test("other_process_invalidates_a_tiered_key");
    child.env(CHILD, cluster.urls().join(" "));
    tests::child::passes(child);
    let sent = std::time::Instant::now();
    while TIERED_LOADS.load(SeqCst) == 1 {
        assert!(
            sent.elapsed() < std::time::Duration::from_secs(5),
            "the L1 kept the copy"
        );
        tiered(1);
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    eprintln!(
        "tiered on the cluster: copy dropped {:?} after the other process",
        sent.elapsed()
    );
    let s = tiered_cache().stats();
    assert_eq!((s.store_errors, s.store_skips), (0, 0), "{s:?}");
}
