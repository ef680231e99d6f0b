//! A circuit breaker for the Redis connection.
//!
//! After `threshold` failures in a row it opens: calls skip Redis at once (no added latency)
//! and go through the in-process fallback. After `cooldown` one call is let through as a
//! probe (half-open); its success closes the breaker, its failure opens it again.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::clock;

pub(crate) struct Breaker {
    threshold: u32,
    cooldown_ms: u64,
    failures: AtomicU32,
    /// 0 while closed; else the time (real clock, ms) at which the next probe may go. A probe
    /// moves it one cooldown ahead, so a probe whose answer never comes (its caller gave up)
    /// is followed by another one, never by a breaker stuck open.
    open_until_ms: AtomicU64,
    /// Bumped each time the breaker closes after being open (a recovery).
    recoveries: AtomicU64,
}

impl Breaker {
    pub(crate) fn new(threshold: u32, cooldown: Duration) -> Self {
        Breaker {
            threshold: threshold.max(1),
            cooldown_ms: u64::try_from(cooldown.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
            failures: AtomicU32::new(0),
            open_until_ms: AtomicU64::new(0),
            recoveries: AtomicU64::new(0),
        }
    }

    /// Whether a call may use Redis now: always while closed; while open, one call per
    /// cooldown (the probe).
    pub(crate) fn allow(&self) -> bool {
        let until = self.open_until_ms.load(Relaxed);
        if until == 0 {
            return true;
        }
        let now = clock::now_ms();
        now >= until
            && self
                .open_until_ms
                .compare_exchange(
                    until,
                    now.saturating_add(self.cooldown_ms),
                    Relaxed,
                    Relaxed,
                )
                .is_ok()
    }

    /// Called after every successful operation: reads first, so that a healthy connection
    /// does not write a shared cache line on every call.
    pub(crate) fn success(&self) {
        if self.failures.load(Relaxed) != 0 {
            self.failures.store(0, Relaxed);
        }
        if self.open_until_ms.load(Relaxed) != 0 && self.open_until_ms.swap(0, Relaxed) != 0 {
            self.recoveries.fetch_add(1, Relaxed);
        }
    }

    /// Records a failure; returns whether this one opened the breaker.
    pub(crate) fn failure(&self) -> bool {
        let failures = self.failures.fetch_add(1, Relaxed).saturating_add(1);
        let reopen_at = clock::now_ms().saturating_add(self.cooldown_ms);
        if self.open_until_ms.load(Relaxed) != 0 {
            // A failed probe: wait another cooldown.
            self.open_until_ms.store(reopen_at, Relaxed);
            return false;
        }
        failures >= self.threshold
            && self
                .open_until_ms
                .compare_exchange(0, reopen_at, Relaxed, Relaxed)
                .is_ok()
    }

    pub(crate) fn is_open(&self) -> bool {
        self.open_until_ms.load(Relaxed) != 0
    }

    /// How many times the breaker closed after being open.
    pub(crate) fn recoveries(&self) -> u64 {
        self.recoveries.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_probes_once_after_the_cooldown() {
        clock::start();
        let b = Breaker::new(3, Duration::from_millis(30));
        assert!(b.allow());
        assert!(!b.failure());
        assert!(!b.failure());
        assert!(b.failure(), "the third failure opens it");
        assert!(b.is_open());
        assert!(!b.allow(), "open: no calls");
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow(), "one probe after the cooldown");
        assert!(!b.allow(), "only one");
        assert!(!b.failure(), "a failed probe keeps it open");
        assert!(!b.allow());
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow());
        b.success();
        assert!(!b.is_open());
        assert!(b.allow() && b.allow(), "closed: every call");
        assert_eq!(b.recoveries(), 1);
    }

    #[test]
    fn a_probe_that_never_answers_is_followed_by_another() {
        clock::start();
        let b = Breaker::new(1, Duration::from_millis(20));
        assert!(b.failure());
        std::thread::sleep(Duration::from_millis(25));
        assert!(b.allow(), "the probe");
        // Its caller gave up: neither success nor failure is recorded.
        assert!(!b.allow());
        std::thread::sleep(Duration::from_millis(25));
        assert!(b.allow(), "another probe, one cooldown later");
    }

    #[test]
    fn successes_reset_the_count() {
        let b = Breaker::new(2, Duration::from_secs(60));
        assert!(!b.failure());
        b.success();
        assert!(!b.failure(), "the count started again");
        assert!(!b.is_open());
    }
}
