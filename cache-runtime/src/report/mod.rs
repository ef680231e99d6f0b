//! [`report`]: is each cache right? One row per registered cache with what it costs, what it
//! saves, how fresh its hits were (with `verify`), and a verdict against four questions asked
//! before caching anything: is it read more than written, expensive to compute, safe to serve
//! a little stale, hot? The rules of the verdicts are in [`Verdict`].

mod table;
mod verdict;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::handle::CacheHandle;

pub use verdict::{Verdict, VerdictKind};

/// Every registered cache's row, made now.
///
/// ```
/// use cache_runtime::cached;
///
/// #[cached(ttl = 60, backend = "memory", name = "report_doc_square")]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// for x in 0..200 {
///     square(x % 10);
/// }
/// let report = cache_runtime::report();
/// let row = report.row("report_doc_square").expect("registered");
/// assert_eq!((row.calls, row.loads), (200, 10));
/// println!("{report}"); // a table, one line per cache
/// ```
pub fn report() -> Report {
    let hit_cost = hit_cost();
    let rows = crate::registry::caches()
        .iter()
        .map(|cache| Row::of(cache, hit_cost))
        .collect();
    Report { rows, hit_cost }
}

/// What [`report`] answers: a row per cache. `Display` writes it as a table; with the `serde`
/// feature it serializes (durations as seconds, `f64`).
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Report {
    /// One per registered cache, in the order they were made.
    pub rows: Vec<Row>,
    /// What one in-process hit costs on this machine, as measured by the report (a lookup in
    /// a warm quick_cache of word-sized entries): the cost of the cache's own hits.
    #[cfg_attr(feature = "serde", serde(serialize_with = "seconds"))]
    pub hit_cost: Duration,
}

impl Report {
    /// The row of the cache named `name`.
    pub fn row(&self, name: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.name == name)
    }
}

/// One cache in a [`Report`].
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Row {
    /// The cache's name.
    pub name: String,
    /// `"memory"`, `"redis"` or `"tiered"`.
    pub backend: &'static str,
    /// Calls: hits, null hits, stale hits and misses.
    pub calls: u64,
    /// Calls per second since the cache was made.
    pub calls_per_second: f64,
    /// Hits (with null and stale hits) per call; `None` before the first call.
    pub hit_ratio: Option<f64>,
    /// Loads started (the body run).
    pub loads: u64,
    /// Loads that failed or panicked.
    pub load_errors: u64,
    /// The median load (within 12.5%); `None` before the first.
    #[cfg_attr(feature = "serde", serde(serialize_with = "opt_seconds"))]
    pub load_p50: Option<Duration>,
    /// The 99th percentile load (within 12.5%).
    #[cfg_attr(feature = "serde", serde(serialize_with = "opt_seconds"))]
    pub load_p99: Option<Duration>,
    /// The load time the cache's answers saved ([`Stats::load_time_saved`](crate::Stats)).
    #[cfg_attr(feature = "serde", serde(serialize_with = "seconds"))]
    pub time_saved: Duration,
    /// What the cache itself cost its callers: the shared store's reads (measured) plus the
    /// in-process hits times [`Report::hit_cost`].
    #[cfg_attr(feature = "serde", serde(serialize_with = "seconds"))]
    pub cache_time: Duration,
    /// Invalidations of a key or of the whole cache made by this process.
    pub invalidations: u64,
    /// `invalidations / calls`.
    pub invalidations_per_call: f64,
    /// The fraction of hits verified (`verify`); 0 for none.
    pub verify: f64,
    /// Hits verified.
    pub verified: u64,
    /// Verified hits whose fresh value differed.
    pub mismatched: u64,
    /// The age from which verified hits start to differ: the least age of the first band with
    /// at least 5 verified hits of which 10% or more differed; `None` if there is none.
    #[cfg_attr(feature = "serde", serde(serialize_with = "opt_seconds"))]
    pub mismatches_from: Option<Duration>,
    /// Verified hits by the age of the value served, in bands doubling in width.
    pub by_age: Vec<AgeBand>,
    /// Bytes held in process ([`Stats::memory_bytes`](crate::Stats)).
    pub memory_bytes: u64,
    /// Entries evicted to make room.
    pub evictions: u64,
    /// The verdict, with the figure behind it.
    pub verdict: Verdict,
}

/// Verified hits whose served value was `from..to` old.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct AgeBand {
    /// The least age in the band.
    #[cfg_attr(feature = "serde", serde(serialize_with = "seconds"))]
    pub from: Duration,
    /// The first age past the band.
    #[cfg_attr(feature = "serde", serde(serialize_with = "seconds"))]
    pub to: Duration,
    /// Hits verified.
    pub verified: u64,
    /// Of those, the ones whose fresh value differed.
    pub mismatched: u64,
}

impl Row {
    fn of(cache: &CacheHandle, hit_cost: Duration) -> Row {
        let s = cache.stats();
        let f = cache.figures();
        let answers = s.hits + s.null_hits + s.stale_hits;
        let calls = answers + s.misses;
        let secs = f.open_for.as_secs_f64().max(1e-3);
        let by_age: Vec<AgeBand> = f
            .verified_ages_ms
            .bands()
            .zip(f.mismatched_ages_ms.bands())
            .filter(|((_, _, n), _)| *n > 0)
            .map(|((from, to, verified), (_, _, mismatched))| AgeBand {
                from: Duration::from_millis(from),
                to: Duration::from_millis(to),
                verified,
                mismatched,
            })
            .collect();
        let in_process = match cache.backend() {
            "memory" => answers,
            "tiered" => s.l1_hits,
            _ => 0,
        };
        let cache_time = s.store_time + hit_cost.saturating_mul(saturate(in_process));
        let us = |q| f.loads_us.quantile(q).map(Duration::from_micros);
        #[allow(clippy::cast_precision_loss, reason = "rates")]
        let mut row = Row {
            name: cache.name().to_owned(),
            backend: cache.backend(),
            calls,
            calls_per_second: calls as f64 / secs,
            hit_ratio: s.hit_ratio(),
            loads: s.loads,
            load_errors: s.load_errors,
            load_p50: us(0.5),
            load_p99: us(0.99),
            time_saved: s.load_time_saved,
            cache_time,
            invalidations: f.invalidations,
            invalidations_per_call: f.invalidations as f64 / calls.max(1) as f64,
            verify: f.verify,
            verified: s.verified,
            mismatched: s.mismatched,
            mismatches_from: verdict::mismatches_from(&by_age),
            by_age,
            memory_bytes: s.memory_bytes,
            evictions: s.evictions,
            verdict: Verdict::default(),
        };
        row.verdict = verdict::judge(&row, &s, hit_cost);
        row
    }
}

fn saturate(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// What one in-process hit costs here: lookups in a warm quick_cache of word-sized entries,
/// timed once per process (about a millisecond).
fn hit_cost() -> Duration {
    static COST: OnceLock<Duration> = OnceLock::new();
    *COST.get_or_init(|| {
        const KEYS: u64 = 1024;
        const LOOKUPS: u32 = 100_000;
        let cache = quick_cache::sync::Cache::<u64, u64>::new(KEYS as usize * 2);
        for k in 0..KEYS {
            cache.insert(k, k);
        }
        let started = Instant::now();
        let mut found = 0_u64;
        for i in 0..u64::from(LOOKUPS) {
            found += cache
                .get(&(i.wrapping_mul(0x9E37_79B9) % KEYS))
                .unwrap_or(0);
        }
        std::hint::black_box(found);
        started.elapsed() / LOOKUPS
    })
}

#[cfg(feature = "serde")]
fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

#[cfg(feature = "serde")]
#[allow(clippy::ref_option, reason = "serde's signature")]
fn opt_seconds<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_secs_f64()),
        None => s.serialize_none(),
    }
}
