//! Feature `metrics`: every registered cache's figures through the `metrics` facade (DESIGN
//! §13), with Micrometer-style names and `cache` and `backend` labels.
//!
//! The hit path pays nothing for it: the figures are the striped [`Stats`](crate::Stats)
//! counters, read and handed to the installed recorder as absolute values by
//! [`export_metrics`] — called by the program (for example by a `/metrics` handler before it
//! renders) and every 5 s (see [`set_metrics_interval`]) by a thread of the library's own,
//! started with the first cache. Only load durations are recorded as they happen (a histogram
//! sample per load, never per hit).
//!
//! | metric | kind | labels | from `Stats` |
//! |---|---|---|---|
//! | `cache.gets` | counter | `result=hit` | `hits` |
//! | `cache.gets` | counter | `result=null_hit` | `null_hits` |
//! | `cache.gets` | counter | `result=miss` | `misses` |
//! | `cache.gets` | counter | `result=stale` | `stale_hits` |
//! | `cache.gets` | counter | `result=stale_if_error` | `stale_if_error_hits` |
//! | `cache.loads` | counter | `result=success` | `loads − load_errors` |
//! | `cache.loads` | counter | `result=error` | `load_errors` |
//! | `cache.waits` | counter | | `waits` |
//! | `cache.refreshes` | counter | | `refreshes` |
//! | `cache.store.errors` | counter | | `store_errors` |
//! | `cache.store.skips` | counter | | `store_skips` |
//! | `cache.invalidations.received` | counter | | `invalidations_received` |
//! | `cache.evictions` | counter | | `evictions` |
//! | `cache.oversized` | counter | | `oversized` |
//! | `cache.store.written.bytes` | counter | | `bytes_written` (Redis-backed caches) |
//! | `cache.memory.bytes` | gauge | | `memory_bytes`: bytes held in process |
//! | `cache.memory.max.bytes` | gauge | | `max_bytes` (caches with `max_bytes` only) |
//! | `cache.size` | gauge | | `size` (`CacheHandle::len()`) |
//! | `cache.breaker.open` | gauge | | `CacheHandle::breaker()`: 1 open, 0 closed (Redis-backed caches only) |
//! | `cache.load.duration` | histogram (seconds) | `outcome=success\|error\|panicked\|cancelled` | one sample per load |
//!
//! Every metric also carries `cache` (the cache's name) and `backend` (`memory`, `redis`,
//! `tiered`).

use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::handle::{BreakerState, CacheHandle};

/// How often the library's own thread exports, in milliseconds (0: it does not).
static EVERY_MS: AtomicU64 = AtomicU64::new(5_000);

/// Sets how often the library's own thread exports every cache's figures (feature `metrics`;
/// default 5 s); `Duration::ZERO` stops the periodic export, leaving only the program's own
/// [`export_metrics`] calls. A change takes effect after the export under way (at most one
/// old interval later).
///
/// ```
/// use std::time::Duration;
///
/// cache_runtime::set_metrics_interval(Duration::from_secs(15));
/// ```
pub fn set_metrics_interval(every: Duration) {
    // Under a millisecond is a millisecond, not "off".
    let ms = match u64::try_from(every.as_millis()).unwrap_or(u64::MAX) {
        0 if !every.is_zero() => 1,
        ms => ms,
    };
    EVERY_MS.store(ms, Relaxed);
}

/// Hands every registered cache's figures to the installed `metrics` recorder now (feature
/// `metrics`). Counters are absolute: they equal [`CacheHandle::stats`] at the time of the
/// call. The library also calls it every 5 s on a thread of its own
/// ([`set_metrics_interval`]).
///
/// ```
/// use cache_runtime::cached;
///
/// #[cached(ttl = 60)]
/// fn double(x: u32) -> u32 {
///     x * 2
/// }
///
/// double(1);
/// double(1);
/// // With a recorder installed (e.g. metrics-exporter-prometheus), this reports
/// // cache.gets{cache="…::double",backend="memory",result="hit"} = 1, and the rest.
/// cache_runtime::export_metrics();
/// ```
pub fn export_metrics() {
    for cache in crate::registry::caches() {
        export(&cache);
    }
}

fn export(cache: &CacheHandle) {
    let s = cache.stats();
    let (name, backend) = (cache.name().to_owned(), cache.backend());
    let counter = |metric: &'static str, result: Option<&'static str>, value: u64| {
        let labels = [("cache", name.clone()), ("backend", backend.to_owned())];
        match result {
            Some(result) => {
                let labels = [
                    labels[0].clone(),
                    labels[1].clone(),
                    ("result", result.to_owned()),
                ];
                metrics::counter!(metric, &labels).absolute(value);
            }
            None => metrics::counter!(metric, &labels).absolute(value),
        }
    };
    counter("cache.gets", Some("hit"), s.hits);
    counter("cache.gets", Some("null_hit"), s.null_hits);
    counter("cache.gets", Some("miss"), s.misses);
    counter("cache.gets", Some("stale"), s.stale_hits);
    counter("cache.gets", Some("stale_if_error"), s.stale_if_error_hits);
    counter(
        "cache.loads",
        Some("success"),
        s.loads.saturating_sub(s.load_errors),
    );
    counter("cache.loads", Some("error"), s.load_errors);
    counter("cache.waits", None, s.waits);
    counter("cache.refreshes", None, s.refreshes);
    counter("cache.store.errors", None, s.store_errors);
    counter("cache.store.skips", None, s.store_skips);
    counter(
        "cache.invalidations.received",
        None,
        s.invalidations_received,
    );
    counter("cache.evictions", None, s.evictions);
    counter("cache.oversized", None, s.oversized);
    if backend != "memory" {
        counter("cache.store.written.bytes", None, s.bytes_written);
    }
    let labels = [("cache", name), ("backend", backend.to_owned())];
    #[allow(clippy::cast_precision_loss, reason = "a gauge is a float")]
    {
        metrics::gauge!("cache.size", &labels).set(s.size as f64);
        metrics::gauge!("cache.memory.bytes", &labels).set(s.memory_bytes as f64);
        if s.max_bytes > 0 {
            metrics::gauge!("cache.memory.max.bytes", &labels).set(s.max_bytes as f64);
        }
    }
    if let Some(state) = cache.breaker() {
        let open = if state == BreakerState::Open {
            1.0
        } else {
            0.0
        };
        metrics::gauge!("cache.breaker.open", &labels).set(open);
    }
}

/// Starts the periodic export, once (at the first cache).
pub(crate) fn start() {
    static STARTED: Once = Once::new();
    STARTED.call_once(|| {
        let _ = std::thread::Builder::new()
            .name("cache-runtime-metrics".into())
            .spawn(|| {
                loop {
                    match EVERY_MS.load(Relaxed) {
                        // Off: look again later.
                        0 => std::thread::sleep(Duration::from_secs(1)),
                        ms => {
                            std::thread::sleep(Duration::from_millis(ms));
                            if EVERY_MS.load(Relaxed) != 0 {
                                export_metrics();
                            }
                        }
                    }
                }
            });
    });
}
