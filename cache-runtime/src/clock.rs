//! The cache's clock: milliseconds since the first cache was built, plus a fixed epoch.
//!
//! A hit compares the entry's deadline with `coarse_ms`, one relaxed atomic load of a value
//! that a background thread refreshes every millisecond. Reading `std::time::Instant` instead
//! costs about 22 ns in this project's VMs, more than a whole quick_cache hit (`notes/engines.md`).
//! Writes compute deadlines from `now_ms`, which reads the real clock.
//!
//! **Never late.** The ticker can lag (a busy 2-core machine delayed it by 10.9 ms in a debug
//! build), so the coarse clock only decides far from a deadline: a hit within 64 ms of its
//! entry's deadline reads the real clock. An entry is therefore never served
//! past its deadline unless the ticker lags by more than `SLACK_MS`, and then by at most the lag
//! beyond it.
//!
//! **Asleep when unused.** The ticker ticks for a second after it is woken, then stops (the
//! coarse clock is marked stale) and parks. A read that finds it stopped reads the real clock
//! and wakes it. So a busy process pays one wake-up a second, and an idle one no wake-ups at
//! all (it used to be ~900 a second for the life of the process).
//!
//! If the ticker thread cannot be spawned, `coarse_ms` falls back to the real clock.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{LazyLock, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// How often the ticker refreshes the coarse clock.
const TICK: Duration = Duration::from_millis(1);
/// Ticks after a wake-up before the ticker parks again (about a second).
const AWAKE_TICKS: u32 = 1000;
/// Within this many milliseconds of a deadline, freshness is decided by the real clock.
pub(crate) const SLACK_MS: u64 = 64;

static START: LazyLock<Instant> = LazyLock::new(Instant::now);
/// Milliseconds since `START` (plus `OFFSET`), refreshed by the ticker.
static COARSE: AtomicU64 = AtomicU64::new(0);
/// Set while the ticker ticks; otherwise (parked, or never started) reads take the real clock.
static TICKING: AtomicBool = AtomicBool::new(false);
/// Set by a read that found the ticker parked: the ticker wakes for it.
static WANTED: AtomicBool = AtomicBool::new(false);
/// Added to every reading; only `advance` (feature `test-util`) changes it.
static OFFSET: AtomicU64 = AtomicU64::new(0);
static TICKER: OnceLock<Option<Thread>> = OnceLock::new();

/// Starts the ticker once. Called when a cache is built, never on the hit path.
pub(crate) fn start() {
    TICKER.get_or_init(|| {
        crate::stopwatch::calibrate_in_background();
        spawn_ticker()
    });
}

fn spawn_ticker() -> Option<Thread> {
    COARSE.fetch_max(now_ms(), Relaxed);
    let spawned = std::thread::Builder::new()
        .name("cache-runtime-clock".into())
        .spawn(tick);
    let thread = spawned.ok().map(|handle| handle.thread().clone());
    TICKING.store(thread.is_some(), SeqCst);
    thread
}

/// The ticker: ticks for `AWAKE_TICKS`, then parks until a read wants it.
fn tick() {
    loop {
        for _ in 0..AWAKE_TICKS {
            COARSE.fetch_max(now_ms(), Relaxed);
            std::thread::sleep(TICK);
        }
        WANTED.store(false, SeqCst);
        TICKING.store(false, SeqCst);
        while !WANTED.load(SeqCst) {
            std::thread::park();
        }
        COARSE.fetch_max(now_ms(), Relaxed);
        TICKING.store(true, SeqCst);
    }
}

/// A read that found the ticker stopped: the real clock, and the ticker woken (once).
#[cold]
fn read_and_wake() -> u64 {
    if !WANTED.load(Relaxed)
        && !WANTED.swap(true, SeqCst)
        && let Some(Some(ticker)) = TICKER.get()
    {
        ticker.unpark();
    }
    now_ms()
}

/// Where the cache clock starts: 2^40 ms (about 35 years), so that times before the process
/// started (entries other processes wrote to Redis) are times on this clock too.
const EPOCH_MS: u64 = 1 << 40;

/// The real time, in milliseconds on the cache clock (which starts at `EPOCH_MS`).
pub(crate) fn now_ms() -> u64 {
    let elapsed = u64::try_from(START.elapsed().as_millis()).unwrap_or(u64::MAX);
    elapsed
        .saturating_add(EPOCH_MS)
        .saturating_add(OFFSET.load(Relaxed))
}

/// The Unix time (ms) at which the cache clock reads 0: times written to Redis and read back
/// convert exactly, and age with `advance` in tests. Set at first use, and set again when the
/// system clock has stepped more than [`RESYNC_MS`] away from it (a step by NTP or an
/// operator, a suspended VM: the monotonic clock does not count suspend), so that processes
/// agree on phases within their system clocks' disagreement plus that bound.
#[cfg(feature = "redis")]
static UNIX_BASE: AtomicU64 = AtomicU64::new(0);
/// How far the system clock may step away from the cache clock before the base follows it.
#[cfg(feature = "redis")]
const RESYNC_MS: u64 = 100;

/// The base that the system clock says now.
#[cfg(feature = "redis")]
fn system_base() -> u64 {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let elapsed = u64::try_from(START.elapsed().as_millis()).unwrap_or(0);
    unix.saturating_sub(elapsed.saturating_add(EPOCH_MS))
}

/// The current base, following a step of the system clock.
#[cfg(feature = "redis")]
fn unix_base() -> u64 {
    let base = UNIX_BASE.load(Relaxed);
    let system = system_base();
    if base == 0 || base.abs_diff(system) > RESYNC_MS {
        UNIX_BASE.store(system, Relaxed);
        return system;
    }
    base
}

/// Milliseconds since the Unix epoch, on the cache clock (monotonic; moved by `advance`).
#[cfg(feature = "redis")]
pub(crate) fn unix_now_ms() -> u64 {
    to_unix_ms(now_ms())
}

/// A time on the cache clock as ms since the Unix epoch (for other processes); "never"
/// (`u64::MAX`) and "none" (0) stay as they are.
#[cfg(feature = "redis")]
pub(crate) fn to_unix_ms(local: u64) -> u64 {
    match local {
        0 | u64::MAX => local,
        _ => local.saturating_add(unix_base()),
    }
}

/// A time in ms since the Unix epoch on the cache clock; "never" and "none" stay.
#[cfg(feature = "redis")]
pub(crate) fn from_unix_ms(unix: u64) -> u64 {
    match unix {
        0 | u64::MAX => unix,
        _ => unix.saturating_sub(unix_base()).max(1),
    }
}

/// The time on the hit path: behind `now_ms` by a tick, or by the ticker's lag.
#[inline]
pub(crate) fn coarse_ms() -> u64 {
    if TICKING.load(Relaxed) {
        COARSE.load(Relaxed)
    } else {
        read_and_wake()
    }
}

/// Whether `deadline` is still ahead: the coarse clock decides when the deadline is more than
/// [`SLACK_MS`] away, the real clock when it is near.
#[inline]
pub(crate) fn before(deadline: u64) -> bool {
    before_at(coarse_ms(), deadline)
}

/// [`before`] with the coarse clock already read (`coarse`), for a path that asks twice.
#[inline]
pub(crate) fn before_at(coarse: u64, deadline: u64) -> bool {
    if coarse.saturating_add(SLACK_MS) < deadline {
        return true;
    }
    coarse < deadline && now_ms() < deadline
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

    /// Issue 11 (#8): an entry is never fresh once the real clock reached its deadline, even
    /// when the coarse clock is a tick (or a lag) behind. With the coarse clock alone, most of
    /// these deadlines read as still ahead.
    #[test]
    fn a_deadline_just_reached_is_never_ahead() {
        start();
        let until = Instant::now() + Duration::from_millis(300);
        while Instant::now() < until {
            let deadline = now_ms();
            assert!(!before(deadline), "served at or past its deadline");
            assert!(before(now_ms() + SLACK_MS * 4), "far deadlines are ahead");
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    /// Issue 11 (#8): the ticker parks when nothing reads the clock, and a read wakes it.
    #[test]
    fn the_ticker_sleeps_when_unused_and_wakes_on_a_read() {
        start();
        let give_up = Instant::now() + Duration::from_secs(20);
        // Nothing else in this test binary reads the clock for long: it parks within ~1 s.
        while TICKING.load(SeqCst) {
            assert!(Instant::now() < give_up, "the ticker never parked");
            std::thread::sleep(Duration::from_millis(50));
        }
        let before_wake = coarse_ms(); // a read: wakes it
        while !TICKING.load(SeqCst) {
            assert!(Instant::now() < give_up, "a read did not wake the ticker");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(coarse_ms() >= before_wake);
    }

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
