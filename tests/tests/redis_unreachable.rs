//! Redis never reachable, from the start: nothing blocks or fails at start-up, every call is
//! answered (by the body, through the in-process fallback), the hot key is loaded once, and
//! no call waits longer than the operation deadline.
#![cfg(feature = "redis")]

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

use cache_runtime::cached;

static LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 60, key = "{k}", name = "nowhere")]
fn nowhere(k: u32) -> Option<u32> {
    LOADS.fetch_add(1, SeqCst);
    (k > 0).then_some(k)
}

#[test]
fn a_program_without_redis_still_answers_quickly() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    cache_runtime::Config::builder()
        .redis_url(format!("redis://127.0.0.1:{port}"))
        .op_timeout(Duration::from_millis(100))
        .init()
        .expect("settings");
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    for _ in 0..1000 {
        let t = Instant::now();
        assert_eq!(nowhere(7), Some(7));
        slowest = slowest.max(t.elapsed());
    }
    assert_eq!(nowhere(0), None);
    assert_eq!(nowhere(0), None);
    let total = start.elapsed();
    let s = nowhere_cache().stats();
    eprintln!(
        "never reachable: 1002 calls in {total:.1?}, slowest {slowest:.1?}; loads {}, hits {}, \
         null hits {}, store errors {}",
        s.loads, s.hits, s.null_hits, s.store_errors
    );
    assert_eq!(
        LOADS.load(SeqCst),
        2,
        "the hot key and the null were each loaded once"
    );
    assert!(slowest < Duration::from_secs(1), "a call took {slowest:?}");
    assert!(s.store_errors >= 1);
}
