//! Issue 16: `f_entry` (the result with its status, age, freshness left and version) and
//! `f_warm` (bounded, skips fresh keys, reports), on the build's default backend: in process
//! in `cargo test --workspace`, on Redis with `--features redis`. Each test has its own cached
//! functions and counters. The clock is moved (`clock::advance`) by one test only, which holds
//! `SERIAL` like every test here.

mod common;

use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use cache_runtime::{CacheStatus, cached, clock};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> Option<MutexGuard<'static, ()>> {
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    common::backend_ready().then_some(guard)
}

static PRODUCT_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 60, jitter = 0.0, key = "{id}")]
fn product(id: u32) -> Result<Option<String>, String> {
    PRODUCT_LOADS.fetch_add(1, SeqCst);
    match id {
        0 => Ok(None),
        13 => Err("unlucky".into()),
        n => Ok(Some(format!("product {n}"))),
    }
}

#[test]
fn statuses_age_freshness_and_versions() {
    let Some(_serial) = serial() else { return };
    let miss = product_entry(1);
    assert_eq!(miss.status(), CacheStatus::Miss);
    assert_eq!(miss.value(), &Ok(Some("product 1".to_owned())));
    assert!(miss.fresh_for() > Duration::from_secs(58), "{miss:?}");
    assert!(miss.age() < Duration::from_secs(2), "{miss:?}");
    assert!(miss.version().is_some());
    assert_eq!(miss.stale_while_revalidate(), Duration::ZERO);

    let hit = product_entry(1);
    assert_eq!(hit.status(), CacheStatus::Hit);
    assert!(hit.fresh_for() <= miss.fresh_for(), "{hit:?}");
    // The same entry answers again: the same version (on Redis, read from its bytes).
    let again = product_entry(1);
    assert_eq!(
        (again.status(), again.version()),
        (CacheStatus::Hit, hit.version())
    );
    assert_eq!(PRODUCT_LOADS.load(SeqCst), 1);
    assert_eq!(product(1), Ok(Some("product 1".to_owned())), "f agrees");

    // A new value, a new version.
    assert!(product_invalidate(1).is_done());
    let reloaded = product_entry(1);
    assert_eq!(reloaded.status(), CacheStatus::Miss);
    let reread = product_entry(1);
    assert_ne!(reread.version(), again.version());
    assert_eq!(PRODUCT_LOADS.load(SeqCst), 2);

    // A cached null.
    assert_eq!(product_entry(0).status(), CacheStatus::Miss);
    let null = product_entry(0);
    assert_eq!(
        (null.status(), null.into_inner()),
        (CacheStatus::NullHit, Ok(None))
    );

    // An error: not stored, nothing to name.
    let error = product_entry(13);
    assert_eq!(error.status(), CacheStatus::Miss);
    assert_eq!((error.version(), error.fresh_for()), (None, Duration::ZERO));
    assert!(error.value().is_err());
}

static STALE_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 10, jitter = 0.0, stale = "1m", key = "{id}")]
fn quote_price(id: u32) -> u64 {
    STALE_LOADS.fetch_add(1, SeqCst) as u64 + u64::from(id)
}

#[test]
fn an_expired_entry_within_stale_answers_stale_and_ages() {
    let Some(_serial) = serial() else { return };
    let first = quote_price(5);
    let fresh = quote_price_entry(5);
    assert_eq!(fresh.status(), CacheStatus::Hit);
    assert_eq!(fresh.stale_while_revalidate(), Duration::from_secs(60));
    clock::advance(Duration::from_secs(15));
    let stale = quote_price_entry(5);
    assert_eq!(stale.status(), CacheStatus::Stale, "{stale:?}");
    assert!(
        stale.age() >= Duration::from_secs(15),
        "aged from its load: {stale:?}"
    );
    assert_eq!(stale.fresh_for(), Duration::ZERO);
    assert_eq!(stale.into_inner(), first, "the kept value answers at once");
    // The revalidation it started lands; then a fresh hit.
    common::wait_until("the revalidation stores", || {
        quote_price_entry(5).status() == CacheStatus::Hit
    });
}

static WARM_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 600, key = "{shop}:{id}")]
fn listing(shop: &str, id: u32) -> Result<u32, String> {
    WARM_LOADS.fetch_add(1, SeqCst);
    if id % 10 == 9 {
        return Err(format!("{shop}: no listing {id}"));
    }
    Ok(id * 2)
}

#[test]
fn warm_loads_each_key_once_skips_fresh_keys_and_counts_failures() {
    let Some(_serial) = serial() else { return };
    let items: Vec<(&str, u32)> = (0..40).map(|i| ("north", i)).collect();
    cache_runtime::set_warm_concurrency(4);
    let warmed = listing_warm(items.iter().copied());
    assert_eq!((warmed.loaded, warmed.skipped, warmed.failed), (36, 0, 4));
    assert_eq!(WARM_LOADS.load(SeqCst), 40);
    // Another instance (or a restart of this one) warms the same keys: all fresh, nothing
    // runs but the four that failed.
    let again = listing_warm(items.iter().copied());
    assert_eq!((again.loaded, again.skipped, again.failed), (0, 36, 4));
    assert_eq!(WARM_LOADS.load(SeqCst), 44);
    assert_eq!(listing_entry("north", 7).status(), CacheStatus::Hit);
}

static ASYNC_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 600, key = "{id}")]
async fn remote_rate(id: u32) -> Option<u32> {
    ASYNC_LOADS.fetch_add(1, SeqCst);
    tokio::task::yield_now().await;
    (id != 3).then_some(id * 7)
}

#[test]
fn async_entry_and_warm() {
    let Some(_serial) = serial() else { return };
    let rt = common::runtime();
    rt.block_on(async {
        let warmed = remote_rate_warm(0..10).await;
        assert_eq!((warmed.loaded, warmed.skipped, warmed.failed), (10, 0, 0));
        assert_eq!(ASYNC_LOADS.load(SeqCst), 10);
        let hit = remote_rate_entry(4).await;
        assert_eq!((hit.status(), *hit.value()), (CacheStatus::Hit, Some(28)));
        let null = remote_rate_entry(3).await;
        assert_eq!(
            (null.status(), null.version().is_some()),
            (CacheStatus::NullHit, true)
        );
        let miss = remote_rate_entry(11).await;
        assert_eq!(miss.status(), CacheStatus::Miss);
        let again = remote_rate_warm([4, 11, 12]).await;
        assert_eq!((again.loaded, again.skipped), (1, 2));
    });
}

#[cached(ttl = 600, key = "{id}")]
fn fragment(id: u32) -> String {
    format!("fragment {id}")
}

/// A body that calls other cached functions: their answers do not speak for the outer call.
#[cached(ttl = 600, key = "{id}")]
fn page(id: u32) -> String {
    let _ = fragment(id);
    let _ = fragment(id); // a hit inside the body
    format!("page {id}")
}

#[test]
fn a_body_calling_cached_functions_does_not_change_the_outer_status() {
    let Some(_serial) = serial() else { return };
    assert_eq!(page_entry(1).status(), CacheStatus::Miss);
    assert_eq!(page_entry(1).status(), CacheStatus::Hit);
}

/// Parameters that are not `Send` (left out of the key): the function and `f_entry` work;
/// `f_warm` exists but is not callable (it needs `Send` items), which must not stop the build.
#[cached(ttl = 600, key = "{id}")]
fn with_local_state(state: Rc<u32>, id: u32) -> u32 {
    *state + id
}

#[test]
fn functions_with_non_send_parameters_still_compile() {
    let Some(_serial) = serial() else { return };
    assert_eq!(with_local_state_entry(Rc::new(1), 2).into_inner(), 3);
}

#[cfg(feature = "redis")]
static SHARED_LOADS: AtomicU32 = AtomicU32::new(0);

#[cfg(feature = "redis")]
#[cached(ttl = 60, key = "{id}")]
fn shared_item(id: u32) -> Result<Option<String>, String> {
    SHARED_LOADS.fetch_add(1, SeqCst);
    Ok(Some(format!("item {id}")))
}

/// Redis: every process that reads an entry names it with the same version (a hash of its
/// bytes). The other process is this test binary run again on
/// `other_process_reads_the_same_version`, with the parent's prefix and the version it read.
#[cfg(feature = "redis")]
#[test]
fn every_process_reads_the_same_version_from_redis() {
    let Some(_serial) = serial() else { return };
    let miss = shared_item_entry(42);
    assert_eq!(miss.status(), CacheStatus::Miss);
    let read = shared_item_entry(42);
    assert_eq!(read.status(), CacheStatus::Hit);
    let version = read.version().expect("a stored entry");
    assert_eq!(
        miss.version(),
        Some(version),
        "the loader names what it wrote as readers do"
    );
    let mut child = tests::child::test("other_process_reads_the_same_version");
    child
        .envs(tests::redis_server::child_env())
        .env(
            "CACHE_TEST_CHILD_PREFIX",
            format!("t{}:", std::process::id()),
        )
        .env("CACHE_TEST_CHILD_VERSION", version.to_string());
    tests::child::passes(child);
}

#[cfg(feature = "redis")]
#[test]
fn other_process_reads_the_same_version() {
    let Ok(expected) = std::env::var("CACHE_TEST_CHILD_VERSION") else {
        return; // run by the harness itself: nothing to do
    };
    let prefix = std::env::var("CACHE_TEST_CHILD_PREFIX").expect("the parent's prefix");
    assert!(
        tests::redis_server::setup(&prefix).is_some(),
        "the parent had a Redis"
    );
    let read = shared_item_entry(42);
    assert_eq!(read.status(), CacheStatus::Hit, "{read:?}");
    assert_eq!(read.version().map(|v| v.to_string()), Some(expected));
    assert_eq!(SHARED_LOADS.load(SeqCst), 0, "nothing loaded here");
}

static KEPT_FAILS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[cached(ttl = 10, jitter = 0.0, stale_if_error = "1h", key = "{id}")]
fn kept_rate(id: u32) -> Result<u32, String> {
    if KEPT_FAILS.load(SeqCst) {
        return Err("the rates service is down".into());
    }
    Ok(id + 1)
}

#[test]
fn warm_counts_a_failed_load_answered_by_a_kept_value_as_failed() {
    let Some(_serial) = serial() else { return };
    let first = kept_rate_warm([1, 2]);
    assert_eq!((first.loaded, first.failed), (2, 0));
    clock::advance(Duration::from_secs(15));
    KEPT_FAILS.store(true, SeqCst);
    let kept = kept_rate_entry(1);
    assert_eq!(
        (kept.status(), kept.into_inner()),
        (CacheStatus::Stale, Ok(2))
    );
    let again = kept_rate_warm([2]);
    assert_eq!((again.loaded, again.skipped, again.failed), (0, 0, 1));
}
