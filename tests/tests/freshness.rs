//! Issue 11: freshness phases — stale-while-revalidate, stale-if-error with its throttle,
//! `load_timeout`, XFetch early refresh, and invalidation in every phase — on the build's
//! default backend: in process in `cargo test --workspace`, on Redis with `--features redis`
//! (where the envelope's times are read back on the moved clock, and leases coordinate).
//!
//! The cache clock is process-wide and `clock::advance` moves it for every cache, so these
//! tests run one at a time (`serial`) in a test binary of their own. Each has its own cached
//! function and counters. Loads that must be slow sleep in real time; phases are reached by
//! moving the clock.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Barrier, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cache_runtime::{cached, clock};

static SERIAL: Mutex<()> = Mutex::new(());

/// Runs one test at a time; `None` when the backend cannot run (see `common`).
fn serial() -> Option<MutexGuard<'static, ()>> {
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    common::backend_ready().then_some(guard)
}

/// Polls `done` until it holds, for at most 20 s.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < give_up, "never: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `call` on `n` threads released together; returns each call's answer and duration.
fn together<T: Send + 'static>(
    n: usize,
    call: impl Fn() -> T + Send + Sync + 'static,
) -> Vec<(T, Duration)> {
    let call = Arc::new(call);
    let barrier = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (call, barrier) = (Arc::clone(&call), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                let started = Instant::now();
                let answer = call();
                (answer, started.elapsed())
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// A tokio runtime of two workers, for the async tests.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

const SLOW: Duration = Duration::from_millis(600);

static SWR_LOADS: AtomicU64 = AtomicU64::new(0);

/// Answers with the number of its load: 1, then 2, ...
#[cached(ttl = 10, stale = 60, jitter = 0)]
fn swr(id: u32) -> u64 {
    let n = SWR_LOADS.fetch_add(1, SeqCst) + 1;
    if n > 1 {
        std::thread::sleep(SLOW);
    }
    u64::from(id) * 100 + n
}

#[test]
fn issue_11_stale_callers_answer_at_once_and_one_revalidation_runs_in_the_background() {
    let Some(_serial) = serial() else { return };
    assert_eq!(swr(1), 101);
    clock::advance(Duration::from_secs(11)); // stale: within `stale` after expiry
    let answers = together(64, || swr(1));
    for (value, took) in &answers {
        assert_eq!(*value, 101, "a stale caller got something else");
        assert!(
            *took < SLOW / 2,
            "a stale caller waited {took:?} for the revalidation"
        );
    }
    assert_eq!(swr_cache().stats().stale_hits, 64);
    eventually("the revalidation stored its value", || swr(1) == 102);
    assert_eq!(SWR_LOADS.load(SeqCst), 2, "exactly one revalidation");
    let s = swr_cache().stats();
    assert_eq!((s.refreshes, s.loads), (1, 2));
    // Past `stale` too: a miss, loaded by the caller.
    clock::advance(Duration::from_secs(75));
    assert_eq!(swr(1), 103);
}

static SWR_ASYNC_LOADS: AtomicU64 = AtomicU64::new(0);

#[cached(ttl = 10, stale = 60, jitter = 0)]
async fn swr_async(id: u32) -> u64 {
    let n = SWR_ASYNC_LOADS.fetch_add(1, SeqCst) + 1;
    if n > 1 {
        tokio::time::sleep(SLOW).await;
    }
    u64::from(id) * 100 + n
}

#[test]
fn issue_11_async_stale_callers_answer_at_once_and_the_revalidation_is_a_task() {
    let Some(_serial) = serial() else { return };
    let runtime = runtime();
    runtime.block_on(async {
        assert_eq!(swr_async(2).await, 201);
        clock::advance(Duration::from_secs(11));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                tokio::spawn(async {
                    let started = Instant::now();
                    (swr_async(2).await, started.elapsed())
                })
            })
            .collect();
        for task in tasks {
            let (value, took) = task.await.unwrap();
            assert_eq!(value, 201);
            assert!(took < SLOW / 2, "a stale task waited {took:?}");
        }
        assert_eq!(swr_async_cache().stats().stale_hits, 64);
        let give_up = Instant::now() + Duration::from_secs(20);
        while swr_async(2).await != 202 {
            assert!(Instant::now() < give_up, "the revalidation never stored");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    assert_eq!(SWR_ASYNC_LOADS.load(SeqCst), 2);
    assert_eq!(swr_async_cache().stats().refreshes, 1);
}

static IN_PLACE_LOADS: AtomicU64 = AtomicU64::new(0);

/// Borrows its argument: the body cannot leave its caller, so the caller that wins the
/// revalidation runs it.
#[cached(ttl = 10, stale = 60, jitter = 0)]
fn swr_borrowed(name: &str) -> String {
    let n = IN_PLACE_LOADS.fetch_add(1, SeqCst) + 1;
    if n > 1 {
        std::thread::sleep(SLOW);
    }
    format!("{name}{n}")
}

#[test]
fn issue_11_a_body_that_borrows_is_revalidated_by_one_caller_and_the_others_do_not_wait() {
    let Some(_serial) = serial() else { return };
    assert_eq!(swr_borrowed("a"), "a1");
    clock::advance(Duration::from_secs(11));
    let answers = together(16, || swr_borrowed("a"));
    let paid: Vec<_> = answers.iter().filter(|(_, took)| *took >= SLOW).collect();
    assert_eq!(paid.len(), 1, "one caller revalidates: {answers:?}");
    assert_eq!(paid[0].0, "a2", "it answers with the fresh value");
    for (value, took) in answers.iter().filter(|(_, took)| *took < SLOW) {
        assert_eq!(value, "a1");
        assert!(*took < SLOW / 2, "a stale caller waited {took:?}");
    }
    assert_eq!(IN_PLACE_LOADS.load(SeqCst), 2);
    assert_eq!(swr_borrowed("a"), "a2");
    // Each call counted once: the revalidating caller as a stale hit too, not as a miss.
    let s = swr_borrowed_cache().stats();
    assert_eq!((s.misses, s.stale_hits, s.refreshes, s.hits), (1, 16, 1, 1));
}

static FAILING: AtomicBool = AtomicBool::new(false);
static SIE_LOADS: AtomicU32 = AtomicU32::new(0);

/// `ttl` 10 s: the throttle after a failure is min(5 s, ttl) = 5 s.
#[cached(ttl = 10, stale_if_error = "10m", jitter = 0)]
fn fail_safe(id: u32) -> Result<u32, String> {
    let n = SIE_LOADS.fetch_add(1, SeqCst) + 1;
    if FAILING.load(SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
        return Err(format!("database down (load {n})"));
    }
    Ok(id * 100 + n)
}

#[test]
fn issue_11_a_failing_load_answers_with_the_kept_value_once_per_throttle() {
    let Some(_serial) = serial() else { return };
    assert_eq!(fail_safe(3), Ok(301));
    clock::advance(Duration::from_secs(11)); // expired, within `stale_if_error`
    FAILING.store(true, SeqCst);
    let answers = together(16, || fail_safe(3));
    assert!(answers.iter().all(|(v, _)| *v == Ok(301)), "{answers:?}");
    assert_eq!(SIE_LOADS.load(SeqCst), 2, "one load for 16 callers");
    // Within the throttle: no load at all.
    clock::advance(Duration::from_secs(4));
    assert_eq!(fail_safe(3), Ok(301));
    assert_eq!(SIE_LOADS.load(SeqCst), 2, "a load within the throttle");
    // The throttle ended: one new load, still failing.
    clock::advance(Duration::from_secs(2));
    assert_eq!(fail_safe(3), Ok(301));
    assert_eq!(fail_safe(3), Ok(301));
    assert_eq!(SIE_LOADS.load(SeqCst), 3, "one load per throttle window");
    // The database is back: the next window loads the fresh value.
    FAILING.store(false, SeqCst);
    clock::advance(Duration::from_secs(6));
    assert_eq!(fail_safe(3), Ok(304));
    let s = fail_safe_cache().stats();
    assert_eq!(s.load_errors, 2);
    assert_eq!(s.stale_if_error_hits, 16 + 1 + 2);
    // Without a kept value an error is returned as always.
    FAILING.store(true, SeqCst);
    assert!(fail_safe(4).is_err());
    FAILING.store(false, SeqCst);
}

static TAGGED_FAILING: AtomicBool = AtomicBool::new(false);
/// The tag the failing load invalidates while it runs.
static INVALIDATE_DURING: Mutex<&str> = Mutex::new("");

/// Issue 13: a load that fails answers with the kept value only if none of the value's tags
/// was invalidated meanwhile (another tag's invalidation does not matter).
#[cached(ttl = 10, stale_if_error = "10m", jitter = 0, key = "{id}", tags = ["sie:{id}"])]
fn tagged_fail_safe(id: u32) -> Result<u32, String> {
    if TAGGED_FAILING.load(SeqCst) {
        let tag = *INVALIDATE_DURING.lock().unwrap();
        assert!(cache_runtime::invalidate_tag(tag).is_done());
        return Err("database down".into());
    }
    Ok(id * 100)
}

#[test]
fn issue_13_a_kept_value_answers_a_failed_load_unless_its_tag_was_invalidated() {
    let Some(_serial) = serial() else { return };
    assert_eq!(tagged_fail_safe(1), Ok(100));
    assert_eq!(tagged_fail_safe(2), Ok(200));
    clock::advance(Duration::from_secs(11)); // both expired, within `stale_if_error`
    TAGGED_FAILING.store(true, SeqCst);
    // Another entry's tag is invalidated while key 1's load runs: key 1's value still answers.
    *INVALIDATE_DURING.lock().unwrap() = "sie:2";
    assert_eq!(tagged_fail_safe(1), Ok(100));
    // Key 1's own tag is invalidated while its next load runs: its value is gone.
    clock::advance(Duration::from_secs(6)); // the throttle ended
    *INVALIDATE_DURING.lock().unwrap() = "sie:1";
    assert_eq!(tagged_fail_safe(1), Err("database down".into()));
    assert_eq!(
        tagged_fail_safe(1),
        Err("database down".into()),
        "and stays gone"
    );
    TAGGED_FAILING.store(false, SeqCst);
    assert_eq!(tagged_fail_safe(1), Ok(100));
}

static OTHER_TAGS_FAILING: AtomicBool = AtomicBool::new(false);

/// A tag placeholder outside the key: calls of one key may render other tags.
#[cached(ttl = 10, stale_if_error = "10m", jitter = 0, key = "{id}", tags = ["sie2:{category}"])]
fn categorized(id: u32, category: &str) -> Result<String, String> {
    if OTHER_TAGS_FAILING.load(SeqCst) {
        return Err("database down".into());
    }
    Ok(format!("{id} in {category}"))
}

/// Found in review: a kept value answering a failed load of the same key under other tags must
/// not be written back under those tags (an invalidation of its own tag would then miss it).
#[test]
fn issue_13_a_kept_value_keeps_the_tags_it_was_loaded_with() {
    let Some(_serial) = serial() else { return };
    assert_eq!(categorized(1, "tea"), Ok("1 in tea".into()));
    clock::advance(Duration::from_secs(11));
    OTHER_TAGS_FAILING.store(true, SeqCst);
    // In process the kept value may answer (the key is the same); on Redis the tags differ,
    // so it is a miss. Either way it is not re-armed under `sie2:coffee`.
    let _ = categorized(1, "coffee");
    assert!(cache_runtime::invalidate_tag("sie2:tea").is_done());
    assert_eq!(
        categorized(1, "tea"),
        Err("database down".into()),
        "the value tagged `sie2:tea` was invalidated"
    );
    OTHER_TAGS_FAILING.store(false, SeqCst);
}

static PANICKING: AtomicBool = AtomicBool::new(false);
static PANIC_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 10, stale_if_error = "10m", jitter = 0)]
fn panics_sometimes(id: u32) -> u32 {
    let n = PANIC_LOADS.fetch_add(1, SeqCst) + 1;
    assert!(!PANICKING.load(SeqCst), "the loader panicked");
    id * 100 + n
}

#[test]
fn issue_11_a_panicking_load_answers_with_the_kept_value() {
    let Some(_serial) = serial() else { return };
    assert_eq!(panics_sometimes(5), 501);
    clock::advance(Duration::from_secs(11));
    PANICKING.store(true, SeqCst);
    let answers = together(8, || panics_sometimes(5));
    assert!(answers.iter().all(|(v, _)| *v == 501), "{answers:?}");
    assert_eq!(PANIC_LOADS.load(SeqCst), 2);
    PANICKING.store(false, SeqCst);
    clock::advance(Duration::from_secs(6));
    assert_eq!(panics_sometimes(5), 503);
    assert_eq!(panics_sometimes_cache().stats().load_errors, 1);
}

static HANGING: AtomicBool = AtomicBool::new(false);
static HANG_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 10, stale_if_error = "10m", load_timeout = "100ms", jitter = 0)]
fn hangs_sometimes(id: u32) -> u32 {
    let n = HANG_LOADS.fetch_add(1, SeqCst) + 1;
    if HANGING.load(SeqCst) {
        std::thread::sleep(Duration::from_millis(1500));
    }
    id * 100 + n
}

#[test]
fn issue_11_a_load_past_load_timeout_answers_with_the_kept_value_and_stores_when_it_ends() {
    let Some(_serial) = serial() else { return };
    assert_eq!(hangs_sometimes(6), 601);
    clock::advance(Duration::from_secs(11));
    HANGING.store(true, SeqCst);
    let answers = together(8, || hangs_sometimes(6));
    for (value, took) in &answers {
        assert_eq!(*value, 601);
        assert!(*took < Duration::from_millis(1000), "waited {took:?}");
    }
    assert_eq!(HANG_LOADS.load(SeqCst), 2, "one load for 8 callers");
    // The late load goes on, and its value is stored when it ends.
    eventually("the late load stored its value", || {
        hangs_sometimes(6) == 602
    });
    assert_eq!(HANG_LOADS.load(SeqCst), 2);
    HANGING.store(false, SeqCst);
}

static HANG_ASYNC_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 10, stale_if_error = "10m", load_timeout = "100ms", jitter = 0)]
async fn hangs_async(id: u32) -> u32 {
    let n = HANG_ASYNC_LOADS.fetch_add(1, SeqCst) + 1;
    if n > 1 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    id * 100 + n
}

#[test]
fn issue_11_an_async_load_past_load_timeout_goes_on_as_a_task() {
    let Some(_serial) = serial() else { return };
    let runtime = runtime();
    runtime.block_on(async {
        assert_eq!(hangs_async(7).await, 701);
        clock::advance(Duration::from_secs(11));
        let started = Instant::now();
        assert_eq!(hangs_async(7).await, 701);
        assert!(started.elapsed() < Duration::from_millis(1000));
        let give_up = Instant::now() + Duration::from_secs(20);
        while hangs_async(7).await != 702 {
            assert!(Instant::now() < give_up, "the late load never stored");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    assert_eq!(HANG_ASYNC_LOADS.load(SeqCst), 2);
}

static SLOW_FAILING: AtomicBool = AtomicBool::new(false);
static SLOW_FAIL_LOADS: AtomicU32 = AtomicU32::new(0);

/// Waiters give up on another caller's load after 100 ms; a load takes 400 ms, and fails.
#[cached(ttl = 10, stale_if_error = "10m", lock_timeout = "100ms", jitter = 0)]
fn slow_and_failing(id: u32) -> Result<u32, String> {
    let n = SLOW_FAIL_LOADS.fetch_add(1, SeqCst) + 1;
    if SLOW_FAILING.load(SeqCst) {
        std::thread::sleep(Duration::from_millis(400));
        return Err(format!("database down (load {n})"));
    }
    Ok(id * 100 + n)
}

#[test]
fn issue_11_callers_that_stop_waiting_for_a_failing_load_still_get_the_kept_value() {
    let Some(_serial) = serial() else { return };
    assert_eq!(slow_and_failing(2), Ok(201));
    clock::advance(Duration::from_secs(11));
    SLOW_FAILING.store(true, SeqCst);
    // The first caller's load hides the entry behind its placeholder; the others wait 100 ms,
    // then load themselves: each failure is answered with the kept value, never an error.
    let answers = together(4, || slow_and_failing(2));
    assert!(answers.iter().all(|(v, _)| *v == Ok(201)), "{answers:?}");
    SLOW_FAILING.store(false, SeqCst);
}

static EARLY_LOADS: AtomicU32 = AtomicU32::new(0);
static EARLY_NEVER_LOADS: AtomicU32 = AtomicU32::new(0);

/// A load of 50 ms (δ), `ttl` 1 s: XFetch starts refreshing ~δ·β before expiry.
#[cached(ttl = 1, early_refresh = 1.0, jitter = 0)]
fn early(trial: u32) -> u32 {
    std::thread::sleep(Duration::from_millis(50));
    EARLY_LOADS.fetch_add(1, SeqCst);
    trial
}

#[cached(ttl = 1, early_refresh = 0.0, jitter = 0)]
fn never_early(trial: u32) -> u32 {
    std::thread::sleep(Duration::from_millis(50));
    EARLY_NEVER_LOADS.fetch_add(1, SeqCst);
    trial
}

/// Reads `trial` every millisecond for 1.3 s; whether a call ever took a load's time (a
/// miss at expiry).
fn read_across_expiry(call: fn(u32) -> u32, trial: u32) -> bool {
    assert_eq!(call(trial), trial); // the first load
    let until = Instant::now() + Duration::from_millis(1300);
    let mut missed = false;
    while Instant::now() < until {
        let started = Instant::now();
        assert_eq!(call(trial), trial);
        missed |= started.elapsed() >= Duration::from_millis(40);
        std::thread::sleep(Duration::from_millis(1));
    }
    missed
}

#[test]
fn issue_11_xfetch_refreshes_a_hot_key_before_it_expires() {
    let Some(_serial) = serial() else { return };
    let trials: Vec<_> = (0..16)
        .map(|trial| std::thread::spawn(move || read_across_expiry(early, trial)))
        .collect();
    let missed = trials
        .into_iter()
        .map(|t| t.join())
        .filter(|missed| matches!(missed, Ok(true)))
        .count();
    assert!(missed <= 1, "{missed} of 16 hot keys missed at expiry");
    let s = early_cache().stats();
    assert!(s.refreshes >= 15, "{s:?}");
    assert_eq!(s.misses, 16 + missed as u64, "{s:?}");
    // With β = 0 every trial misses at expiry.
    let trials: Vec<_> = (0..4)
        .map(|trial| std::thread::spawn(move || read_across_expiry(never_early, trial)))
        .collect();
    assert!(trials.into_iter().all(|t| matches!(t.join(), Ok(true))));
    assert_eq!(never_early_cache().stats().refreshes, 0);
}

static DELETED_FAILING: AtomicBool = AtomicBool::new(false);

#[cached(
    ttl = 10,
    stale_if_error = "10m",
    key = "{id}",
    name = "fresh_deleted",
    jitter = 0
)]
fn deleted_while_failing(id: u32) -> Result<u32, String> {
    if DELETED_FAILING.load(SeqCst) {
        std::thread::sleep(Duration::from_millis(300));
        return Err("down".into());
    }
    Ok(id)
}

/// On Redis, another service (or `redis-cli DEL`) deletes the value key while a load that
/// holds the lease fails: the kept value is not written back over the deletion.
#[cfg(feature = "redis")]
#[test]
fn issue_11_a_kept_value_is_never_written_over_a_deleted_key() {
    let Some(_serial) = serial() else { return };
    assert_eq!(deleted_while_failing(5), Ok(5));
    clock::advance(Duration::from_secs(11));
    DELETED_FAILING.store(true, SeqCst);
    let key = format!("t{}:fresh_deleted:5", std::process::id());
    let url = tests::redis_server::url().expect("a server");
    let loader = std::thread::spawn(|| deleted_while_failing(5));
    std::thread::sleep(Duration::from_millis(100)); // the load holds the lease now
    let mut con = tests::redis_server::raw(url);
    let _: i64 = redis::cmd("DEL").arg(&key).query(&mut con).unwrap();
    assert_eq!(
        loader.join().unwrap(),
        Ok(5),
        "the caller still gets the kept value"
    );
    let left: Option<Vec<u8>> = redis::cmd("GET").arg(&key).query(&mut con).unwrap();
    assert_eq!(
        left, None,
        "the kept value was written back over the deletion"
    );
    assert!(
        deleted_while_failing(5).is_err(),
        "nothing is kept any more"
    );
    DELETED_FAILING.store(false, SeqCst);
}

static INVALIDATED_LOADS: AtomicU32 = AtomicU32::new(0);
static INVALIDATED_FAILING: AtomicBool = AtomicBool::new(false);

#[cached(ttl = 10, stale = 30, stale_if_error = 60, jitter = 0)]
fn invalidated(id: u32) -> Result<u32, String> {
    let n = INVALIDATED_LOADS.fetch_add(1, SeqCst) + 1;
    if INVALIDATED_FAILING.load(SeqCst) {
        return Err("down".into());
    }
    if n == 3 {
        // The revalidation of the second test step: slow, invalidated while it runs.
        std::thread::sleep(SLOW);
    }
    Ok(id * 100 + n)
}

#[test]
fn issue_11_invalidation_removes_an_entry_in_every_phase() {
    let Some(_serial) = serial() else { return };
    // Stale: after `f_invalidate`, a miss (the caller loads), never the stale value.
    assert_eq!(invalidated(8), Ok(801));
    clock::advance(Duration::from_secs(11));
    let _ = invalidated_invalidate(8);
    assert_eq!(invalidated(8), Ok(802));
    // A revalidation in flight during an invalidation never stores its value.
    clock::advance(Duration::from_secs(11));
    assert_eq!(invalidated(8), Ok(802), "stale, revalidation started");
    eventually("the revalidation started", || {
        INVALIDATED_LOADS.load(SeqCst) == 3
    });
    let _ = invalidated_invalidate(8);
    std::thread::sleep(SLOW + Duration::from_millis(200));
    assert_eq!(
        invalidated(8),
        Ok(804),
        "the revalidation's value was stored"
    );
    // Kept for `stale_if_error`: after `f_invalidate`, the error, not the kept value.
    clock::advance(Duration::from_secs(45));
    let _ = invalidated_invalidate(8);
    INVALIDATED_FAILING.store(true, SeqCst);
    assert!(invalidated(8).is_err());
    INVALIDATED_FAILING.store(false, SeqCst);
    // Kept after a failure (throttled): `f_invalidate` ends the throttle and the value.
    assert_eq!(invalidated(9), Ok(906));
    clock::advance(Duration::from_secs(45));
    INVALIDATED_FAILING.store(true, SeqCst);
    assert_eq!(invalidated(9), Ok(906), "kept");
    let _ = invalidated_invalidate(9);
    assert!(invalidated(9).is_err(), "served after f_invalidate");
    INVALIDATED_FAILING.store(false, SeqCst);
}
