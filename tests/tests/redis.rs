//! The Redis backend against a real `redis-server` (the harness starts its own on a free
//! loopback port): hits and misses, the documented layout, bad entries, leases against
//! invalidation, write-through, clear, and sync calls from threads and runtimes.
#![cfg(feature = "redis")]

mod common;

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Barrier, LazyLock};

use cache_runtime::cached;
use common::{Gate, wait_until, within};
use redis::Commands;
use serde::{Deserialize, Serialize};

/// The Redis URL, or `None` to skip (the harness says why, loudly).
fn redis_url() -> Option<&'static str> {
    static PREFIX: LazyLock<String> = LazyLock::new(|| format!("t{}:", std::process::id()));
    tests::redis_server::setup(&PREFIX)
}

fn prefix() -> String {
    format!("t{}:", std::process::id())
}

fn raw() -> tests::redis_server::Raw {
    tests::redis_server::raw(redis_url().expect("checked by the caller"))
}

macro_rules! redis_or_skip {
    () => {
        if redis_url().is_none() {
            return;
        }
    };
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Profile {
    name: String,
    tags: Vec<String>,
}

static PROFILE_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(
    ttl = 60,
    jitter = 0,
    null_ttl = 30,
    key = "{id}",
    name = "user:profile"
)]
fn profile(id: u64) -> Result<Option<Profile>, String> {
    PROFILE_LOADS.fetch_add(1, SeqCst);
    match id {
        0 => Err("db down".into()),
        1..=100 => Ok(Some(Profile {
            name: format!("user {id}"),
            tags: vec!["a".into()],
        })),
        _ => Ok(None),
    }
}

#[test]
fn values_nulls_and_errors_follow_the_return_shape() {
    redis_or_skip!();
    let before = PROFILE_LOADS.load(SeqCst);
    for _ in 0..2 {
        assert_eq!(profile(42).unwrap().unwrap().name, "user 42");
        assert_eq!(profile(404), Ok(None));
        assert_eq!(profile(0), Err("db down".into()));
    }
    assert_eq!(
        PROFILE_LOADS.load(SeqCst) - before,
        4,
        "the value and the null are cached"
    );
    let s = profile_cache().stats();
    assert!(
        s.hits >= 1 && s.null_hits >= 1 && s.load_errors >= 2,
        "{s:?}"
    );
}

#[test]
fn the_layout_is_readable_by_other_services() {
    redis_or_skip!();
    assert!(profile(7).unwrap().is_some());
    assert_eq!(profile(9999), Ok(None));
    let mut con = raw();
    let key = format!("{}user:profile:7", prefix());
    let bytes: Vec<u8> = con.get(&key).expect("the entry is at {prefix}{name}:{key}");
    let envelope = tests::envelope::parse(&bytes);
    assert_eq!(envelope.version, 4);
    assert!(
        envelope.tags.is_empty(),
        "an untagged function records no tag versions"
    );
    assert!(!envelope.null);
    assert_ne!(envelope.fingerprint, 0);
    assert!(envelope.written_ms > 1_700_000_000_000);
    let fresh_for = envelope.fresh_until_ms - envelope.written_ms;
    assert!(
        (50_000..=66_100).contains(&fresh_for),
        "fresh for {fresh_for} ms"
    );
    assert_eq!(envelope.retry_at_ms, 0);
    assert_eq!(envelope.json()["name"], "user 7");
    let ttl: i64 = con.pttl(&key).expect("PTTL");
    assert!(
        (50_000..=60_000).contains(&ttl),
        "ttl {ttl} ms, expected 60 s"
    );
    let null_key = format!("{}user:profile:9999", prefix());
    let null: Vec<u8> = con.get(&null_key).expect("the null is cached");
    let null = tests::envelope::parse(&null);
    assert!(null.null && null.value.is_empty());
    let ttl: i64 = con.pttl(&null_key).expect("PTTL");
    assert!(
        (20_000..=30_000).contains(&ttl),
        "null ttl {ttl} ms, expected 30 s"
    );
}

#[cached(key = "{a}:{b}", name = "joined")]
fn joined(a: &str, b: &str) -> String {
    format!("{a}|{b}")
}

#[cached(name = "by_args")]
fn by_args(n: u32, s: &str) -> u32 {
    n + s.len() as u32
}

#[test]
fn keys_are_escaped_and_default_keys_are_json() {
    redis_or_skip!();
    assert_eq!(joined("x:y", "z"), "x:y|z");
    assert_eq!(joined("x", "y:z"), "x|y:z");
    assert_eq!(by_args(1, "a{b}"), 5);
    let mut con = raw();
    let p = prefix();
    for key in [
        format!("{p}joined:x%3Ay:z"),
        format!("{p}joined:x:y%3Az"),
        format!("{p}by_args:[1,\"a%7Bb%7D\"]"),
    ] {
        assert!(con.exists::<_, bool>(&key).unwrap(), "no key {key}");
    }
}

static LONG_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "{text}", name = "long")]
fn long(text: &str) -> usize {
    LONG_LOADS.fetch_add(1, SeqCst);
    text.len()
}

#[test]
fn long_keys_are_digested() {
    redis_or_skip!();
    let text = "x".repeat(400);
    assert_eq!(long(&text), 400);
    assert_eq!(long(&text), 400);
    assert_eq!(LONG_LOADS.load(SeqCst), 1);
    let mut con = raw();
    let keys: Vec<String> = con.keys(format!("{}long:#*", prefix())).unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys[0].len(), format!("{}long:#", prefix()).len() + 64);
}

static BAD_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "{id}", name = "bad")]
fn bad(id: u32) -> Vec<u32> {
    BAD_LOADS.fetch_add(1, SeqCst);
    vec![id; 3]
}

#[test]
fn corrupt_foreign_and_oversized_entries_are_counted_misses_and_overwritten() {
    redis_or_skip!();
    let mut con = raw();
    // A valid header (of this function's entries) with another value after it.
    let mut wrong_value: Vec<u8> = {
        assert_eq!(bad(99), vec![99; 3]);
        con.get(format!("{}bad:99", prefix())).unwrap()
    };
    wrong_value.truncate(20);
    wrong_value.extend_from_slice(&[0xa4, b't', b'e', b'x', b't']); // the string "text"
    let mut foreign = wrong_value.clone();
    foreign[4..12].copy_from_slice(&[0; 8]); // another type's fingerprint
    let mut other_version = wrong_value.clone();
    other_version[2] = 7;
    let cases: Vec<(u32, Vec<u8>)> = vec![
        (1, b"not an envelope at all".to_vec()),
        (2, foreign),
        (3, other_version),
        (4, vec![b' '; (16 << 20) + 1]),
        (5, wrong_value),
        (
            6,
            br#"{"v":1,"t":"0000000000000000","w":1,"d":[6,6,6]}"#.to_vec(),
        ),
    ];
    for (id, bytes) in cases {
        let key = format!("{}bad:{id}", prefix());
        let () = con.set(&key, bytes).unwrap();
        let errors = bad_cache().stats().store_errors;
        let loads = BAD_LOADS.load(SeqCst);
        assert_eq!(bad(id), vec![id; 3], "entry {id} was served");
        assert_eq!(
            BAD_LOADS.load(SeqCst),
            loads + 1,
            "entry {id} did not cause a load"
        );
        assert_eq!(
            bad_cache().stats().store_errors,
            errors + 1,
            "entry {id} was not counted"
        );
        let now: Vec<u8> = con.get(&key).unwrap();
        let envelope = tests::envelope::parse(&now);
        assert_eq!(envelope.decode::<Vec<u32>>(), vec![id; 3], "overwritten");
    }
}

static DELETED_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "{id}", name = "deleted")]
fn deleted(id: u32) -> u32 {
    DELETED_LOADS.fetch_add(1, SeqCst);
    id
}

#[test]
fn a_key_deleted_by_another_process_is_loaded_again() {
    redis_or_skip!();
    assert_eq!(deleted(1), 1);
    assert_eq!(deleted(1), 1);
    let () = raw().del(format!("{}deleted:1", prefix())).unwrap();
    assert_eq!(deleted(1), 1);
    assert_eq!(DELETED_LOADS.load(SeqCst), 2);
}

static VERSION: AtomicU32 = AtomicU32::new(1);
static GATE: LazyLock<Gate> = LazyLock::new(Gate::new);
static LEASE_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "{id}", name = "lease")]
fn leased(id: u32) -> String {
    let version = VERSION.load(SeqCst);
    if LEASE_LOADS.fetch_add(1, SeqCst) == 0 {
        GATE.arrive_and_wait();
    }
    format!("{id}@v{version}")
}

#[test]
fn an_invalidation_during_a_load_revokes_its_lease() {
    redis_or_skip!();
    let loader = std::thread::spawn(|| leased(1));
    GATE.wait_for_arrival(); // the load holds its lease and has read v1
    VERSION.store(2, SeqCst);
    assert!(leased_invalidate(1).is_done());
    GATE.open();
    assert_eq!(
        loader.join().expect("no panic"),
        "1@v1",
        "the caller gets its result"
    );
    let stored: Option<Vec<u8>> = raw().get(format!("{}lease:1", prefix())).unwrap();
    assert_eq!(stored, None, "the revoked lease wrote its stale value");
    assert_eq!(within(|| leased(1)), "1@v2");
    assert_eq!(leased(1), "1@v2");
    assert_eq!(LEASE_LOADS.load(SeqCst), 2);
}

static ASYNC_VERSION: AtomicU32 = AtomicU32::new(1);
static ASYNC_LOADS: AtomicU32 = AtomicU32::new(0);
static ASYNC_OPEN: tokio::sync::Notify = tokio::sync::Notify::const_new();

#[cached(key = "{id}", name = "lease_async")]
async fn leased_async(id: u32) -> String {
    let version = ASYNC_VERSION.load(SeqCst);
    if ASYNC_LOADS.fetch_add(1, SeqCst) == 0 {
        ASYNC_OPEN.notified().await;
    }
    format!("{id}@v{version}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_during_an_async_load_revokes_its_lease() {
    redis_or_skip!();
    let loader = tokio::spawn(leased_async(1));
    common::wait_until_async("the load started", || ASYNC_LOADS.load(SeqCst) == 1).await;
    ASYNC_VERSION.store(2, SeqCst);
    assert!(leased_async_invalidate(1).await.is_done());
    ASYNC_OPEN.notify_one();
    assert_eq!(loader.await.expect("no panic"), "1@v1");
    assert_eq!(leased_async(1).await, "1@v2");
    assert_eq!(leased_async(1).await, "1@v2");
    assert_eq!(ASYNC_LOADS.load(SeqCst), 2);
}

static SOURCE: AtomicU32 = AtomicU32::new(1);

#[cached(key = "{id}", name = "refreshed")]
fn refreshed(id: u32) -> u32 {
    id * 100 + SOURCE.load(SeqCst)
}

#[test]
fn refresh_writes_through() {
    redis_or_skip!();
    assert_eq!(refreshed(1), 101);
    SOURCE.store(2, SeqCst);
    assert_eq!(refreshed(1), 101, "still cached");
    assert_eq!(refreshed_refresh(1), 102);
    assert_eq!(refreshed(1), 102);
    let bytes: Vec<u8> = raw().get(format!("{}refreshed:1", prefix())).unwrap();
    assert_eq!(tests::envelope::parse(&bytes).decode::<u32>(), 102);
}

#[cached(key = "{id}", name = "clear:a")]
fn clear_a(id: u32) -> u32 {
    id
}

#[cached(key = "{id}", name = "clear:b")]
fn clear_b(id: u32) -> u32 {
    id
}

#[test]
fn clear_removes_this_functions_keys_only() {
    redis_or_skip!();
    for id in 0..50 {
        clear_a(id);
        clear_b(id);
    }
    let mut con = raw();
    let count = |con: &mut tests::redis_server::Raw, name: &str| -> usize {
        let keys: Vec<String> = con.keys(format!("{}{name}:*", prefix())).unwrap();
        keys.len()
    };
    assert_eq!(count(&mut con, "clear:a"), 50);
    assert!(clear_a_cache().clear().is_done());
    assert_eq!(count(&mut con, "clear:a"), 0);
    assert_eq!(count(&mut con, "clear:b"), 50);
}

static SYNC_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "{id}", name = "sync")]
fn sync_fn(id: u32) -> u32 {
    SYNC_LOADS.fetch_add(1, SeqCst);
    id + 1
}

#[test]
fn sync_functions_work_from_threads_and_inside_runtimes() {
    redis_or_skip!();
    std::thread::spawn(|| assert_eq!(sync_fn(1), 2))
        .join()
        .expect("thread");
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    multi.block_on(async {
        assert_eq!(sync_fn(1), 2);
        assert_eq!(tokio::spawn(async { sync_fn(2) }).await.unwrap(), 3);
    });
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    current.block_on(async {
        assert_eq!(sync_fn(1), 2);
        assert_eq!(tokio::spawn(async { sync_fn(3) }).await.unwrap(), 4);
    });
    assert_eq!(SYNC_LOADS.load(SeqCst), 3);
}

static FLIGHT_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "{id}", name = "flight")]
fn flight(id: u32) -> u32 {
    FLIGHT_LOADS.fetch_add(1, SeqCst);
    wait_until("32 callers missed", || flight_cache().stats().misses == 32);
    id
}

#[test]
fn thirty_two_threads_on_a_cold_key_cause_one_load() {
    redis_or_skip!();
    let results = within(|| {
        let barrier = Arc::new(Barrier::new(32));
        let threads: Vec<_> = (0..32)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    barrier.wait();
                    flight(5)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("no panic"))
            .collect::<Vec<_>>()
    });
    assert!(results.iter().all(|&v| v == 5));
    assert_eq!(FLIGHT_LOADS.load(SeqCst), 1);
    let s = flight_cache().stats();
    assert_eq!((s.misses, s.loads, s.waits), (32, 1, 31));
}

static HELD_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "{id}", name = "held", lock_timeout = "300ms")]
fn held(id: u32) -> u32 {
    HELD_LOADS.fetch_add(1, SeqCst);
    id
}

#[test]
fn a_caller_waits_at_most_lock_timeout_for_another_process() {
    redis_or_skip!();
    let mut con = raw();
    let lock = format!("{{{}held:1}}:lock", prefix());
    let () = redis::cmd("SET")
        .arg(&lock)
        .arg("another-process")
        .arg("PX")
        .arg(60_000)
        .query(&mut con)
        .unwrap();
    let started = std::time::Instant::now();
    assert_eq!(within(|| held(1)), 1);
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(250),
        "did not wait: {waited:?}"
    );
    assert_eq!(HELD_LOADS.load(SeqCst), 1);
    let s = held_cache().stats();
    // It waited, then ran the body itself: a load, not a wait (issue 22).
    assert_eq!((s.loads, s.waits), (1, 0));
    assert_eq!(held(1), 1, "the forced lease published");
    assert_eq!(HELD_LOADS.load(SeqCst), 1);
}

#[cached(backend = "memory")]
fn pinned_to_memory(x: u32) -> u32 {
    x
}

#[test]
fn backend_memory_overrides_the_redis_default() {
    redis_or_skip!();
    assert_eq!(pinned_to_memory(3), 3);
    assert_eq!(pinned_to_memory(3), 3);
    assert_eq!(pinned_to_memory_cache().len(), 1, "held in process");
    let keys: Vec<String> = raw()
        .keys(format!("{}*pinned_to_memory*", prefix()))
        .unwrap();
    assert!(keys.is_empty());
}

static EXECUTOR_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "{id}", name = "any_executor")]
async fn any_executor(id: u32) -> u32 {
    EXECUTOR_LOADS.fetch_add(1, SeqCst);
    id * 7
}

/// Drives a future on this thread with no runtime at all, polling until it is ready.
fn spin<F: std::future::Future>(fut: F) -> F::Output {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut fut = std::pin::pin!(fut);
    loop {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}

#[test]
fn async_functions_on_redis_need_no_tokio_runtime() {
    redis_or_skip!();
    assert_eq!(within(|| spin(any_executor(3))), 21);
    assert_eq!(within(|| spin(any_executor(3))), 21);
    assert_eq!(EXECUTOR_LOADS.load(SeqCst), 1);
    let s = any_executor_cache().stats();
    assert_eq!((s.hits, s.misses, s.store_errors), (1, 1, 0));
}

static STORM_DB: common::StormDb = [const { AtomicU32::new(0) }; 4];

#[cached(key = "{key}", name = "storm")]
fn storm(key: usize) -> u32 {
    common::slow_read(&STORM_DB, key)
}

/// No stale value survives a storm of reads, refreshes and invalidations on Redis (see
/// `common::storm`): leases keep every load in flight during an invalidation from publishing.
#[test]
fn invalidation_storms_leave_no_stale_value_in_redis() {
    redis_or_skip!();
    within(|| common::storm(&STORM_DB, 1_000, storm, storm_invalidate, storm_refresh));
    assert_eq!(storm_cache().stats().store_errors, 0);
}
