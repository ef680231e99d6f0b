//! Feature `metrics`: every registered cache's figures through the `metrics` facade (DESIGN
//! §13), with Micrometer-style names and `cache` and `backend` labels.
//!
//! The hit path pays nothing for it: the figures are the striped [`Stats`](crate::Stats)
//! counters, read and handed to the installed recorder as absolute values by
//! [`export_metrics`] — called by the program (for example by a `/metrics` handler before it
//! renders) and every 5 s by a thread of the library's own, started with the first cache.
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
//! | `cache.size` | gauge | | `CacheHandle::len()` |
//!
//! Every metric also carries `cache` (the cache's name) and `backend` (`memory`, `redis`,
//! `tiered`).

use std::sync::Once;
use std::time::Duration;

use crate::handle::CacheHandle;

/// How often the library's own thread exports.
const EVERY: Duration = Duration::from_secs(5);

/// Hands every registered cache's figures to the installed `metrics` recorder now (feature
/// `metrics`). Counters are absolute: they equal [`CacheHandle::stats`] at the time of the
/// call. The library also calls it every 5 s on a thread of its own.
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
    let labels = [("cache", name), ("backend", backend.to_owned())];
    #[allow(clippy::cast_precision_loss, reason = "a gauge is a float")]
    metrics::gauge!("cache.size", &labels).set(cache.len() as f64);
}

/// Starts the periodic export, once (at the first cache).
pub(crate) fn start() {
    static STARTED: Once = Once::new();
    STARTED.call_once(|| {
        let _ = std::thread::Builder::new()
            .name("cache-runtime-metrics".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(EVERY);
                    export_metrics();
                }
            });
    });
}
