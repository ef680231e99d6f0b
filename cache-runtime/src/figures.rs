//! What a cache measures beyond its counters, for [`crate::report`]: how long its loads
//! take, how old the hits were that `verify` checked (and those that differed), how often it
//! is invalidated, and how long it has been open. (The time saved and the store's time are
//! striped counters: `stats.rs`.)

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::histogram::{Counts, Histogram};

/// One cache's measurements, written by its engine off the hit path.
pub(crate) struct Measured {
    /// Each load's duration, µs (the one its entry keeps).
    pub(crate) loads: Histogram,
    /// The served age of each verified hit, ms.
    pub(crate) verified_ages: Histogram,
    /// The served age of each verified hit whose fresh value differed, ms.
    pub(crate) mismatched_ages: Histogram,
    /// Picked hits not verified.
    pub(crate) verify_skipped: AtomicU64,
    /// Invalidations of a key or of the whole cache made by this process.
    pub(crate) invalidations: AtomicU64,
    opened: Instant,
}

impl Measured {
    pub(crate) fn new() -> Self {
        Measured {
            loads: Histogram::new(),
            verified_ages: Histogram::new(),
            mismatched_ages: Histogram::new(),
            verify_skipped: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
            opened: Instant::now(),
        }
    }

    /// Adds the counts kept here to `stats`: verifications.
    pub(crate) fn add_to(&self, stats: &mut crate::Stats) {
        // Mismatches first: a verification records its mismatch before its check, so a
        // snapshot never has more mismatches than checks.
        stats.mismatched = self.mismatched_ages.snapshot().total();
        stats.verified = self.verified_ages.snapshot().total();
        stats.verify_skipped = self.verify_skipped.load(Relaxed);
    }

    /// The measurements now; `verify` is the cache's fraction of hits verified.
    pub(crate) fn snapshot(&self, verify: f64) -> Figures {
        let mismatched_ages_ms = self.mismatched_ages.snapshot();
        Figures {
            loads_us: self.loads.snapshot(),
            verified_ages_ms: self.verified_ages.snapshot(),
            mismatched_ages_ms,
            invalidations: self.invalidations.load(Relaxed),
            open_for: self.opened.elapsed(),
            verify,
        }
    }
}

/// A snapshot of [`Measured`].
#[derive(Clone, Debug, Default)]
pub(crate) struct Figures {
    pub(crate) loads_us: Counts,
    pub(crate) verified_ages_ms: Counts,
    pub(crate) mismatched_ages_ms: Counts,
    pub(crate) invalidations: u64,
    pub(crate) open_for: Duration,
    pub(crate) verify: f64,
}
