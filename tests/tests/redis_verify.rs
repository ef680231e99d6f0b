//! `verify` on Redis and tiered caches (issue 27): hits read from Redis, and L1 hits of a
//! tiered cache, are verified off the caller's path and compared by their encoded bytes;
//! sync and async.
#![cfg(feature = "redis")]

mod common;

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

use cache_runtime::{CacheHandle, cached};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Price {
    cents: u64,
    currency: String,
}

static REDIS_SOURCE: AtomicU64 = AtomicU64::new(100);
static TIERED_SOURCE: AtomicU64 = AtomicU64::new(100);
static ASYNC_SOURCE: AtomicU64 = AtomicU64::new(100);

fn price(source: &AtomicU64, id: u64) -> Price {
    Price {
        cents: source.load(SeqCst) + id,
        currency: "EUR".into(),
    }
}

#[cached(ttl = 60, verify = 1.0, backend = "redis", name = "verify_redis")]
fn on_redis(id: u64) -> Price {
    price(&REDIS_SOURCE, id)
}

#[cached(ttl = 60, verify = 1.0, backend = "tiered", name = "verify_tiered")]
fn on_tiered(id: u64) -> Price {
    price(&TIERED_SOURCE, id)
}

#[cached(ttl = 60, verify = 1.0, backend = "redis", name = "verify_redis_async")]
async fn on_redis_async(id: u64) -> Price {
    price(&ASYNC_SOURCE, id)
}

/// Every hit verified or skipped.
fn drained(cache: &CacheHandle) -> cache_runtime::Stats {
    let mut last = cache.stats();
    common::wait_until("every picked hit is verified", || {
        last = cache.stats();
        last.verified + last.verify_skipped >= last.hits
    });
    last
}

/// After a first call: 20 hits while the source is unchanged (none differ), then 20 after it
/// changed without an invalidation (all differ).
fn check(cache: &CacheHandle, source: &AtomicU64, mut call: impl FnMut() -> Price) {
    let before = drained(cache);
    for _ in 0..20 {
        assert_eq!(call().cents, 101);
    }
    let s = drained(cache);
    let delta = |after: &cache_runtime::Stats| {
        (
            after.verified - before.verified,
            after.mismatched - before.mismatched,
            after.hits - before.hits,
            after.misses - before.misses,
        )
    };
    assert_eq!(delta(&s), (20, 0, 20, 0), "{s:?}");
    source.store(500, SeqCst);
    for _ in 0..20 {
        assert_eq!(call().cents, 101, "a hit serves the value cached");
    }
    let s = drained(cache);
    assert_eq!(delta(&s), (40, 20, 40, 0), "{s:?}");
    assert_eq!(s.verify_skipped, before.verify_skipped, "{s:?}");
}

#[test]
fn hits_read_from_redis_are_verified_by_their_bytes() {
    if !common::backend_ready() {
        return;
    }
    assert_eq!(on_redis(1).cents, 101);
    check(on_redis_cache(), &REDIS_SOURCE, || on_redis(1));
}

#[test]
fn l1_hits_of_a_tiered_cache_are_verified() {
    if !common::backend_ready() {
        return;
    }
    let cache = on_tiered_cache();
    common::wait_until("the L1 answers", || {
        assert_eq!(on_tiered(1).cents, 101);
        cache.stats().l1_hits > 0
    });
    let l1_before = cache.stats().l1_hits;
    check(cache, &TIERED_SOURCE, || on_tiered(1));
    let s = cache.stats();
    assert_eq!(
        s.l1_hits - l1_before,
        40,
        "every hit answered by the L1: {s:?}"
    );
}

#[test]
fn async_hits_are_verified_on_the_callers_runtime() {
    if !common::backend_ready() {
        return;
    }
    let runtime = common::runtime();
    assert_eq!(runtime.block_on(on_redis_async(1)).cents, 101);
    check(on_redis_async_cache(), &ASYNC_SOURCE, || {
        runtime.block_on(on_redis_async(1))
    });
}
