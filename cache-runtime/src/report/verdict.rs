//! The verdict of a [`Row`]: the rules are [`Verdict`]'s docs.

use std::fmt;
use std::time::Duration;

use crate::Stats;

use super::{AgeBand, Row};

/// Calls below which nothing is judged.
const MIN_CALLS: u64 = 100;
/// Verified hits, and loads, below which those figures are not judged.
const MIN_SAMPLES: u64 = 20;
/// A band's verified hits below which its mismatch share is not read.
const MIN_BAND: u64 = 5;
/// The mismatch share of a band from which mismatches have started.
const BAND_SHARE: f64 = 0.10;

/// What a cache's figures say of it: a kind, and the sentence with the figure behind it.
///
/// The rules, tried in this order (the first that holds is the verdict), each answering one
/// of the four questions to ask before caching (is it read more than written, expensive to
/// compute, safe to serve a little stale, hot?):
///
/// | verdict | when | why | what it says to do |
/// |---|---|---|---|
/// | too few calls | under 100 calls | no figure means anything yet | nothing |
/// | [`Stale`](VerdictKind::Stale) | 20+ verified hits (`verify`) and 1%+ of them differed | a differing hit served a wrong value: the data changes faster than entries live, or a write does not invalidate | invalidate on write, or a `ttl` under the age where mismatches start (the first age band, doubling in width, where 10%+ of 5+ verified hits differed) |
/// | [`Cheap`](VerdictKind::Cheap) | 20+ loads, and the cache's own cost (its store reads, measured, and its in-process hits at [`Report::hit_cost`](super::Report::hit_cost)) exceeds the load time its answers saved; or, in process, a median load under 1 µs (the resolution) | the cache saves nothing and adds staleness and memory | keep it in process (a shared store), or do not cache |
/// | [`WriteHeavy`](VerdictKind::WriteHeavy) | 0.5+ invalidations per call | most loads are thrown away before they are read | do not cache |
/// | [`Cold`](VerdictKind::Cold) | hit ratio under 20% | most entries are never read again | a longer `ttl` if the data allows, else do not cache |
/// | [`Keep`](VerdictKind::Keep) | otherwise | the time saved against the cache's own cost | keep it (verify it, if it is not) |
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Verdict {
    /// Which rule held.
    pub kind: VerdictKind,
    /// The sentence, e.g. "changes faster than it lives: 62% of verified hits older than 2 s
    /// differed; invalidate on write or use ttl ≤ 2 s".
    pub reason: String,
}

/// Which rule of the verdict held (in the order they are tried).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
#[non_exhaustive]
pub enum VerdictKind {
    /// Under 100 calls: nothing to judge yet.
    #[default]
    TooFewCalls,
    /// Verified hits differ from fresh loads: the data changes faster than entries live, or
    /// a write does not invalidate.
    Stale,
    /// A load costs no more than reading the cache.
    Cheap,
    /// Invalidated about as often as read.
    WriteHeavy,
    /// Rarely read again.
    Cold,
    /// Worth caching.
    Keep,
}

impl fmt::Display for VerdictKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VerdictKind::TooFewCalls => "too few calls",
            VerdictKind::Stale => "stale",
            VerdictKind::Cheap => "cheap",
            VerdictKind::WriteHeavy => "write-heavy",
            VerdictKind::Cold => "cold",
            VerdictKind::Keep => "keep",
        })
    }
}

fn verdict(kind: VerdictKind, reason: String) -> Verdict {
    Verdict { kind, reason }
}

/// The age from which verified hits differ: the least age of the first band with
/// [`MIN_BAND`] verified hits of which [`BAND_SHARE`] or more differed.
pub(super) fn mismatches_from(bands: &[AgeBand]) -> Option<Duration> {
    #[allow(clippy::cast_precision_loss, reason = "a share")]
    bands
        .iter()
        .find(|b| b.verified >= MIN_BAND && b.mismatched as f64 >= BAND_SHARE * b.verified as f64)
        .map(|b| b.from)
}

/// The first rule that holds for `row`.
pub(super) fn judge(row: &Row, s: &Stats, hit_cost: Duration) -> Verdict {
    if row.calls < MIN_CALLS {
        let reason = format!("too few calls to judge: {}", row.calls);
        return verdict(VerdictKind::TooFewCalls, reason);
    }
    if let Some(v) = stale(row) {
        return v;
    }
    if let Some(v) = cheap(row, s) {
        return v;
    }
    if row.invalidations_per_call >= 0.5 {
        let reason = format!(
            "written about as often as read: {:.2} invalidations per call; do not cache",
            row.invalidations_per_call
        );
        return verdict(VerdictKind::WriteHeavy, reason);
    }
    let ratio = row.hit_ratio.unwrap_or(0.0);
    if ratio < 0.2 {
        let reason = format!(
            "rarely read again: hit ratio {:.1}%; a longer ttl if the data allows, else do not \
             cache",
            ratio * 100.0
        );
        return verdict(VerdictKind::Cold, reason);
    }
    let checked = match (row.verify > 0.0, row.verified) {
        (false, _) => "not verified (verify = 0.01 checks freshness)".to_owned(),
        (true, n) => format!("{} of {n} verified hits differed", row.mismatched),
    };
    let reason = format!(
        "keep: hit ratio {:.0}%, {} of loads saved for {} of cache time (a hit: {}); {checked}",
        ratio * 100.0,
        human(row.time_saved),
        human(row.cache_time),
        human(hit_cost),
    );
    verdict(VerdictKind::Keep, reason)
}

/// Stale: enough verified hits, and 1% or more of them differed.
#[allow(clippy::cast_precision_loss, reason = "shares")]
fn stale(row: &Row) -> Option<Verdict> {
    if row.verified < MIN_SAMPLES || row.mismatched * 100 < row.verified {
        return None;
    }
    let reason = match row.mismatches_from {
        Some(from) => {
            let older = row.by_age.iter().filter(|b| b.from >= from);
            let (verified, mismatched) =
                older.fold((0, 0), |(v, m), b| (v + b.verified, m + b.mismatched));
            let pct = 100.0 * mismatched as f64 / verified.max(1) as f64;
            format!(
                "changes faster than it lives: {pct:.0}% of verified hits older than {} \
                 differed; invalidate on write or use ttl ≤ {}",
                human(from),
                human(from)
            )
        }
        None => format!(
            "changes faster than it lives: {:.1}% of verified hits differed ({} of {}); \
             invalidate on write or shorten ttl",
            100.0 * row.mismatched as f64 / row.verified as f64,
            row.mismatched,
            row.verified
        ),
    };
    Some(verdict(VerdictKind::Stale, reason))
}

/// Cheap: the cache costs its callers more than it saves them (its reads, measured, against
/// the load time its answers saved), or, in process, the median load is under 1 µs.
fn cheap(row: &Row, s: &Stats) -> Option<Verdict> {
    if row.loads < MIN_SAMPLES {
        return None;
    }
    let advice = match row.backend {
        "memory" => "do not cache",
        _ => "keep it in process or do not cache",
    };
    if row.cache_time > row.time_saved {
        let reads = (s.hits + s.null_hits + s.stale_hits + s.misses).max(1);
        let read = s.store_time / u32::try_from(reads).unwrap_or(u32::MAX);
        let per_read = match s.store_time.is_zero() {
            true => String::new(),
            false => format!(", a read of the store {}", human(read)),
        };
        let reason = format!(
            "cheap: it costs more than it saves: {} of loads saved for {} of cache time \
             (a load {}{per_read}); {advice}",
            human(row.time_saved),
            human(row.cache_time),
            row.load_p50.map_or("-".to_owned(), human),
        );
        return Some(verdict(VerdictKind::Cheap, reason));
    }
    let p50 = row.load_p50?;
    if row.backend != "memory" || p50 >= Duration::from_micros(1) {
        return None;
    }
    let reason = format!("cheap: a load costs under 1 µs, about what a hit costs; {advice}");
    Some(verdict(VerdictKind::Cheap, reason))
}

/// A duration as people write it: `62 ms`, `3 s`, `1.5 min`, `0.4 µs`.
pub(super) fn human(d: Duration) -> String {
    let s = d.as_secs_f64();
    match s {
        s if s >= 120.0 => format!("{:.1} min", s / 60.0),
        s if s >= 10.0 => format!("{s:.0} s"),
        s if s >= 1.0 => format!("{s:.1} s"),
        s if s >= 0.01 => format!("{:.0} ms", s * 1e3),
        s if s >= 0.001 => format!("{:.1} ms", s * 1e3),
        s if s >= 1e-6 => format!("{:.0} µs", s * 1e6),
        s if s > 0.0 => format!("{:.0} ns", s * 1e9),
        _ => "0".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A memory cache's row: 1,000 calls, 900 hits, loads of 20 µs, nothing verified.
    fn row() -> (Row, Stats) {
        let stats = Stats {
            hits: 900,
            misses: 100,
            loads: 100,
            ..Stats::default()
        };
        let row = Row {
            name: "t".into(),
            backend: "memory",
            calls: 1_000,
            calls_per_second: 10.0,
            hit_ratio: Some(0.9),
            loads: 100,
            load_errors: 0,
            load_p50: Some(Duration::from_micros(20)),
            load_p99: Some(Duration::from_micros(40)),
            time_saved: Duration::from_millis(18),
            cache_time: Duration::from_micros(20),
            invalidations: 0,
            invalidations_per_call: 0.0,
            verify: 0.0,
            verified: 0,
            mismatched: 0,
            mismatches_from: None,
            by_age: Vec::new(),
            memory_bytes: 0,
            evictions: 0,
            verdict: Verdict::default(),
        };
        (row, stats)
    }

    fn kind(row: &Row, s: &Stats) -> VerdictKind {
        judge(row, s, Duration::from_nanos(20)).kind
    }

    #[test]
    fn each_rule_in_its_order() {
        let (good, s) = row();
        assert_eq!(kind(&good, &s), VerdictKind::Keep);
        let few = Row {
            calls: 99,
            ..good.clone()
        };
        assert_eq!(kind(&few, &s), VerdictKind::TooFewCalls);
        // Stale wins over everything after it.
        let bands = vec![
            AgeBand {
                from: Duration::from_millis(0),
                to: Duration::from_millis(1),
                verified: 10,
                mismatched: 0,
            },
            AgeBand {
                from: Duration::from_millis(512),
                to: Duration::from_millis(1024),
                verified: 10,
                mismatched: 6,
            },
        ];
        let stale = Row {
            verify: 1.0,
            verified: 20,
            mismatched: 6,
            mismatches_from: mismatches_from(&bands),
            by_age: bands,
            hit_ratio: Some(0.01),
            ..good.clone()
        };
        let v = judge(&stale, &s, Duration::from_nanos(20));
        assert_eq!(v.kind, VerdictKind::Stale);
        assert!(
            v.reason.contains("60% of verified hits older than 512 ms"),
            "{}",
            v.reason
        );
        assert!(v.reason.contains("ttl ≤ 512 ms"), "{}", v.reason);
        // Under 1% differed: not stale.
        let clean = Row {
            verified: 1_000,
            mismatched: 9,
            ..stale.clone()
        };
        assert_ne!(kind(&clean, &s), VerdictKind::Stale);
        let costly = Row {
            cache_time: Duration::from_millis(30),
            ..good.clone()
        };
        assert_eq!(kind(&costly, &s), VerdictKind::Cheap);
        let instant = Row {
            load_p50: Some(Duration::ZERO),
            ..good.clone()
        };
        assert_eq!(kind(&instant, &s), VerdictKind::Cheap);
        let written = Row {
            invalidations_per_call: 0.6,
            ..good.clone()
        };
        assert_eq!(kind(&written, &s), VerdictKind::WriteHeavy);
        let cold = Row {
            hit_ratio: Some(0.1),
            ..good.clone()
        };
        assert_eq!(kind(&cold, &s), VerdictKind::Cold);
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human(Duration::from_millis(62)), "62 ms");
        assert_eq!(human(Duration::from_secs(3)), "3.0 s");
        assert_eq!(human(Duration::from_nanos(400)), "400 ns");
        assert_eq!(human(Duration::from_secs(600)), "10.0 min");
        assert_eq!(human(Duration::ZERO), "0");
    }
}
