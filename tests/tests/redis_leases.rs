//! Issue 10 (#1): a load slower than `lock_timeout` still publishes — the lease is renewed
//! while the body runs — with `lock = "distributed"`, `lock = "local"`, `f_refresh` and async
//! calls. Each body takes 800 ms against a `lock_timeout` of 300 ms (the scenario itself).
#![cfg(feature = "redis")]

mod common;

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::Duration;

use cache_runtime::cached;

const SLOW: Duration = Duration::from_millis(800);

static DISTRIBUTED: AtomicU32 = AtomicU32::new(0);
static LOCAL: AtomicU32 = AtomicU32::new(0);
static REFRESHED: AtomicU32 = AtomicU32::new(0);
static ASYNC: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 60, key = "{id}", lock_timeout = "300ms")]
fn slow_distributed(id: u32) -> u32 {
    DISTRIBUTED.fetch_add(1, SeqCst);
    std::thread::sleep(SLOW);
    id
}

#[cached(ttl = 60, key = "{id}", lock = "local", lock_timeout = "300ms")]
fn slow_local(id: u32) -> u32 {
    LOCAL.fetch_add(1, SeqCst);
    std::thread::sleep(SLOW);
    id
}

#[cached(ttl = 60, key = "{id}", lock_timeout = "300ms")]
fn slow_refreshed(id: u32) -> u32 {
    REFRESHED.fetch_add(1, SeqCst);
    std::thread::sleep(SLOW);
    id
}

#[cached(ttl = 60, key = "{id}", lock_timeout = "300ms")]
async fn slow_async(id: u32) -> u32 {
    ASYNC.fetch_add(1, SeqCst);
    tokio::time::sleep(SLOW).await;
    id
}

#[test]
fn issue_10_a_load_slower_than_lock_timeout_is_published() {
    if !common::backend_ready() {
        return;
    }
    let threads = [
        std::thread::spawn(|| {
            assert_eq!(slow_distributed(1), 1);
            assert_eq!(slow_distributed(1), 1);
        }),
        std::thread::spawn(|| {
            assert_eq!(slow_local(1), 1);
            assert_eq!(slow_local(1), 1);
        }),
        std::thread::spawn(|| {
            assert_eq!(slow_refreshed_refresh(1), 1);
            assert_eq!(slow_refreshed(1), 1);
        }),
        std::thread::spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async {
                assert_eq!(slow_async(1).await, 1);
                assert_eq!(slow_async(1).await, 1);
            });
        }),
    ];
    for t in threads {
        t.join().expect("no panic");
    }
    assert_eq!(DISTRIBUTED.load(SeqCst), 1, "lock = distributed: published");
    assert_eq!(LOCAL.load(SeqCst), 1, "lock = local: published");
    assert_eq!(REFRESHED.load(SeqCst), 1, "f_refresh: published");
    assert_eq!(ASYNC.load(SeqCst), 1, "async: published");
    assert_eq!(slow_distributed_cache().stats().hits, 1);
}
