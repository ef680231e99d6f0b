//! Issue 14 (TLS): `rediss://` against a local `redis-server` that speaks only TLS and requires
//! client certificates (mutual TLS), with certificates this test makes (`openssl`), configured
//! through the builder, and (in a child process) through the environment alone
//! (`CACHE_REDIS_URL`, `CACHE_REDIS_TLS_CA`, `CACHE_REDIS_TLS_CERT`, `CACHE_REDIS_TLS_KEY`):
//! every operation runs over TLS. A server of its own, in a process of its own (the settings
//! are process-wide). `redis_tls_wrong_ca.rs` checks the refusal.
#![cfg(feature = "redis")]

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

use cache_runtime::{Invalidation, cached, invalidate_tag};

static LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 60, key = "{id}", name = "tls", tags = ["tls:{id}"])]
fn value(id: u32) -> u32 {
    LOADS.fetch_add(1, SeqCst);
    id
}

#[test]
fn mutual_tls_with_the_settings_ca_and_client_certificate() {
    use tests::redis_server::{Server, or_skip};
    let Some(certs) = or_skip("the TLS test", tests::certs::make("tls")) else {
        return;
    };
    let Some(server) = or_skip("the TLS test", Server::start_tls(&certs)) else {
        return;
    };
    assert!(server.url.starts_with("rediss://127.0.0.1:"));
    cache_runtime::Config::builder()
        .redis_url(server.url.as_str())
        .key_prefix("tls:")
        .tls_ca(&certs.ca)
        .tls_client_cert(&certs.client_cert, &certs.client_key)
        .init()
        .expect("settings");

    assert_eq!(value(1), 1);
    assert_eq!(value(1), 1);
    assert_eq!(LOADS.load(SeqCst), 1, "the second call hit Redis, over TLS");
    assert_eq!(value_invalidate(1), Invalidation::Done);
    assert_eq!(invalidate_tag("tls:1"), Invalidation::Done);
    assert_eq!(value(1), 1);
    assert_eq!(LOADS.load(SeqCst), 2);
    assert_eq!(value_cache().clear(), Invalidation::Done);
    let s = value_cache().stats();
    assert_eq!((s.store_errors, s.store_skips), (0, 0), "{s:?}");
    assert_eq!(s.hits, 1);
}

/// Set by the parent for its child process (the test below, run again).
const CHILD: &str = "CACHE_TEST_TLS_ENV_CHILD";

static ENV_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 60, key = "{id}", name = "tls_env")]
fn from_env(id: u32) -> u32 {
    ENV_LOADS.fetch_add(1, SeqCst);
    id + 1
}

/// The same server and certificates, configured by the environment only (DESIGN §12): this
/// test runs itself again in a child process whose environment names the URL and the PEM
/// files; the child makes no `Config`. The server speaks only TLS and requires a client
/// certificate, and its CA is in no system store: any setting not read would be an outage,
/// seen as store errors.
#[test]
fn mutual_tls_configured_by_the_environment() {
    if std::env::var(CHILD).is_ok() {
        assert_eq!(from_env(1), 2);
        assert_eq!(from_env(1), 2);
        let s = from_env_cache().stats();
        assert_eq!((s.loads, s.hits), (1, 1), "a Redis hit, over TLS: {s:?}");
        assert_eq!((s.store_errors, s.store_skips), (0, 0), "{s:?}");
        return;
    }
    use tests::redis_server::{Server, or_skip};
    let Some(certs) = or_skip("the TLS test", tests::certs::make("tls-env")) else {
        return;
    };
    let Some(server) = or_skip("the TLS test", Server::start_tls(&certs)) else {
        return;
    };
    let mut child = tests::child::test("mutual_tls_configured_by_the_environment");
    child
        .env(CHILD, "1")
        .env("CACHE_REDIS_URL", &server.url)
        .env("CACHE_KEY_PREFIX", "tlsenv:")
        .env("CACHE_REDIS_TLS_CA", &certs.ca)
        .env("CACHE_REDIS_TLS_CERT", &certs.client_cert)
        .env("CACHE_REDIS_TLS_KEY", &certs.client_key);
    tests::child::passes(child);
}
