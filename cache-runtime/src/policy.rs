//! What an attribute decided, at run time: lifetimes, freshness phases, jitter, capacity and
//! locking.

use std::time::Duration;

use crate::clock;
use crate::entry::Times;

/// A duration in whole milliseconds, saturating.
pub(crate) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// How callers of one key coordinate a load (the `lock` argument of `#[cached]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lock {
    /// Every caller that misses runs the body.
    None,
    /// One load per key per process: other callers wait for it (single-flight).
    Local,
    /// One load per key across the processes sharing Redis (a Redis lease).
    Distributed,
}

/// How values are written to Redis (the `codec` argument of `#[cached]`); see the README's
/// "Layout, for other services".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Codec {
    /// MessagePack (rmp-serde) in the binary envelope: exact for every serde value.
    #[default]
    MessagePack,
    /// JSON in a JSON envelope, readable by any service; a value JSON cannot represent
    /// (NaN, ±infinity, a map with keys that are not strings or numbers) is refused at write.
    Json,
}

/// How values are compressed in Redis (the `compress` argument of `#[cached]`): values whose
/// encoding is at least `compress_min` bytes, when that makes them smaller; see the README's
/// "Layout, for other services" for the envelope's flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Compression {
    /// Values are written as encoded (readers still read compressed entries).
    #[default]
    None,
    /// Zstandard (RFC 8878), level 3: the best ratio of the two.
    Zstd,
    /// LZ4 block format, with the uncompressed length in front: the fastest.
    Lz4,
}

/// The default `compress_min`: values shorter than this are written as they are.
pub const DEFAULT_COMPRESS_MIN: u64 = 1024;

/// The settings of one cached function, built by the generated code from its attribute.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// Lifetime of a value; `None` keeps it until it is evicted or invalidated.
    pub ttl: Option<Duration>,
    /// Lifetime of a null result; zero turns null caching off.
    pub null_ttl: Duration,
    /// Each entry lives `ttl × (1 − u)`, `u` uniform in `[0, jitter)`: jitter spreads
    /// expiries within `ttl` (and `null_ttl`), never past it.
    pub jitter: f64,
    /// Capacity of the in-process store, in entries (`u64::MAX`: bounded by `max_bytes` only).
    pub max_entries: u64,
    /// Capacity of the in-process store in bytes, as [`Weigh`](crate::Weigh) counts them;
    /// `None` for a count only.
    pub max_bytes: Option<u64>,
    /// How values are compressed in Redis.
    pub compress: Compression,
    /// The least encoded size, in bytes, that is compressed.
    pub compress_min: u64,
    /// Stampede protection.
    pub lock: Lock,
    /// How long a caller waits for another caller's load before loading itself.
    pub lock_timeout: Duration,
    /// How values are written to Redis.
    pub codec: Codec,
    /// After a value expires, how long it is still served at once while one revalidation
    /// runs (stale-while-revalidate); zero for none.
    pub stale: Duration,
    /// After a value expires, how long it answers in place of a failed load (fail-safe);
    /// zero for none.
    pub stale_if_error: Duration,
    /// With a stale value at hand, how long a caller waits for a load before it answers with
    /// that value; `None` waits for the load.
    pub load_timeout: Option<Duration>,
    /// XFetch's β: a hit refreshes early with a probability that grows near expiry; zero
    /// for never.
    pub early_refresh: f64,
    /// `backend = "tiered"`: the longest life of an entry's copy in the in-process L1;
    /// `None` for `min(ttl, 30 s)`.
    pub l1_ttl: Option<Duration>,
    /// The fraction of hits whose load runs again, off the caller's path, to check that the
    /// value served is still right (`verify`); zero for none.
    pub verify: f64,
}

/// The default longest life of an L1 copy.
const DEFAULT_L1_TTL: Duration = Duration::from_secs(30);

/// The longest a failed load holds off the next load of its key (fail-safe throttle).
const MAX_THROTTLE: Duration = Duration::from_secs(5);

/// The least time a load whose async caller was cancelled may go on (see
/// [`Policy::detached_limit`]).
const DETACHED_LOAD_LIMIT: Duration = Duration::from_secs(60);

impl Policy {
    /// The deadline, on the cache clock, of an entry written now (with the lifetime
    /// `chosen` by `ttl_fn`, if any); `u64::MAX` means never.
    pub(crate) fn deadline(&self, null: bool, chosen: Option<Duration>, now_ms: u64) -> u64 {
        let ttl = match (null, chosen) {
            (_, Some(chosen)) => Some(chosen),
            (true, None) => Some(self.null_ttl),
            (false, None) => self.ttl,
        };
        match ttl {
            None => u64::MAX,
            Some(ttl) => {
                // Within the bound a user relies on (issue 22): shortened, never stretched.
                let shrink = 1.0 - fastrand::f64() * self.jitter.clamp(0.0, 1.0);
                let ms = ttl.as_millis() as f64 * shrink;
                now_ms.saturating_add(ms as u64)
            }
        }
    }

    /// The times of an entry written at `now_ms` by a load that took `load_us` µs, for the
    /// lifetime `chosen` by `ttl_fn` (`None`: `ttl` or `null_ttl`).
    pub(crate) fn times(
        &self,
        null: bool,
        chosen: Option<Duration>,
        now_ms: u64,
        load_us: u32,
    ) -> Times {
        let fresh_until_ms = self.deadline(null, chosen, now_ms);
        Times {
            fresh_until_ms,
            stale_until_ms: fresh_until_ms.saturating_add(ms(self.grace())),
            load_us,
            retry_at_ms: 0,
            written_ms: now_ms,
            // Never 0 (a hand-over's).
            version: fastrand::u64(1..),
        }
    }

    /// The stale windows an answer reports: `(stale, stale_if_error)`.
    pub(crate) fn windows(&self) -> (Duration, Duration) {
        (self.stale, self.stale_if_error)
    }

    /// How long an expired entry is kept: `max(stale, stale_if_error)`.
    pub(crate) fn grace(&self) -> Duration {
        self.stale.max(self.stale_if_error)
    }

    /// Whether expired entries are kept at all, or hits may refresh early.
    pub(crate) fn has_phases(&self) -> bool {
        !self.grace().is_zero() || self.early_refresh > 0.0
    }

    /// The longest life of an L1 copy: `l1_ttl`, or `min(ttl, 30 s)`.
    pub(crate) fn l1_life(&self) -> Duration {
        self.l1_ttl
            .unwrap_or_else(|| self.ttl.map_or(DEFAULT_L1_TTL, |t| t.min(DEFAULT_L1_TTL)))
    }

    /// How long a load whose async caller was cancelled goes on, at most, after the cancel:
    /// `max(60 s, lock_timeout)`. Then it is dropped (its lease released, a waiter loads).
    pub(crate) fn detached_limit(&self) -> Duration {
        self.lock_timeout.max(DETACHED_LOAD_LIMIT)
    }

    /// How long a failed load holds off the next load of its key: `min(5 s, ttl)`.
    pub(crate) fn throttle(&self) -> Duration {
        self.ttl.map_or(MAX_THROTTLE, |ttl| ttl.min(MAX_THROTTLE))
    }

    /// Whether a null result is stored at all.
    pub(crate) fn caches_nulls(&self) -> bool {
        !self.null_ttl.is_zero()
    }

    /// The times of an entry written at the current time.
    ///
    /// Read on the coarse clock, like the hit path: an entry may end up to a tick (1 ms) early,
    /// and a miss does not pay for reading the real clock.
    pub(crate) fn times_from_now(
        &self,
        null: bool,
        chosen: Option<Duration>,
        load_us: u32,
    ) -> Times {
        self.times(null, chosen, clock::coarse_ms(), load_us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(ttl_s: u64, jitter: f64) -> Policy {
        Policy {
            ttl: Some(Duration::from_secs(ttl_s)),
            null_ttl: Duration::from_secs(7),
            jitter,
            max_entries: 10,
            max_bytes: None,
            compress: Compression::None,
            compress_min: DEFAULT_COMPRESS_MIN,
            lock: Lock::Local,
            lock_timeout: Duration::from_secs(5),
            codec: Codec::MessagePack,
            stale: Duration::ZERO,
            stale_if_error: Duration::ZERO,
            load_timeout: None,
            early_refresh: 0.0,
            l1_ttl: None,
            verify: 0.0,
        }
    }

    #[test]
    fn deadlines_spread_over_the_jitter_window() {
        let p = policy(100, 0.5);
        let deadlines: Vec<u64> = (0..2000).map(|_| p.deadline(false, None, 1_000)).collect();
        assert!(deadlines.iter().all(|&d| (51_000..=101_000).contains(&d)));
        let early = deadlines.iter().filter(|&&d| d < 76_000).count();
        assert!(
            (600..1400).contains(&early),
            "jitter is not uniform: {early} of 2000 early"
        );
    }

    #[test]
    fn no_jitter_means_exact_ttl_and_nulls_use_their_own_ttl() {
        let p = policy(100, 0.0);
        assert_eq!(p.deadline(false, None, 5), 100_005);
        assert_eq!(p.deadline(true, None, 5), 7_005);
    }

    #[test]
    fn no_ttl_never_expires() {
        let p = Policy {
            ttl: None,
            ..policy(1, 0.1)
        };
        assert_eq!(p.deadline(false, None, 5), u64::MAX);
    }
}
