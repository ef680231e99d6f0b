//! Issue 14 (ACL): a user without the rights the library needs is an outage to the cache, never
//! an error to a caller, logged a few times rather than once per call, and its password is in
//! no log line. A server of its own, in a process of its own.
#![cfg(feature = "redis")]

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

use cache_runtime::cached;
use tracing::Level;

const PASSWORD: &str = "denied-s3cret-Pw";

static LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 60, key = "{id}", name = "denied")]
fn value(id: u32) -> u32 {
    LOADS.fetch_add(1, SeqCst);
    id * 2
}

#[test]
fn a_user_without_rights_is_an_outage_not_an_error() {
    let Some(server) = tests::redis_server::own_server("the ACL denial test") else {
        return;
    };
    tests::logs::capture();
    let mut admin = tests::redis_server::raw(&server.url);
    let () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg(&[
            "cache",
            "on",
            &format!(">{PASSWORD}"),
            "+@connection",
            "-get",
        ])
        .query(&mut admin)
        .expect("ACL SETUSER");
    let url = format!("redis://cache:{PASSWORD}@127.0.0.1:{}", server.port);
    cache_runtime::Config::builder()
        .redis_url(url.as_str())
        .key_prefix("denied:")
        .init()
        .expect("settings");

    for round in 0..200 {
        assert_eq!(
            value(round % 10),
            (round % 10) * 2,
            "every call is answered"
        );
    }
    let s = value_cache().stats();
    assert!(s.store_errors > 0, "the refusals are counted: {s:?}");
    assert!(
        LOADS.load(SeqCst) <= 10 + 10,
        "the in-process fallback serves meanwhile: {} loads",
        LOADS.load(SeqCst)
    );
    let warnings = tests::logs::at_least(Level::WARN);
    assert!(!warnings.is_empty(), "the outage is logged");
    assert!(
        warnings.len() <= 5,
        "logged a few times, not per call: {warnings:#?}"
    );
    let lines = tests::logs::lines();
    assert!(
        lines.iter().all(|l| !l.contains(PASSWORD)),
        "the password was logged: {lines:#?}"
    );
}
