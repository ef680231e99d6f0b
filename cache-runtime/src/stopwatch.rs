//! How long a load took, in microseconds: read on every load (its entry keeps it for XFetch's
//! `δ` and for the time its hits save, `Stats::load_time_saved`).
//!
//! Two reads of `std::time::Instant` cost about 44 ns on this project's VMs; two reads of the
//! CPU's time-stamp counter through [`quanta`] about 21 ns (`BENCHMARKS.md`, issue 27). quanta
//! calibrates the counter against the system clock once (about 0.6 ms here), on a thread of
//! its own started with the first cache, so no caller (and not the cache clock's ticker)
//! waits for it: until it is ready, loads are timed with `Instant`. Where the counter is not
//! reliable, quanta reads the monotonic clock itself.

use std::sync::OnceLock;
use std::time::Instant;

/// The calibrated counter, once the ticker thread made it.
static COUNTER: OnceLock<quanta::Clock> = OnceLock::new();

/// Calibrates the counter (blocking, about 0.6 ms).
pub(crate) fn calibrate() {
    COUNTER.get_or_init(quanta::Clock::new);
}

/// Calibrates the counter on a thread of its own (once; if no thread can be started, loads
/// stay timed with `Instant`).
pub(crate) fn calibrate_in_background() {
    let _ = std::thread::Builder::new()
        .name("cache-runtime-calibrate".into())
        .spawn(calibrate);
}

/// A load's start.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Stopwatch {
    /// A raw reading of the calibrated counter.
    Counter(u64),
    /// Before calibration.
    Std(Instant),
}

impl Stopwatch {
    /// Starts timing.
    #[inline]
    pub(crate) fn start() -> Self {
        match COUNTER.get() {
            Some(clock) => Stopwatch::Counter(clock.raw()),
            None => Stopwatch::Std(Instant::now()),
        }
    }

    /// Microseconds since the start, at most `u32::MAX` (71 minutes).
    #[inline]
    pub(crate) fn elapsed_us(self) -> u32 {
        let nanos = match (self, COUNTER.get()) {
            (Stopwatch::Counter(start), Some(clock)) => clock.delta_as_nanos(start, clock.raw()),
            (Stopwatch::Std(start), _) => {
                u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
            }
            // A counter reading is only taken once the counter exists.
            (Stopwatch::Counter(_), None) => 0,
        };
        u32::try_from(nanos / 1_000).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_a_sleep_before_and_after_calibration() {
        for calibrated in [false, true] {
            if calibrated {
                calibrate();
            }
            let watch = Stopwatch::start();
            assert_eq!(
                matches!(watch, Stopwatch::Counter(_)),
                calibrated || COUNTER.get().is_some()
            );
            std::thread::sleep(Duration::from_millis(3));
            let us = watch.elapsed_us();
            assert!((3_000..1_000_000).contains(&us), "{us} µs for a 3 ms sleep");
        }
    }
}
