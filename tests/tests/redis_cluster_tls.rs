//! Issue 14 (Cluster with TLS): a local 3-primary cluster that speaks only TLS (clients and the
//! cluster bus) and requires client certificates; the cache reaches it with the settings' CA
//! and client certificate. A cluster of its own, in a process of its own.
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
}
