//! Issue 10 (#6): settings that name no usable Redis (here a URL whose port does not parse) are
//! an outage, not a panic: the first call from async code used to panic inside the library
//! ("Cannot drop a runtime in a context where blocking is not allowed"). Every call is answered
//! by the in-process fallback, sync and async, and the skipped Redis operations are counted
//! apart from failures. Alone in its binary: the settings are per process.
#![cfg(feature = "redis")]

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

use cache_runtime::cached;

static LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 60, key = "{id}", name = "bad_url")]
async fn product(id: u32) -> u32 {
    LOADS.fetch_add(1, SeqCst);
    id * 2
}

#[cached(ttl = 60, key = "{id}", name = "bad_url_sync")]
fn product_sync(id: u32) -> u32 {
    LOADS.fetch_add(1, SeqCst);
    id * 3
}

#[test]
fn issue_10_a_url_that_does_not_parse_is_an_outage_not_a_panic() {
    cache_runtime::Config::builder()
        .redis_url("redis://127.0.0.1:notaport")
        .init()
        .expect("the builder checks only the scheme");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let (a, b) = rt.block_on(async { (product(4).await, product(4).await) });
    assert_eq!((a, b), (8, 8));
    // A sync call from inside the async runtime, and from a plain thread.
    let inside = rt.block_on(async { tokio::task::spawn_blocking(|| product_sync(5)).await });
    assert_eq!(inside.expect("joined"), 15);
    assert_eq!(product_sync(5), 15);
    assert_eq!(
        LOADS.load(SeqCst),
        2,
        "the fallback caches: one load per function"
    );
    let s = product_cache().stats();
    assert_eq!((s.misses, s.hits), (1, 1));
    assert!(s.store_skips >= 1, "{s:?}");
    assert_eq!(
        s.store_errors, 0,
        "a known outage is skipped, not failed: {s:?}"
    );
}
