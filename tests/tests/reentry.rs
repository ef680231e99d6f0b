//! Issue 8: a cached function that calls itself with the same key (directly, or through
//! another cached function) never waits for its own load, on the build's backend. Every
//! function here has a `lock_timeout` of a minute and every test runs under `within` (20 s):
//! a call that waited for itself fails the test instead of answering late.

mod common;

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

use cache_runtime::cached;
use common::within;

static SETTING: AtomicU32 = AtomicU32::new(0);

/// On its first attempt, asks itself for the same key (the shape of a retry or a default).
#[cached(key = "{name}", lock_timeout = "60s")]
fn issue_8_setting(name: &str, attempt: u32) -> String {
    SETTING.fetch_add(1, SeqCst);
    match attempt {
        0 => format!("{}!", issue_8_setting(name, 1)),
        _ => format!("{name}=on"),
    }
}

#[test]
fn issue_8_a_sync_call_of_the_same_key_does_not_wait_for_itself() {
    if !common::backend_ready() {
        return;
    }
    let value = within(|| issue_8_setting("dark", 0));
    assert_eq!(value, "dark=on!");
    assert_eq!(
        SETTING.load(SeqCst),
        2,
        "the outer load and the inner, uncached one"
    );
    assert_eq!(
        within(|| issue_8_setting("dark", 0)),
        "dark=on!",
        "the outer result is cached"
    );
    assert_eq!(SETTING.load(SeqCst), 2);
}

static PING: AtomicU32 = AtomicU32::new(0);

#[cached(key = "{n}", lock_timeout = "60s")]
fn issue_8_ping(n: u32, depth: u32) -> u32 {
    PING.fetch_add(1, SeqCst);
    if depth == 0 { issue_8_pong(n, 1) } else { n }
}

#[cached(key = "{n}", lock_timeout = "60s")]
fn issue_8_pong(n: u32, depth: u32) -> u32 {
    issue_8_ping(n, depth) + 100
}

#[test]
fn issue_8_re_entry_through_another_cached_function() {
    if !common::backend_ready() {
        return;
    }
    assert_eq!(within(|| issue_8_ping(7, 0)), 107);
    assert_eq!(PING.load(SeqCst), 2);
    assert_eq!(within(|| issue_8_ping(7, 0)), 107);
    assert_eq!(PING.load(SeqCst), 2, "cached after the first call");
}

static FIB: AtomicU32 = AtomicU32::new(0);

/// Recursion on *other* keys still caches and still single-flights each key.
#[cached(lock_timeout = "60s")]
fn issue_8_fib(n: u64) -> u64 {
    FIB.fetch_add(1, SeqCst);
    if n < 2 {
        n
    } else {
        issue_8_fib(n - 1) + issue_8_fib(n - 2)
    }
}

#[test]
fn issue_8_recursion_on_other_keys_is_cached() {
    if !common::backend_ready() {
        return;
    }
    assert_eq!(within(|| issue_8_fib(40)), 102_334_155);
    assert_eq!(FIB.load(SeqCst), 41, "each n loaded once");
}

static ASYNC: AtomicU32 = AtomicU32::new(0);

#[cached(key = "{name}", lock_timeout = "60s")]
async fn issue_8_setting_async(name: String, attempt: u32) -> String {
    ASYNC.fetch_add(1, SeqCst);
    match attempt {
        0 => format!("{}!", Box::pin(issue_8_setting_async(name, 1)).await),
        _ => format!("{name}=on"),
    }
}

#[test]
fn issue_8_an_async_call_of_the_same_key_on_the_same_task_does_not_wait() {
    if !common::backend_ready() {
        return;
    }
    let value = within(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(issue_8_setting_async("dark".into(), 0))
    });
    assert_eq!(value, "dark=on!");
    assert_eq!(ASYNC.load(SeqCst), 2);
}

static OTHER_TASK: AtomicU32 = AtomicU32::new(0);

/// A nested call on *another* thread is another caller: it waits for the outer load and gets
/// its result (the outer load does not wait for it, so nothing deadlocks).
#[cached(key = "{id}", lock_timeout = "60s")]
fn issue_8_other_thread(id: u32, spawn: bool) -> u32 {
    OTHER_TASK.fetch_add(1, SeqCst);
    if spawn {
        std::thread::spawn(move || {
            let _ = issue_8_other_thread(id, false);
        });
    }
    id * 2
}

#[test]
fn issue_8_another_thread_still_waits_for_the_load() {
    if !common::backend_ready() {
        return;
    }
    assert_eq!(within(|| issue_8_other_thread(4, true)), 8);
    common::wait_until("the other thread's call is counted", || {
        let s = issue_8_other_thread_cache().stats();
        s.hits + s.waits + s.misses >= 2
    });
    assert_eq!(
        OTHER_TASK.load(SeqCst),
        1,
        "the other thread took the outer load's result"
    );
}
