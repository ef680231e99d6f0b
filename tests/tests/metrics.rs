//! Issue 15 (first part): with the `metrics` feature, `export_metrics()` hands every cache's
//! figures to the installed recorder, with `cache`, `backend` and `result` labels, equal to
//! `Stats`. A `metrics-util` debugging recorder captures them. In process.
#![cfg(all(feature = "metrics", not(feature = "redis")))]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

use cache_runtime::cached;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

static LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 60, name = "metered")]
fn metered(id: u32) -> Result<Option<u32>, String> {
    LOADS.fetch_add(1, SeqCst);
    match id {
        0 => Err("no zero".into()),
        1 => Ok(None),
        n => Ok(Some(n)),
    }
}

#[test]
fn exported_values_equal_stats_with_their_labels() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this process");

    for id in [0, 0, 1, 1, 1, 2, 2, 2, 3] {
        let _ = metered(id);
    }
    cache_runtime::export_metrics();

    let mut values: HashMap<(String, Option<String>), f64> = HashMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let labels: HashMap<&str, &str> =
            key.key().labels().map(|l| (l.key(), l.value())).collect();
        if labels.get("cache") != Some(&"metered") {
            continue;
        }
        let result = match key.key().name() {
            "cache.load.duration" => labels.get("outcome").map(|r| (*r).to_owned()),
            _ => {
                assert_eq!(labels.get("backend"), Some(&"memory"), "{key:?}");
                labels.get("result").map(|r| (*r).to_owned())
            }
        };
        let value = match value {
            DebugValue::Counter(v) => v as f64,
            DebugValue::Gauge(v) => v.into_inner(),
            // Load durations: the number of samples, per outcome.
            DebugValue::Histogram(samples) => samples.len() as f64,
        };
        values.insert((key.key().name().to_owned(), result), value);
    }
    let s = metered_cache().stats();
    let get = |name: &str, result: Option<&str>| -> f64 {
        *values
            .get(&(name.to_owned(), result.map(str::to_owned)))
            .unwrap_or_else(|| panic!("{name} {result:?} not exported: {values:?}"))
    };
    // 2 errors (not cached: two loads), 3 null calls (one load, two null hits), 3 calls of 2
    // (one load, two hits), 1 call of 3.
    assert_eq!(
        (s.hits, s.null_hits, s.misses, s.loads, s.load_errors),
        (2, 2, 5, 5, 2)
    );
    assert_eq!(get("cache.gets", Some("hit")), s.hits as f64);
    assert_eq!(get("cache.gets", Some("null_hit")), s.null_hits as f64);
    assert_eq!(get("cache.gets", Some("miss")), s.misses as f64);
    assert_eq!(get("cache.gets", Some("stale")), s.stale_hits as f64);
    assert_eq!(get("cache.loads", Some("success")), 3.0);
    assert_eq!(get("cache.loads", Some("error")), 2.0);
    assert_eq!(get("cache.waits", None), s.waits as f64);
    assert_eq!(get("cache.store.errors", None), 0.0);
    assert_eq!(get("cache.size", None), 3.0, "the null, 2 and 3");
    assert_eq!(LOADS.load(SeqCst), 5);
    // Each load's duration, by outcome (recorded when the load ends, not by the export).
    assert_eq!(get("cache.load.duration", Some("success")), 3.0);
    assert_eq!(get("cache.load.duration", Some("error")), 2.0);
}
