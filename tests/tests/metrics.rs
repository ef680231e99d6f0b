//! Issue 15: with the `metrics` feature, `export_metrics()` hands every cache's figures to the
//! installed recorder, with `cache`, `backend` and `result` labels, equal to `Stats`; load
//! durations go to a histogram by outcome. A `metrics-util` debugging recorder captures them
//! after a scripted mix of hits, null hits, misses, loads, errors, waits (real threads) and
//! evictions, on the in-process backend and (with the `redis` feature) on Redis.
//!
//! One test: the recorder is the process's, and a snapshot drains the histograms.
#![cfg(feature = "metrics")]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use cache_runtime::{CacheHandle, Stats, cached};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// The script's key whose load waits for three more callers.
const WAITED: u32 = 9;

/// The calls of the mix: 2 errors (not cached: two loads), 3 null calls (one load, two null
/// hits), 3 calls of 2 (one load, two hits), 1 call of 3; then `WAITED` by four threads at
/// once (one load, three waits). Then exports, and returns the figures it checked.
fn run_script(
    call: fn(u32) -> Result<Option<u32>, String>,
    cache: &CacheHandle,
    until: &AtomicU64,
) -> Stats {
    for id in [0, 0, 1, 1, 1, 2, 2, 2, 3] {
        let _ = call(id);
    }
    until.store(cache.stats().misses + 4, SeqCst);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(move || assert_eq!(call(WAITED), Ok(Some(WAITED))));
        }
    });
    cache_runtime::export_metrics();
    let s = cache.stats();
    assert_eq!(
        (
            s.hits,
            s.null_hits,
            s.misses,
            s.loads,
            s.load_errors,
            s.waits
        ),
        (2, 2, 9, 6, 2, 3),
        "{s:?}"
    );
    s
}

/// The body of the script's functions: `WAITED` ends once `misses` reached `until` (every
/// caller is counted as waiting before its miss is).
fn body(
    id: u32,
    cache: fn() -> &'static CacheHandle,
    until: &AtomicU64,
) -> Result<Option<u32>, String> {
    if id == WAITED {
        let deadline = Instant::now() + Duration::from_secs(20);
        while cache().stats().misses < until.load(SeqCst) {
            assert!(Instant::now() < deadline, "the waiters never came");
            std::thread::yield_now();
        }
    }
    match id {
        0 => Err("no zero".into()),
        1 => Ok(None),
        n => Ok(Some(n)),
    }
}

static MEMORY_UNTIL: AtomicU64 = AtomicU64::new(u64::MAX);

/// Room for three entries: the script stores four (a null, 2, 3 and 9), so one is evicted.
#[cached(ttl = 60, name = "metered", max_entries = 3, backend = "memory")]
fn metered(id: u32) -> Result<Option<u32>, String> {
    body(id, metered_cache, &MEMORY_UNTIL)
}

/// The exported values of the cache named `name`, by metric name and `result` (or, for the
/// histogram, `outcome`) label; every value carries `backend`.
fn exported(
    snapshotter: &Snapshotter,
    name: &str,
    backend: &str,
) -> HashMap<(String, Option<String>), f64> {
    let mut values = HashMap::new();
    for (key, unit, help, value) in snapshotter.snapshot().into_vec() {
        let labels: HashMap<&str, &str> =
            key.key().labels().map(|l| (l.key(), l.value())).collect();
        if labels.get("cache") != Some(&name) {
            continue;
        }
        // Issue 27: every metric is described, with its unit (an exporter's HELP).
        assert!(unit.is_some() && help.is_some(), "{key:?} is not described");
        assert_eq!(labels.get("backend"), Some(&backend), "{key:?}");
        let result = match key.key().name() {
            "cache.load.duration.seconds" => labels.get("outcome"),
            "cache.tier.hits.total" => labels.get("tier"),
            _ => labels.get("result"),
        };
        let value = match value {
            DebugValue::Counter(v) => v as f64,
            DebugValue::Gauge(v) => v.into_inner(),
            // Load durations: the number of samples, per outcome.
            DebugValue::Histogram(samples) => samples.len() as f64,
        };
        values.insert(
            (key.key().name().to_owned(), result.map(|r| (*r).to_owned())),
            value,
        );
    }
    values
}

/// Every figure of `s` equals its export.
fn assert_exported(values: &HashMap<(String, Option<String>), f64>, s: &Stats) {
    let get = |name: &str, result: Option<&str>| -> f64 {
        *values
            .get(&(name.to_owned(), result.map(str::to_owned)))
            .unwrap_or_else(|| panic!("{name} {result:?} not exported: {values:?}"))
    };
    assert_eq!(get("cache.gets.total", Some("hit")), s.hits as f64);
    assert_eq!(
        get("cache.gets.total", Some("null_hit")),
        s.null_hits as f64
    );
    assert_eq!(get("cache.gets.total", Some("miss")), s.misses as f64);
    assert_eq!(get("cache.gets.total", Some("stale")), s.stale_hits as f64);
    let sie = s.stale_if_error_hits as f64;
    assert_eq!(get("cache.fail_safe.answers.total", None), sie);
    assert_eq!(get("cache.loads.total", None), s.loads as f64);
    assert_eq!(get("cache.load.errors.total", None), s.load_errors as f64);
    assert_eq!(get("cache.waits.total", None), s.waits as f64);
    assert_eq!(get("cache.refreshes.total", None), s.refreshes as f64);
    assert_eq!(get("cache.store.errors.total", None), s.store_errors as f64);
    assert_eq!(get("cache.store.skips.total", None), s.store_skips as f64);
    let received = s.invalidations_received as f64;
    assert_eq!(get("cache.invalidations.received.total", None), received);
    assert_eq!(get("cache.evictions.total", None), s.evictions as f64);
    assert_eq!(get("cache.entries", None), s.size as f64);
    assert_eq!(get("cache.oversized.total", None), s.oversized as f64);
    // Issue 25: the bytes held in process, for every cache (its entries' slots without a
    // budget).
    assert_eq!(get("cache.memory.bytes", None), s.memory_bytes as f64);
    assert!(s.memory_bytes > 0 || s.size == 0);
    // Each load's duration, by outcome (recorded when the load ends, not by the export).
    let successes = (s.loads - s.load_errors) as f64;
    assert_eq!(
        get("cache.load.duration.seconds", Some("success")),
        successes
    );
    assert_eq!(
        get("cache.load.duration.seconds", Some("error")),
        s.load_errors as f64
    );
    // Issue 27: every name exported is in `METRICS`, which says its kind; counters end in
    // `.total`, durations in `.seconds`.
    for (name, _) in values.keys() {
        let metric = cache_runtime::METRICS
            .iter()
            .find(|m| m.name == name.as_str())
            .unwrap_or_else(|| panic!("{name} is not in METRICS"));
        match metric.kind {
            cache_runtime::MetricKind::Counter => assert!(name.ends_with(".total"), "{name}"),
            cache_runtime::MetricKind::Histogram => assert!(name.ends_with(".seconds"), "{name}"),
            _ => assert!(!name.ends_with(".total"), "{name}"),
        }
    }
}

#[test]
fn exported_values_equal_stats_with_their_labels() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this process");

    let s = run_script(metered, metered_cache(), &MEMORY_UNTIL);
    assert_eq!((s.evictions, s.size), (1, 3), "{s:?}");
    let values = exported(&snapshotter, "metered", "memory");
    assert_exported(&values, &s);
    assert!(
        !values.contains_key(&("cache.breaker.open".to_owned(), None)),
        "an in-process cache has no breaker"
    );

    #[cfg(feature = "redis")]
    on_redis(&snapshotter);
}

#[cfg(feature = "redis")]
static REDIS_UNTIL: AtomicU64 = AtomicU64::new(u64::MAX);

#[cfg(feature = "redis")]
#[cached(ttl = 60, name = "metered.redis", backend = "redis")]
fn metered_redis(id: u32) -> Result<Option<u32>, String> {
    body(id, metered_redis_cache, &REDIS_UNTIL)
}

/// The same script on Redis: the same figures, `backend = "redis"`, and the breaker closed.
#[cfg(feature = "redis")]
fn on_redis(snapshotter: &Snapshotter) {
    let prefix = format!("rmetrics{}:", std::process::id());
    let Some(_) = tests::redis_server::setup(&prefix) else {
        return;
    };
    let s = run_script(metered_redis, metered_redis_cache(), &REDIS_UNTIL);
    assert_eq!((s.store_errors, s.store_skips), (0, 0), "{s:?}");
    let values = exported(snapshotter, "metered.redis", "redis");
    assert_exported(&values, &s);
    assert_eq!(
        values.get(&("cache.breaker.open".to_owned(), None)),
        Some(&0.0),
        "{values:?}"
    );
}
