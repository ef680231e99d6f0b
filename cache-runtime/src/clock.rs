//! The cache's clock: milliseconds since the first cache was built.
//!
//! A hit compares the entry's deadline with `coarse_ms`, one relaxed atomic load of a value
//! that a background thread refreshes every millisecond. Reading `std::time::Instant` instead
//! costs about 22 ns in this project's VMs, more than a whole quick_cache hit (`notes/engines.md`).
//! Writes compute deadlines from `now_ms`, which reads the real clock. The coarse clock lags by
//! at most a tick, so an entry may be served up to about a millisecond past its deadline.
//!
//! If the ticker thread cannot be spawned, `coarse_ms` falls back to the real clock.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// How often the ticker refreshes the coarse clock.
const TICK: Duration = Duration::from_millis(1);

static START: LazyLock<Instant> = LazyLock::new(Instant::now);
/// Milliseconds since `START` (plus `OFFSET`), refreshed by the ticker.
static COARSE: AtomicU64 = AtomicU64::new(0);
/// Set when the ticker runs; until then (or if it never can) reads take the real clock.
static TICKING: AtomicBool = AtomicBool::new(false);
/// Added to every reading; only `advance` (feature `test-util`) changes it.
static OFFSET: AtomicU64 = AtomicU64::new(0);
static TICKER: LazyLock<()> = LazyLock::new(spawn_ticker);

/// Starts the ticker once. Called when a cache is built, never on the hit path.
pub(crate) fn start() {
    LazyLock::force(&TICKER);
}

fn spawn_ticker() {
    COARSE.fetch_max(now_ms(), Relaxed);
    let spawned = std::thread::Builder::new()
        .name("cache-runtime-clock".into())
        .spawn(|| {
            loop {
                COARSE.fetch_max(now_ms(), Relaxed);
                std::thread::sleep(TICK);
            }
        });
    TICKING.store(spawned.is_ok(), Relaxed);
}

/// The real time, in milliseconds since the cache clock started.
pub(crate) fn now_ms() -> u64 {
    let elapsed = u64::try_from(START.elapsed().as_millis()).unwrap_or(u64::MAX);
    elapsed.saturating_add(OFFSET.load(Relaxed))
}

/// The time on the hit path: at most one tick behind `now_ms`.
#[inline]
pub(crate) fn coarse_ms() -> u64 {
    if TICKING.load(Relaxed) {
        COARSE.load(Relaxed)
    } else {
        now_ms()
    }
}

/// Moves the cache clock forward by `by`, for tests of expiry that must not sleep.
///
/// Every cache in the process sees the jump at once. Tests that use it should run in a
/// process of their own (an integration-test file of their own), since tests running
/// beside them see their entries age too.
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub fn advance(by: Duration) {
    let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
    OFFSET.fetch_add(ms, Relaxed);
    COARSE.fetch_max(now_ms(), Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarse_clock_follows_the_real_one() {
        start();
        let target = now_ms() + 10;
        let give_up = Instant::now() + Duration::from_secs(10);
        while coarse_ms() < target {
            assert!(
                Instant::now() < give_up,
                "the coarse clock stopped at {}",
                coarse_ms()
            );
            std::thread::sleep(TICK);
        }
        assert!(coarse_ms() <= now_ms());
    }
}
