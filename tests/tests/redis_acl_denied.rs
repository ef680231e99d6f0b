//! Issue 14 (ACL): a user without the rights the library needs is an outage to the cache, never
//! an error to a caller, logged once (one warning for the whole outage, across failed breaker
//! probes and every cache), and its password is in no log line. A server of its own, in a
//! process of its own.
#![cfg(feature = "redis")]

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

use cache_runtime::cached;
use tracing::Level;

const PASSWORD: &str = "denied-s3cret-Pw";

static LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 60, key = "{id}", name = "denied")]
fn value(id: u32) -> u32 {
    LOADS.fetch_add(1, SeqCst);
    id * 2
}

#[cached(ttl = 60, key = "{id}", name = "denied_other")]
fn other(id: u32) -> u32 {
    id + 1
}

/// A wrong password for the same user (a comma in it: it must not split the URL into nodes).
const WRONG_PASSWORD: &str = "wrong-Pa55,word";

/// Set by the parent for its child process: the same test with a wrong password (`WRONGPASS`
/// at every connection instead of `NOPERM` at every command).
const WRONG: &str = "CACHE_TEST_ACL_WRONG_PASSWORD";

#[test]
fn a_wrong_password_is_an_outage_not_an_error() {
    if std::env::var(WRONG).is_ok() {
        return; // the child runs the test below
    }
    let mut child = tests::child::test("a_user_without_rights_is_an_outage_not_an_error");
    child.env(WRONG, "1");
    tests::child::passes(child);
}

#[test]
fn a_user_without_rights_is_an_outage_not_an_error() {
    let wrong = std::env::var(WRONG).is_ok();
    let secret = if wrong { WRONG_PASSWORD } else { PASSWORD };
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
    let url = format!("redis://cache:{secret}@127.0.0.1:{}", server.port);
    const THRESHOLD: u64 = 3;
    cache_runtime::Config::builder()
        .redis_url(url.as_str())
        .key_prefix("denied:")
        .breaker_threshold(THRESHOLD as u32)
        .breaker_cooldown(Duration::from_millis(20))
        .init()
        .expect("settings");

    // Until the breaker opened and four of its probes failed (each probe is a refusal too),
    // in two caches.
    let give_up = Instant::now() + Duration::from_secs(30);
    let mut round = 0;
    while value_cache().stats().store_errors < THRESHOLD + 4 {
        assert!(Instant::now() < give_up, "{:?}", value_cache().stats());
        assert_eq!(
            value(round % 10),
            (round % 10) * 2,
            "every call is answered"
        );
        assert_eq!(other(round % 10), round % 10 + 1, "every call is answered");
        round += 1;
    }
    let s = value_cache().stats();
    assert!(s.store_skips > 0, "the breaker opened: {s:?}");
    assert!(other_cache().stats().store_errors > 0);
    assert!(
        LOADS.load(SeqCst) <= 10 + 10,
        "the in-process fallback serves meanwhile: {} loads",
        LOADS.load(SeqCst)
    );
    let warnings = tests::logs::at_least(Level::WARN);
    assert_eq!(
        warnings.len(),
        1,
        "one warning for the outage, not per call, cache or probe: {warnings:#?}"
    );
    let opened: Vec<String> = tests::logs::lines()
        .into_iter()
        .filter(|l| l.starts_with("INFO") && l.contains("circuit breaker open"))
        .collect();
    assert_eq!(
        opened.len(),
        1,
        "the breaker's first opening only: {opened:#?}"
    );
    let lines = tests::logs::lines();
    assert!(
        lines.iter().all(|l| !l.contains(secret)),
        "the password was logged: {lines:#?}"
    );
}
