//! Issue 14 (TLS): a server whose certificate the configured CA did not sign is refused: the
//! cache fails closed (no plaintext attempt: the server has no plaintext port, and the
//! connection never completes), every call is answered through the in-process fallback, and
//! the failures are counted. A server of its own, in a process of its own.
#![cfg(feature = "redis")]

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

use cache_runtime::cached;

static LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 60, key = "{id}", name = "tls_wrong")]
fn value(id: u32) -> u32 {
    LOADS.fetch_add(1, SeqCst);
    id * 3
}

#[test]
fn a_certificate_from_another_ca_is_an_outage() {
    use tests::redis_server::{Server, or_skip};
    let what = "the TLS test";
    let Some(server_certs) = or_skip(what, tests::certs::make("tls-server")) else {
        return;
    };
    let Some(other) = or_skip(what, tests::certs::make("tls-other")) else {
        return;
    };
    let Some(server) = or_skip(what, Server::start_tls(&server_certs)) else {
        return;
    };
    // The client trusts another CA (and presents that CA's client certificate).
    cache_runtime::Config::builder()
        .redis_url(server.url.as_str())
        .key_prefix("tlswrong:")
        .tls_ca(&other.ca)
        .tls_client_cert(&other.client_cert, &other.client_key)
        .init()
        .expect("settings");

    for round in 0..50 {
        assert_eq!(value(round % 5), (round % 5) * 3, "every call is answered");
    }
    let s = value_cache().stats();
    assert_eq!(s.hits + s.misses, 50);
    assert!(
        s.store_errors + s.store_skips > 0,
        "the refused connection is an outage: {s:?}"
    );
    assert_eq!(s.hits, 45, "answered by the in-process fallback: {s:?}");
    // The test's own look at the server, with the right certificates, finds no key.
    let certs = redis::TlsCertificates {
        client_tls: Some(redis::ClientTlsConfig {
            client_cert: std::fs::read(&server_certs.client_cert).unwrap(),
            client_key: std::fs::read(&server_certs.client_key).unwrap(),
        }),
        root_cert: Some(std::fs::read(&server_certs.ca).unwrap()),
    };
    let mut admin = redis::Client::build_with_tls(server.url.as_str(), certs)
        .unwrap()
        .get_connection()
        .unwrap();
    // Only this cache's keys: a port this server took may have served an earlier test's
    // server whose writers (a restarted cluster node) had not quite stopped.
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("tlswrong:*")
        .query(&mut admin)
        .unwrap();
    assert!(keys.is_empty(), "nothing was written: {keys:?}");
}
