//! Invalidation never loses to a load in flight: the load's callers get its result, but the
//! cache does not keep it. On the build's default backend: in process, and on Redis with
//! `--features redis`.

mod common;

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

use cache_runtime::cached;
use common::{Gate, wait_until_async, within};

/// The "database": a version the tests bump, read by every loader.
static VERSION: AtomicU32 = AtomicU32::new(1);

static GATE: LazyLock<Gate> = LazyLock::new(Gate::new);
static GATED_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 3600)]
fn gated(key: u32) -> String {
    let version = VERSION.load(SeqCst);
    if GATED_LOADS.fetch_add(1, SeqCst) == 0 {
        GATE.arrive_and_wait();
    }
    format!("{key}@v{version}")
}

#[test]
fn an_invalidation_during_a_load_keeps_its_result_out() {
    if !common::backend_ready() {
        return;
    }
    let loader = std::thread::spawn(|| gated(1));
    GATE.wait_for_arrival(); // the load read v1 and is in flight
    VERSION.store(2, SeqCst);
    assert!(gated_invalidate(1).is_done());
    GATE.open();
    assert_eq!(
        loader.join().expect("no panic"),
        "1@v1",
        "the caller gets its own result"
    );
    assert_eq!(within(|| gated(1)), "1@v2", "the stale v1 was written back");
    assert_eq!(gated(1), "1@v2");
    let s = gated_cache().stats();
    assert_eq!((s.loads, s.hits), (2, 1));
}

static NOLOCK_GATE: LazyLock<Gate> = LazyLock::new(Gate::new);
static NOLOCK_VERSION: AtomicU32 = AtomicU32::new(1);
static NOLOCK_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(lock = "none")]
fn gated_unlocked(key: u32) -> String {
    let version = NOLOCK_VERSION.load(SeqCst);
    if NOLOCK_LOADS.fetch_add(1, SeqCst) == 0 {
        NOLOCK_GATE.arrive_and_wait();
    }
    format!("{key}@v{version}")
}

#[test]
fn the_fence_holds_without_single_flight_too() {
    if !common::backend_ready() {
        return;
    }
    let loader = std::thread::spawn(|| gated_unlocked(1));
    NOLOCK_GATE.wait_for_arrival();
    NOLOCK_VERSION.store(2, SeqCst);
    assert!(gated_unlocked_invalidate(1).is_done());
    NOLOCK_GATE.open();
    assert_eq!(loader.join().expect("no panic"), "1@v1");
    assert_eq!(gated_unlocked(1), "1@v2");
}

static REFRESH_GATE: LazyLock<Gate> = LazyLock::new(Gate::new);
static REFRESH_VERSION: AtomicU32 = AtomicU32::new(1);
static REFRESH_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached]
fn refreshed(key: u32) -> String {
    let version = REFRESH_VERSION.load(SeqCst);
    if REFRESH_LOADS.fetch_add(1, SeqCst) == 1 {
        REFRESH_GATE.arrive_and_wait();
    }
    format!("{key}@v{version}")
}

#[test]
fn a_refresh_in_flight_loses_to_an_invalidation() {
    if !common::backend_ready() {
        return;
    }
    assert_eq!(refreshed(1), "1@v1");
    let refresher = std::thread::spawn(|| refreshed_refresh(1));
    REFRESH_GATE.wait_for_arrival();
    REFRESH_VERSION.store(2, SeqCst);
    assert!(refreshed_invalidate(1).is_done());
    REFRESH_GATE.open();
    assert_eq!(refresher.join().expect("no panic"), "1@v1");
    assert_eq!(refreshed(1), "1@v2");
}

static CLEAR_GATE: LazyLock<Gate> = LazyLock::new(Gate::new);
static CLEAR_VERSION: AtomicU32 = AtomicU32::new(1);
static CLEAR_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached]
fn cleared(key: u32) -> String {
    let version = CLEAR_VERSION.load(SeqCst);
    if CLEAR_LOADS.fetch_add(1, SeqCst) == 0 {
        CLEAR_GATE.arrive_and_wait();
    }
    format!("{key}@v{version}")
}

#[test]
fn clear_fences_every_load_in_flight() {
    if !common::backend_ready() {
        return;
    }
    let loader = std::thread::spawn(|| cleared(1));
    CLEAR_GATE.wait_for_arrival();
    CLEAR_VERSION.store(2, SeqCst);
    assert!(cleared_cache().clear().is_done());
    CLEAR_GATE.open();
    assert_eq!(loader.join().expect("no panic"), "1@v1");
    assert_eq!(cleared(1), "1@v2");
}

static OTHER_KEY_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached]
fn two_keys(key: u32) -> u32 {
    OTHER_KEY_LOADS.fetch_add(1, SeqCst);
    key
}

#[test]
fn invalidating_one_key_keeps_the_others() {
    if !common::backend_ready() {
        return;
    }
    assert_eq!(two_keys(1), 1);
    assert_eq!(two_keys(2), 2);
    assert!(two_keys_invalidate(1).is_done());
    assert_eq!(two_keys(2), 2);
    assert_eq!(two_keys(1), 1);
    assert_eq!(OTHER_KEY_LOADS.load(SeqCst), 3);
}

static ASYNC_VERSION: AtomicU32 = AtomicU32::new(1);
static ASYNC_LOADS: AtomicU32 = AtomicU32::new(0);
static ASYNC_OPEN: tokio::sync::Notify = tokio::sync::Notify::const_new();

#[cached]
async fn gated_async(key: u32) -> String {
    let version = ASYNC_VERSION.load(SeqCst);
    if ASYNC_LOADS.fetch_add(1, SeqCst) == 0 {
        ASYNC_OPEN.notified().await;
    }
    format!("{key}@v{version}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_during_an_async_load_keeps_its_result_out() {
    if !common::backend_ready() {
        return;
    }
    let loader = tokio::spawn(gated_async(1));
    wait_until_async("the load started", || ASYNC_LOADS.load(SeqCst) == 1).await;
    ASYNC_VERSION.store(2, SeqCst);
    assert!(gated_async_invalidate(1).await.is_done());
    ASYNC_OPEN.notify_one();
    assert_eq!(loader.await.expect("no panic"), "1@v1");
    assert_eq!(gated_async(1).await, "1@v2");
    assert_eq!(gated_async(1).await, "1@v2");
    assert_eq!(gated_async_cache().stats().loads, 2);
}

static STORM_DB: common::StormDb = [const { AtomicU32::new(0) }; 4];

#[cached]
fn storm_local(key: usize) -> u32 {
    common::slow_read(&STORM_DB, key)
}

#[cached(lock = "none")]
fn storm_unlocked(key: usize) -> u32 {
    common::slow_read(&STORM_DB, key)
}

/// No stale value survives a storm of reads, refreshes and invalidations (see `common::storm`).
#[test]
fn invalidation_storms_leave_no_stale_value() {
    if !common::backend_ready() {
        return;
    }
    within(|| {
        common::storm(
            &STORM_DB,
            2_000,
            storm_local,
            storm_local_invalidate,
            storm_local_refresh,
        );
    });
    within(|| {
        let (read, invalidate, refresh) = (
            storm_unlocked,
            storm_unlocked_invalidate,
            storm_unlocked_refresh,
        );
        common::storm(&STORM_DB, 2_000, read, invalidate, refresh);
    });
}
