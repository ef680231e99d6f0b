//! Feature `metrics`: every registered cache's figures through the `metrics` facade (DESIGN
//! §13), named by Prometheus' conventions (base units, `_total` on counters, `_seconds` and
//! `_bytes`), with `cache` and `backend` labels, each described (`describe_*`, with its unit)
//! so that an exporter writes its `HELP`.
//!
//! The hit path pays nothing for it: the figures are the striped [`Stats`](crate::Stats)
//! counters, read and handed to the installed recorder as absolute values by
//! [`export_metrics`] — called by the program (for example by a `/metrics` handler before it
//! renders) and every 5 s (see [`set_metrics_interval`]) by a thread of the library's own,
//! started with the first cache. Only load durations are recorded as they happen (a histogram
//! sample per load, never per hit).
//!
//! The facade names end with their suffixes (`cache.gets.total`), so that Prometheus
//! exporters, which write dots as `_`, give the conventional names (`cache_gets_total`)
//! without any setting. [`METRICS`] lists them all with their kind, unit and description.

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
/// // cache_gets_total{cache="…::double",backend="memory",result="hit"} 1, and the rest.
/// cache_runtime::export_metrics();
/// ```
pub fn export_metrics() {
    describe();
    for cache in crate::registry::caches() {
        export(&cache);
    }
}

/// What a metric is: a counter, a gauge or a histogram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetricKind {
    /// Only goes up; its name ends with `_total`.
    Counter,
    /// A value now.
    Gauge,
    /// A distribution of samples (load durations, in seconds).
    Histogram,
}

/// One metric this library exports: its facade name (Prometheus writes its dots as `_`), kind,
/// unit, labels besides `cache` and `backend`, and description (what the exporter writes as
/// `HELP`).
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Metric {
    /// The facade name, e.g. `cache.gets.total` (`cache_gets_total` in Prometheus).
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// Its unit.
    pub unit: metrics::Unit,
    /// Its labels besides `cache` and `backend` (`""` for none).
    pub labels: &'static str,
    /// What it counts or measures.
    pub help: &'static str,
}

const fn metric(
    name: &'static str,
    kind: MetricKind,
    unit: metrics::Unit,
    labels: &'static str,
    help: &'static str,
) -> Metric {
    Metric {
        name,
        kind,
        unit,
        labels,
        help,
    }
}

use MetricKind::{Counter, Gauge, Histogram};
use metrics::Unit::{Bytes, Count, Seconds};

/// Every metric this library exports (the README's table, and what [`export_metrics`]
/// describes to the recorder).
pub const METRICS: &[Metric] = &[
    metric(
        "cache.gets.total",
        Counter,
        Count,
        "result=hit|null_hit|miss|stale",
        "Calls of the cache, by how they were answered: a fresh entry, a fresh cached null, a load (this call's or one it waited for), an expired entry within stale.",
    ),
    metric(
        "cache.fail_safe.answers.total",
        Counter,
        Count,
        "",
        "Misses answered with an expired value kept by stale_if_error because their load failed (counted in cache_gets_total{result=\"miss\"} too).",
    ),
    metric(
        "cache.tier.hits.total",
        Counter,
        Count,
        "tier=l1|l2",
        "Hits of a tiered cache, by where they were answered: the in-process L1 or the shared L2 (Redis).",
    ),
    metric(
        "cache.loads.total",
        Counter,
        Count,
        "",
        "Loads started (the function's body run on a miss or a refresh).",
    ),
    metric(
        "cache.load.errors.total",
        Counter,
        Count,
        "",
        "Loads that ended with an error or a panic (never cached).",
    ),
    metric(
        "cache.waits.total",
        Counter,
        Count,
        "",
        "Misses answered by another caller's load of the same key (single-flight), without running the body.",
    ),
    metric(
        "cache.refreshes.total",
        Counter,
        Count,
        "",
        "Refreshes: revalidations in the background (stale-while-revalidate) and early refreshes (XFetch).",
    ),
    metric(
        "cache.store.errors.total",
        Counter,
        Count,
        "",
        "Failures of the shared store: errors, timeouts and entries that could not be used.",
    ),
    metric(
        "cache.store.skips.total",
        Counter,
        Count,
        "",
        "Calls that did not use the shared store while its circuit breaker was open.",
    ),
    metric(
        "cache.invalidations.received.total",
        Counter,
        Count,
        "",
        "Invalidations from other processes applied to this process's copies.",
    ),
    metric(
        "cache.evictions.total",
        Counter,
        Count,
        "",
        "Entries evicted from the in-process store to stay within its bounds.",
    ),
    metric(
        "cache.oversized.total",
        Counter,
        Count,
        "",
        "Values not stored in process because one alone weighs more than the budget allows.",
    ),
    metric(
        "cache.store.written.bytes.total",
        Counter,
        Bytes,
        "",
        "Bytes this process wrote to the shared store (after compression).",
    ),
    metric(
        "cache.entries",
        Gauge,
        Count,
        "",
        "Entries held in process.",
    ),
    metric(
        "cache.memory.bytes",
        Gauge,
        Bytes,
        "",
        "Bytes held in process by the cache's entries, as Weigh counts them.",
    ),
    metric(
        "cache.memory.max.bytes",
        Gauge,
        Bytes,
        "",
        "The in-process byte budget (max_bytes).",
    ),
    metric(
        "cache.breaker.open",
        Gauge,
        Count,
        "",
        "Whether the circuit breaker of the shared store is open (1) or closed (0).",
    ),
    metric(
        "cache.load.duration.seconds",
        Histogram,
        Seconds,
        "outcome=success|error|panicked|cancelled",
        "How long loads took, by how they ended.",
    ),
    metric(
        "cache.saved.seconds",
        Gauge,
        Seconds,
        "",
        "Load time the cache's answers saved their callers: each hit, null hit and stale hit adds how long the load of the entry it served took (a gauge that only goes up: the metrics facade's counters are whole numbers).",
    ),
    metric(
        "cache.store.read.seconds",
        Gauge,
        Seconds,
        "",
        "Time this process's calls spent reading the shared store, hits and misses alike (a gauge that only goes up).",
    ),
    metric(
        "cache.verify.checks.total",
        Counter,
        Count,
        "result=same|differed",
        "Hits picked by verify whose load ran again off the caller's path, by whether the fresh value equalled the one served.",
    ),
    metric(
        "cache.verify.skipped.total",
        Counter,
        Count,
        "",
        "Hits picked by verify that were not verified: too many in flight, the load could not leave its caller, it failed or ended late, or an invalidation overtook it.",
    ),
    metric(
        "cache.verify.mismatch.age.seconds",
        Histogram,
        Seconds,
        "",
        "The age of each served value that a fresh load no longer gave (verify).",
    ),
    metric(
        "cache.purge.sent.total",
        Counter,
        Count,
        "",
        "Purges of an HTTP cache in front (Varnish, by xkey) that a server accepted (process-wide).",
    ),
    metric(
        "cache.purge.failed.total",
        Counter,
        Count,
        "",
        "Purges given up after every attempt, their keys dropped (process-wide).",
    ),
];

/// Bucket bounds, in seconds, for the load durations (`cache_load_duration_seconds`): 100 µs
/// to 10 s. Exporters render a histogram as a Prometheus histogram only when told its
/// buckets; with `metrics-exporter-prometheus`:
///
/// ```ignore
/// PrometheusBuilder::new()
///     .set_buckets_for_metric(
///         metrics_exporter_prometheus::Matcher::Suffix("_seconds".into()),
///         cache_runtime::DURATION_BUCKETS,
///     )?
///     .install_recorder()?;
/// ```
pub const DURATION_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Describes every metric to the installed recorder (its `HELP` and unit). Each export does:
/// a recorder installed after the first cache still learns them.
fn describe() {
    for m in METRICS {
        match m.kind {
            Counter => metrics::describe_counter!(m.name, m.unit, m.help),
            Gauge => metrics::describe_gauge!(m.name, m.unit, m.help),
            Histogram => metrics::describe_histogram!(m.name, m.unit, m.help),
        }
    }
}

fn export(cache: &CacheHandle) {
    let s = cache.stats();
    let (name, backend) = (cache.name().to_owned(), cache.backend());
    let counter =
        |metric: &'static str, label: Option<(&'static str, &'static str)>, value: u64| {
            let labels = [("cache", name.clone()), ("backend", backend.to_owned())];
            match label {
                Some((key, label)) => {
                    let labels = [
                        labels[0].clone(),
                        labels[1].clone(),
                        (key, label.to_owned()),
                    ];
                    metrics::counter!(metric, &labels).absolute(value);
                }
                None => metrics::counter!(metric, &labels).absolute(value),
            }
        };
    let result = |r| Some(("result", r));
    counter("cache.gets.total", result("hit"), s.hits);
    counter("cache.gets.total", result("null_hit"), s.null_hits);
    counter("cache.gets.total", result("miss"), s.misses);
    counter("cache.gets.total", result("stale"), s.stale_hits);
    counter("cache.fail_safe.answers.total", None, s.stale_if_error_hits);
    if backend == "tiered" {
        counter("cache.tier.hits.total", Some(("tier", "l1")), s.l1_hits);
        counter("cache.tier.hits.total", Some(("tier", "l2")), s.l2_hits);
    }
    counter("cache.loads.total", None, s.loads);
    counter("cache.load.errors.total", None, s.load_errors);
    counter("cache.waits.total", None, s.waits);
    counter("cache.refreshes.total", None, s.refreshes);
    counter("cache.store.errors.total", None, s.store_errors);
    counter("cache.store.skips.total", None, s.store_skips);
    counter(
        "cache.invalidations.received.total",
        None,
        s.invalidations_received,
    );
    counter("cache.evictions.total", None, s.evictions);
    counter("cache.oversized.total", None, s.oversized);
    if backend != "memory" {
        counter("cache.store.written.bytes.total", None, s.bytes_written);
    }
    if s.verified + s.verify_skipped > 0 {
        let same = s.verified.saturating_sub(s.mismatched);
        counter("cache.verify.checks.total", result("same"), same);
        counter(
            "cache.verify.checks.total",
            result("differed"),
            s.mismatched,
        );
        counter("cache.verify.skipped.total", None, s.verify_skipped);
    }
    let labels = [("cache", name), ("backend", backend.to_owned())];
    #[allow(clippy::cast_precision_loss, reason = "a gauge is a float")]
    {
        metrics::gauge!("cache.entries", &labels).set(s.size as f64);
        metrics::gauge!("cache.memory.bytes", &labels).set(s.memory_bytes as f64);
        if s.max_bytes > 0 {
            metrics::gauge!("cache.memory.max.bytes", &labels).set(s.max_bytes as f64);
        }
        let saved = s.load_time_saved.as_secs_f64();
        metrics::gauge!("cache.saved.seconds", &labels).set(saved);
        if backend != "memory" {
            let read = s.store_time.as_secs_f64();
            metrics::gauge!("cache.store.read.seconds", &labels).set(read);
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
