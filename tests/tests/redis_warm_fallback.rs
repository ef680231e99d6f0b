//! Issue 10 (#8): an outage does not reload the working set. What this process read from or
//! wrote to Redis is kept in its in-process fallback, so when Redis dies the keys it already
//! had are answered without a load. One test, in a process of its own, with a `redis-server`
//! of its own that it kills.
#![cfg(feature = "redis")]

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::Duration;

use cache_runtime::cached;

static LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 60, key = "{id}", name = "warm")]
fn product(id: u32) -> u32 {
    LOADS.fetch_add(1, SeqCst);
    id * 2
}

static ASYNC_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 60, key = "{id}", name = "warm_async")]
async fn product_async(id: u32) -> u32 {
    ASYNC_LOADS.fetch_add(1, SeqCst);
    id * 3
}

#[test]
fn issue_10_an_outage_serves_the_keys_this_process_had() {
    let Some(server) = tests::redis_server::own_server("the warm fallback test") else {
        return;
    };
    cache_runtime::Config::builder()
        .redis_url(server.url.as_str())
        .key_prefix(format!("warm{}:", std::process::id()))
        .op_timeout(Duration::from_millis(100))
        .init()
        .expect("settings");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    // 100 keys written by this process (misses), and 100 read from Redis (hits).
    for id in 0..200 {
        assert_eq!(product(id), id * 2);
        assert_eq!(rt.block_on(product_async(id)), id * 3);
    }
    for id in 100..200 {
        assert!(product_invalidate(id).is_done());
        assert!(rt.block_on(product_async_invalidate(id)).is_done());
    }
    for id in 0..200 {
        assert_eq!(product(id), id * 2);
        assert_eq!(rt.block_on(product_async(id)), id * 3);
    }
    let (loads, async_loads) = (LOADS.load(SeqCst), ASYNC_LOADS.load(SeqCst));
    assert_eq!((loads, async_loads), (300, 300));

    server.stop();
    for id in 0..200 {
        assert_eq!(product(id), id * 2);
        assert_eq!(rt.block_on(product_async(id)), id * 3);
    }
    assert_eq!(
        (LOADS.load(SeqCst), ASYNC_LOADS.load(SeqCst)),
        (loads, async_loads),
        "the outage loaded keys this process had read or written"
    );
}
