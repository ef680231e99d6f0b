//! Single-flight, the same on every backend: one load per key while many threads or tasks race
//! on a cold key, and a loader that fails, panics or is cancelled hands over to one waiter;
//! nobody hangs. These run on the build's default backend: in process in `cargo test
//! --workspace`, on Redis with `--features redis` (the second half of the README's test
//! command). The loaders that fail have a `lock_timeout` of a minute, so a hand-over that
//! waited for a lock to expire instead of taking over at once would fail the test (20 s).

mod common;

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use cache_runtime::cached;
use common::{Gate, wait_until, wait_until_async, within};

/// Starts `n` threads at once on `f` and collects their results.
fn race<T: Send + 'static>(n: usize, f: fn() -> T) -> Vec<std::thread::Result<T>> {
    let barrier = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                f()
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join()).collect()
}

// ---------------------------------------------------------------- threads

static COLD_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 60)]
fn cold(key: u32) -> u32 {
    COLD_LOADS.fetch_add(1, SeqCst);
    // Hold the load until every racer has missed, so that all of them race with it.
    wait_until("32 callers missed", || cold_cache().stats().misses == 32);
    key * 2
}

#[test]
fn thirty_two_threads_on_a_cold_key_cause_one_load() {
    if !common::backend_ready() {
        return;
    }
    let results = within(|| race(32, || cold(21)));
    assert!(results.into_iter().all(|r| r.ok() == Some(42)));
    assert_eq!(COLD_LOADS.load(SeqCst), 1);
    let s = cold_cache().stats();
    assert_eq!((s.misses, s.loads, s.waits), (32, 1, 31));
}

static ERR_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(lock_timeout = "60s")]
fn flaky(key: u32) -> Result<u32, String> {
    let n = ERR_LOADS.fetch_add(1, SeqCst);
    wait_until("8 callers missed", || flaky_cache().stats().misses == 8);
    if n == 0 {
        Err("first load fails".into())
    } else {
        Ok(key + n)
    }
}

#[test]
fn a_failed_load_hands_over_to_one_waiter() {
    if !common::backend_ready() {
        return;
    }
    let results = within(|| race(8, || flaky(10)));
    let results: Vec<_> = results.into_iter().map(|r| r.expect("no panic")).collect();
    assert_eq!(
        results.iter().filter(|r| r.is_err()).count(),
        1,
        "{results:?}"
    );
    assert_eq!(
        results.iter().filter(|r| **r == Ok(11)).count(),
        7,
        "{results:?}"
    );
    assert_eq!(ERR_LOADS.load(SeqCst), 2);
    let s = flaky_cache().stats();
    assert_eq!((s.misses, s.loads, s.load_errors, s.waits), (8, 2, 1, 6));
}

static LOCAL_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 60, lock = "local", lock_timeout = "60s")]
fn local_flight(key: u32) -> u32 {
    LOCAL_LOADS.fetch_add(1, SeqCst);
    wait_until("24 callers missed", || {
        local_flight_cache().stats().misses == 24
    });
    key * 3
}

/// Issue 9: every waiter of one flight gets its result, also with `lock = "local"` on Redis,
/// where a waiter used to wake after the leader had handed its result over and removed it, find
/// the flight gone, and load again.
#[test]
fn issue_9_every_waiter_of_one_flight_gets_its_result() {
    if !common::backend_ready() {
        return;
    }
    let results = within(|| race(24, || local_flight(7)));
    assert!(results.into_iter().all(|r| r.ok() == Some(21)));
    assert_eq!(LOCAL_LOADS.load(SeqCst), 1);
    let s = local_flight_cache().stats();
    assert_eq!((s.misses, s.loads, s.waits), (24, 1, 23));
}

static PANIC_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(lock_timeout = "60s")]
fn panicky(key: u32) -> u32 {
    let n = PANIC_LOADS.fetch_add(1, SeqCst);
    wait_until("8 callers missed", || panicky_cache().stats().misses == 8);
    assert!(
        n != 0,
        "the first load panics (this panic is part of the test)"
    );
    key + n
}

#[test]
fn a_panicking_load_hands_over_to_one_waiter() {
    if !common::backend_ready() {
        return;
    }
    let results = within(|| race(8, || panicky(10)));
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1);
    assert_eq!(results.iter().filter(|r| matches!(r, Ok(11))).count(), 7);
    assert_eq!(PANIC_LOADS.load(SeqCst), 2);
    let s = panicky_cache().stats();
    assert_eq!((s.loads, s.load_errors), (2, 1));
    assert_eq!(panicky(10), 11, "the cache still works after a panic");
}

static SLOW_GATE: std::sync::LazyLock<Gate> = std::sync::LazyLock::new(Gate::new);
static SLOW_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(lock_timeout = "100ms")]
fn slow(key: u32) -> u32 {
    let n = SLOW_LOADS.fetch_add(1, SeqCst);
    if n == 0 {
        SLOW_GATE.arrive_and_wait();
    }
    key + n
}

#[test]
fn a_waiter_loads_by_itself_after_lock_timeout() {
    if !common::backend_ready() {
        return;
    }
    let loader = std::thread::spawn(|| slow(1));
    SLOW_GATE.wait_for_arrival();
    // The loader is stuck: this caller waits 100 ms, then loads on its own.
    assert_eq!(within(|| slow(1)), 2);
    SLOW_GATE.open();
    assert_eq!(loader.join().expect("no panic"), 1);
    let s = slow_cache().stats();
    // The waiter ran the body itself: a load, not a wait (issue 22).
    assert_eq!((s.misses, s.loads, s.waits), (2, 2, 0));
}

static NOLOCK_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(lock = "none")]
fn unlocked(key: u32) -> u32 {
    NOLOCK_LOADS.fetch_add(1, SeqCst);
    wait_until("4 callers loaded", || NOLOCK_LOADS.load(SeqCst) == 4);
    key
}

#[test]
fn lock_none_lets_every_miss_load() {
    if !common::backend_ready() {
        return;
    }
    let results = within(|| race(4, || unlocked(3)));
    assert!(results.into_iter().all(|r| r.ok() == Some(3)));
    assert_eq!(unlocked_cache().stats().loads, 4);
    assert_eq!(unlocked(3), 3);
    assert_eq!(unlocked_cache().stats().hits, 1);
}

// ---------------------------------------------------------------- tasks

static TASK_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 60)]
async fn cold_async(key: u32) -> u32 {
    TASK_LOADS.fetch_add(1, SeqCst);
    wait_until_async("200 tasks missed", || {
        cold_async_cache().stats().misses == 200
    })
    .await;
    key * 2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_tasks_on_a_cold_key_cause_one_load() {
    if !common::backend_ready() {
        return;
    }
    let tasks: Vec<_> = (0..200).map(|_| tokio::spawn(cold_async(21))).collect();
    for t in tasks {
        let v = tokio::time::timeout(common::PATIENCE, t)
            .await
            .expect("no hang")
            .expect("no panic");
        assert_eq!(v, 42);
    }
    assert_eq!(TASK_LOADS.load(SeqCst), 1);
    let s = cold_async_cache().stats();
    assert_eq!((s.misses, s.loads, s.waits), (200, 1, 199));
}

static ASYNC_ERR_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(lock_timeout = "60s")]
async fn flaky_async(key: u32) -> Result<u32, String> {
    let n = ASYNC_ERR_LOADS.fetch_add(1, SeqCst);
    wait_until_async("20 tasks missed", || {
        flaky_async_cache().stats().misses == 20
    })
    .await;
    if n == 0 {
        Err("first load fails".into())
    } else {
        Ok(key + n)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_async_load_hands_over_to_one_waiter() {
    if !common::backend_ready() {
        return;
    }
    let tasks: Vec<_> = (0..20).map(|_| tokio::spawn(flaky_async(10))).collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(
            tokio::time::timeout(common::PATIENCE, t)
                .await
                .expect("no hang")
                .expect("ok"),
        );
    }
    assert_eq!(
        results.iter().filter(|r| r.is_err()).count(),
        1,
        "{results:?}"
    );
    assert_eq!(
        results.iter().filter(|r| **r == Ok(11)).count(),
        19,
        "{results:?}"
    );
    assert_eq!(flaky_async_cache().stats().loads, 2);
}

static CANCEL_LOADS: AtomicU32 = AtomicU32::new(0);

/// Its argument is borrowed: the body cannot leave its caller, so a cancelled caller's load is
/// dropped with it (issue 22 keeps every other load going: see below).
#[cached(lock_timeout = "60s")]
async fn cancellable(key: &u32) -> u32 {
    let n = CANCEL_LOADS.fetch_add(1, SeqCst);
    if n == 0 {
        // The first loader never finishes by itself: the test aborts it.
        std::future::pending::<()>().await;
    }
    key + n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_loader_future_hands_over_to_one_waiter() {
    if !common::backend_ready() {
        return;
    }
    let loader = tokio::spawn(cancellable(&5));
    wait_until_async("the first load started", || CANCEL_LOADS.load(SeqCst) == 1).await;
    let waiters: Vec<_> = (0..10).map(|_| tokio::spawn(cancellable(&5))).collect();
    wait_until_async("10 waiters missed", || {
        cancellable_cache().stats().misses == 11
    })
    .await;
    loader.abort();
    assert!(loader.await.expect_err("aborted").is_cancelled());
    for w in waiters {
        let v = tokio::time::timeout(common::PATIENCE, w)
            .await
            .expect("no hang")
            .expect("ok");
        assert_eq!(v, 6);
    }
    let s = cancellable_cache().stats();
    assert_eq!((s.loads, s.load_errors, s.waits), (2, 0, 9));
}

static IMPATIENT_LOADS: AtomicU32 = AtomicU32::new(0);
static IMPATIENT_GATE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(0);

#[cached(ttl = 60)]
async fn impatient(key: u32) -> u32 {
    IMPATIENT_LOADS.fetch_add(1, SeqCst);
    IMPATIENT_GATE.acquire().await.expect("open").forget();
    key * 10
}

/// Issue 22 (field reports aenix-io/aeman#109, cachex#178): callers wrapped in a timeout
/// shorter than the load never filled a cold key, and each started a load of its own. A load
/// belongs to its key: the first caller gives up, its load goes on, the impatient callers
/// after it start nothing, the patient ones are answered by it (and counted as waits), and
/// the next caller hits what it stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_22_a_load_goes_on_when_its_caller_is_cancelled() {
    if !common::backend_ready() {
        return;
    }
    let call = |patience_ms| tokio::time::timeout(Duration::from_millis(patience_ms), impatient(7));
    assert!(
        call(300).await.is_err(),
        "the load is held: the caller gives up"
    );
    assert_eq!(
        IMPATIENT_LOADS.load(SeqCst),
        1,
        "the first caller started the load"
    );
    for _ in 0..5 {
        assert!(call(100).await.is_err());
    }
    let patient: Vec<_> = (0..3).map(|_| tokio::spawn(impatient(7))).collect();
    wait_until_async("every caller missed", || {
        impatient_cache().stats().misses == 9
    })
    .await;
    assert_eq!(
        IMPATIENT_LOADS.load(SeqCst),
        1,
        "a cancelled caller's load was dropped, and another caller loaded again"
    );
    IMPATIENT_GATE.add_permits(1);
    for p in patient {
        let v = tokio::time::timeout(common::PATIENCE, p)
            .await
            .expect("no hang")
            .expect("ok");
        assert_eq!(v, 70);
    }
    assert_eq!(call(5_000).await, Ok(70), "stored: the next caller hits");
    let s = impatient_cache().stats();
    assert_eq!((s.misses, s.loads, s.waits, s.hits), (9, 1, 3, 1));
    assert_eq!(IMPATIENT_LOADS.load(SeqCst), 1);
}

static ASYNC_SLOW_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(lock_timeout = "100ms")]
async fn slow_async(key: u32) -> u32 {
    let n = ASYNC_SLOW_LOADS.fetch_add(1, SeqCst);
    if n == 0 {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    key + n
}

#[tokio::test(flavor = "current_thread")]
async fn an_async_waiter_loads_by_itself_after_lock_timeout() {
    if !common::backend_ready() {
        return;
    }
    let loader = tokio::spawn(slow_async(1));
    wait_until_async("the first load started", || {
        ASYNC_SLOW_LOADS.load(SeqCst) == 1
    })
    .await;
    let v = tokio::time::timeout(common::PATIENCE, slow_async(1))
        .await
        .expect("no hang");
    assert_eq!(v, 2);
    loader.abort();
    let s = slow_async_cache().stats();
    // The waiter ran the body itself: a load, not a wait (issue 22).
    assert_eq!((s.misses, s.loads, s.waits), (2, 2, 0));
}
