//! A histogram of durations that many threads record into without a lock: log-linear
//! buckets (four per power of two, so a quantile is off by at most 12.5%), one relaxed atomic
//! add per sample. Used for loads (µs) and `verify`'s ages (ms); read by [`crate::report`].

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Buckets per power of two.
const SUB: u64 = 4;
/// Enough for every `u32` value.
const BUCKETS: usize = 128;

/// Counts of values by bucket.
pub(crate) struct Histogram {
    buckets: Box<[AtomicU64]>,
}

/// The bucket of `v`.
fn index(v: u64) -> usize {
    let v = v.min(u64::from(u32::MAX));
    if v < SUB {
        return v as usize;
    }
    let p = u64::from(63 - v.leading_zeros());
    let sub = (v >> (p - 2)) & (SUB - 1);
    (SUB * (p - 1) + sub) as usize
}

/// The least value of bucket `i`.
fn low(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let (p, sub) = (i / SUB + 1, i % SUB);
    (SUB + sub) << (p - 2)
}

impl Histogram {
    pub(crate) fn new() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Records one value.
    #[inline]
    pub(crate) fn record(&self, v: u64) {
        self.buckets[index(v)].fetch_add(1, Relaxed);
    }

    /// The counts now.
    pub(crate) fn snapshot(&self) -> Counts {
        Counts(self.buckets.iter().map(|b| b.load(Relaxed)).collect())
    }
}

/// A histogram's counts at one time.
#[derive(Clone, Debug, Default)]
pub(crate) struct Counts(Vec<u64>);

impl Counts {
    /// How many values.
    pub(crate) fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The value at quantile `q` (0..=1): the middle of its bucket; `None` if empty.
    pub(crate) fn quantile(&self, q: f64) -> Option<u64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a rank"
        )]
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &n) in self.0.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let (lo, hi) = (low(i), low(i + 1));
                return Some(lo + (hi - lo) / 2);
            }
        }
        None
    }

    /// The counts by power of two: `(from, to, count)` for values in `from..to`.
    pub(crate) fn bands(&self) -> impl Iterator<Item = (u64, u64, u64)> + '_ {
        self.0
            .chunks(SUB as usize)
            .enumerate()
            .map(|(band, counts)| {
                let first = band * SUB as usize;
                (low(first), low(first + SUB as usize), counts.iter().sum())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_hold_their_values() {
        for v in (0..5_000).chain([u64::from(u32::MAX), u64::MAX]) {
            let i = index(v);
            let v = v.min(u64::from(u32::MAX));
            assert!(low(i) <= v && v < low(i + 1), "{v} in bucket {i}");
        }
    }

    #[test]
    fn quantiles_are_within_an_eighth() {
        let h = Histogram::new();
        for v in 1..=10_000 {
            h.record(v);
        }
        let c = h.snapshot();
        assert_eq!(c.total(), 10_000);
        for (q, want) in [(0.5, 5_000.0), (0.99, 9_900.0)] {
            let got = c.quantile(q).unwrap() as f64;
            assert!((got / want - 1.0).abs() < 0.125, "q{q}: {got}");
        }
        assert_eq!(Histogram::new().snapshot().quantile(0.5), None);
        let bands: u64 = c.bands().map(|(_, _, n)| n).sum();
        assert_eq!(bands, 10_000);
    }
}
