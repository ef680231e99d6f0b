//! Issue 14 (Cluster with TLS): a local 3-primary cluster that speaks only TLS (clients and the
//! cluster bus) and requires client certificates; the cache reaches it with the settings' CA
//! and client certificate. A cluster of its own, in a process of its own. Then a child process
//! configured by the environment alone (the nodes in `CACHE_REDIS_URL`, the TLS files of
//! another CA) is refused by every node: an outage, every call answered in process.
#![cfg(feature = "redis")]

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

use cache_runtime::{Invalidation, cached, invalidate_tag};

static LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 60, key = "{id}", name = "ctls", tags = ["ctls:{id}"])]
fn value(id: u32) -> u32 {
    LOADS.fetch_add(1, SeqCst);
    id * 5
}

#[test]
fn a_cache_on_a_tls_cluster_with_client_certificates() {
    use tests::redis_server::{Cluster, or_skip};
    let what = "the TLS cluster test";
    let Some(certs) = or_skip(what, tests::certs::make("cluster-tls")) else {
        return;
    };
    let Some(cluster) = or_skip(what, Cluster::start_tls(3, &certs)) else {
        return;
    };
    assert!(cluster.urls().iter().all(|u| u.starts_with("rediss://")));
    cache_runtime::Config::builder()
        .cluster_nodes(cluster.urls())
        .key_prefix("ctls:")
        .op_timeout(std::time::Duration::from_secs(1))
        .tls_ca(&certs.ca)
        .tls_client_cert(&certs.client_cert, &certs.client_key)
        .init()
        .expect("settings");

    for id in 0..100 {
        assert_eq!(value(id), id * 5);
        assert_eq!(value(id), id * 5);
    }
    assert_eq!(
        LOADS.load(SeqCst),
        100,
        "the second round hit the cluster, over TLS"
    );
    assert_eq!(value_invalidate(3), Invalidation::Done);
    assert_eq!(invalidate_tag("ctls:4"), Invalidation::Done);
    assert_eq!(value(3), 15);
    assert_eq!(value(4), 20);
    assert_eq!(LOADS.load(SeqCst), 102);
    assert_eq!(value_cache().clear(), Invalidation::Done);
    assert_eq!(value(5), 25);
    assert_eq!(LOADS.load(SeqCst), 103, "cleared on every primary");
    let s = value_cache().stats();
    assert_eq!((s.store_errors, s.store_skips), (0, 0), "{s:?}");

    // Another CA, through the environment: fails closed on every node.
    let Some(other) = or_skip(what, tests::certs::make("cluster-tls-other")) else {
        return;
    };
    let listed = tests::redis_server::listed(&cluster.urls());
    let mut child = tests::child::test("another_ca_through_the_environment");
    child
        .env(CHILD, "1")
        .env("CACHE_REDIS_URL", listed)
        .env("CACHE_KEY_PREFIX", "ctlsother:")
        .env("CACHE_REDIS_TLS_CA", &other.ca)
        .env("CACHE_REDIS_TLS_CERT", &other.client_cert)
        .env("CACHE_REDIS_TLS_KEY", &other.client_key);
    tests::child::passes(child);
}

/// Set by the parent for its child process.
const CHILD: &str = "CACHE_TEST_CLUSTER_TLS_CHILD";

static OTHER_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 60, key = "{id}", name = "ctls_other")]
fn other(id: u32) -> u32 {
    OTHER_LOADS.fetch_add(1, SeqCst);
    id * 7
}

/// The child: settings from the environment only, a CA that signed none of the nodes.
#[test]
fn another_ca_through_the_environment() {
    if std::env::var(CHILD).is_err() {
        return; // run by the parent above
    }
    for round in 0..3 {
        for id in 0..10 {
            assert_eq!(other(id), id * 7, "round {round}: every call is answered");
        }
    }
    let s = other_cache().stats();
    assert!(s.store_errors > 0, "the refusals are counted: {s:?}");
    assert_eq!(
        s.store_errors + s.store_skips,
        s.misses + s.hits,
        "no call reached the cluster: {s:?}"
    );
    assert!(
        OTHER_LOADS.load(SeqCst) <= 10 + 10,
        "the in-process fallback serves meanwhile: {s:?}"
    );
}
