//! Freshness phases (DESIGN §10): what a call does with the entry it found, for every backend.
//!
//! ```text
//!  written        fresh_until            + stale                 + stale_if_error
//!     |── fresh ──────|── stale: served at once, ──|── kept: a load runs; ──|── gone
//!     |  (XFetch may  |   one revalidation runs    |   if it fails, the     |
//!     |   refresh)    |                            |   kept value answers   |
//! ```
//!
//! After a failed load the kept value is re-armed with `retry_at` = now + throttle: until then
//! it answers without a load (`Throttled`), so a down database is not retried on every call.

use std::cell::Cell;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};

use crate::entry::{Entry, Slot, Times};
use crate::policy::{Policy, ms};
use crate::stats::Counter;

/// `−ln U` for `U` uniform in (0, 1] exceeds this with probability e⁻⁴⁰: beyond `δ·β·40`
/// before expiry, XFetch never fires, and the hit path draws no random number.
const XFETCH_REACH: f64 = 40.0;

/// What an entry found at a time is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// A hit.
    Fresh,
    /// A hit that also starts an early refresh (XFetch fired).
    Refresh,
    /// Expired within `stale`: served at once; a revalidation starts unless `throttled`.
    Stale { throttled: bool },
    /// Expired within `stale_if_error`, after a failed load, before its throttle ends:
    /// served without a load.
    Throttled,
    /// Expired within `stale_if_error`: a load runs, and the entry answers if it fails.
    Kept,
    /// Past every window: a miss.
    Gone,
}

/// How XFetch decides for a fresh entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Xfetch {
    /// Draw now (an entry read from the backend).
    Roll,
    /// The hit path drew already (an entry of the local store): whether it fired.
    Fired(bool),
}

thread_local! {
    /// Set by the hit path when XFetch fired for the entry it found, taken by the miss path
    /// that follows on the same thread (before any await).
    static FIRED: Cell<bool> = const { Cell::new(false) };
}

/// Marks that the hit path's XFetch draw fired.
#[cold]
pub(crate) fn fire() {
    FIRED.set(true);
}

/// Whether the hit path's XFetch draw fired for this call (and clears the mark).
pub(crate) fn take_fired() -> bool {
    FIRED.replace(false)
}

impl Policy {
    /// The phase of an entry with `times` at `now_ms`.
    pub(crate) fn phase(&self, times: &Times, now_ms: u64, xfetch: Xfetch) -> Phase {
        let t = times;
        if now_ms < t.fresh_until_ms {
            let early = match xfetch {
                Xfetch::Roll => self.early(t, now_ms),
                Xfetch::Fired(fired) => fired,
            };
            return match early {
                true => Phase::Refresh,
                false => Phase::Fresh,
            };
        }
        if now_ms >= t.stale_until_ms {
            return Phase::Gone;
        }
        let throttled = now_ms < t.retry_at_ms;
        if now_ms < t.fresh_until_ms.saturating_add(ms(self.stale)) {
            Phase::Stale { throttled }
        } else if now_ms >= t.fresh_until_ms.saturating_add(ms(self.stale_if_error)) {
            Phase::Gone
        } else if throttled {
            Phase::Throttled
        } else {
            Phase::Kept
        }
    }

    /// XFetch (Vattani, Chierichetti, Lowenstein, VLDB 2015): refresh at `t` when
    /// `t − δ·β·ln(U) ≥ expiry`, `U` uniform in (0, 1]. Never during a throttle after a failed
    /// refresh.
    #[inline]
    pub(crate) fn early(&self, t: &Times, now_ms: u64) -> bool {
        if self.early_refresh <= 0.0 || now_ms < t.retry_at_ms {
            return false;
        }
        let scale = f64::from(t.load_us) / 1_000.0 * self.early_refresh;
        let gap = t.fresh_until_ms.saturating_sub(now_ms) as f64;
        if scale <= 0.0 || gap > scale * XFETCH_REACH {
            return false;
        }
        let u = 1.0 - fastrand::f64();
        -u.ln() * scale >= gap
    }

    /// The entry to keep after a failed load of `held`: the same value, with no load of its
    /// key until the throttle ends (never past its own life).
    pub(crate) fn rearmed<V>(&self, held: &Entry<V>, now_ms: u64) -> Times {
        let retry = now_ms.saturating_add(ms(self.throttle()));
        Times {
            retry_at_ms: retry.min(held.times.stale_until_ms),
            ..held.times
        }
    }

    /// Whether `held` can answer in place of a failed load at `now_ms`: fresh, or expired
    /// within `stale` or `stale_if_error`.
    pub(crate) fn can_answer<V>(&self, held: &Entry<V>, now_ms: u64) -> bool {
        if !held.is_current() {
            return false;
        }
        let fresh = held.times.fresh_until_ms;
        let window = ms(self.grace());
        now_ms < fresh.saturating_add(window).min(held.times.stale_until_ms)
    }
}

/// What a call does with an entry it found.
pub(crate) enum Next<V> {
    /// Answer with the entry's value (counted as `counter`); `refresh`: also start a
    /// revalidation or early refresh of it.
    Answer {
        entry: Entry<V>,
        counter: Counter,
        refresh: bool,
    },
    /// Load; `held` answers if the load fails.
    Load { held: Option<Entry<V>> },
}

impl<V> Next<V> {
    /// What to do with `entry` at `now_ms` under `policy`.
    pub(crate) fn of(policy: &Policy, entry: Entry<V>, now_ms: u64, xfetch: Xfetch) -> Next<V> {
        if !entry.is_current() {
            return Next::Load { held: None };
        }
        let null = matches!(entry.slot, Slot::Null);
        let (counter, refresh) = match policy.phase(&entry.times, now_ms, xfetch) {
            Phase::Fresh if null => (Counter::NullHit, false),
            Phase::Fresh => (Counter::Hit, false),
            Phase::Refresh if null => (Counter::NullHit, true),
            Phase::Refresh => (Counter::Hit, true),
            Phase::Stale { throttled } => (Counter::StaleHit, !throttled),
            Phase::Throttled => (Counter::StaleIfErrorHit, false),
            Phase::Kept => return Next::Load { held: Some(entry) },
            Phase::Gone => return Next::Load { held: None },
        };
        Next::Answer {
            entry,
            counter,
            refresh,
        }
    }
}

/// Keys marked with a value while something runs for them, each mark removed when its guard
/// drops (done, panicked or cancelled). Two uses: the keys with a revalidation or early
/// refresh running in this process ([`Refreshing`]: one per key; across processes the
/// backend's lease decides), and the entries held for fail-safe by loads in flight ([`Kept`]:
/// a load's placeholder hides the entry from later callers, and one that waits past
/// `lock_timeout` still finds the value to answer a failure with).
pub(crate) struct Marks<K, V> {
    marks: Mutex<HashMap<K, V>>,
}

/// Keys with a revalidation or early refresh running.
pub(crate) type Refreshing<K> = Marks<K, ()>;
/// Entries held by loads in flight.
pub(crate) type Kept<K, V> = Marks<K, Entry<V>>;

/// A key's mark in [`Marks`], removed when dropped.
pub(crate) struct Mark<'a, K: Hash + Eq, V> {
    marks: &'a Marks<K, V>,
    key: Option<K>,
}

/// The mark of a refresh.
pub(crate) type RefreshMark<'a, K> = Mark<'a, K, ()>;

impl<K: Hash + Eq + Clone, V: Clone> Marks<K, V> {
    pub(crate) fn new() -> Self {
        Marks {
            marks: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, V>> {
        self.marks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks `key`, unless it is marked already.
    pub(crate) fn claim(&self, key: &K, value: V) -> Option<Mark<'_, K, V>> {
        let mut marks = self.lock();
        if marks.contains_key(key) {
            return None;
        }
        marks.insert(key.clone(), value);
        Some(Mark {
            marks: self,
            key: Some(key.clone()),
        })
    }

    /// Marks `key` with a copy of `value` while the returned mark lives; nothing for `None`.
    pub(crate) fn show(&self, key: &K, value: Option<&V>) -> Mark<'_, K, V> {
        let key = value.map(|value| {
            self.lock().insert(key.clone(), value.clone());
            key.clone()
        });
        Mark { marks: self, key }
    }

    /// The value `key` is marked with.
    pub(crate) fn get(&self, key: &K) -> Option<V> {
        self.lock().get(key).cloned()
    }
}

impl<K: Hash + Eq, V> Drop for Mark<'_, K, V> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let mut marks = self
                .marks
                .marks
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            marks.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::policy::{Codec, Lock};

    fn policy(stale_s: u64, sie_s: u64, beta: f64) -> Policy {
        Policy {
            ttl: Some(Duration::from_secs(10)),
            null_ttl: Duration::from_secs(10),
            jitter: 0.0,
            max_entries: 10,
            max_bytes: None,
            compress: crate::policy::Compression::None,
            compress_min: crate::policy::DEFAULT_COMPRESS_MIN,
            lock: Lock::Local,
            lock_timeout: Duration::from_secs(5),
            codec: Codec::MessagePack,
            stale: Duration::from_secs(stale_s),
            stale_if_error: Duration::from_secs(sie_s),
            load_timeout: None,
            early_refresh: beta,
            l1_ttl: None,
            verify: 0.0,
        }
    }

    #[test]
    fn phases_follow_the_timeline() {
        let p = policy(5, 20, 0.0);
        let t = p.times(false, None, 1_000, 50);
        assert_eq!((t.fresh_until_ms, t.stale_until_ms), (11_000, 31_000));
        assert_eq!(p.phase(&t, 10_999, Xfetch::Roll), Phase::Fresh);
        assert_eq!(
            p.phase(&t, 11_000, Xfetch::Roll),
            Phase::Stale { throttled: false }
        );
        assert_eq!(
            p.phase(&t, 15_999, Xfetch::Roll),
            Phase::Stale { throttled: false }
        );
        assert_eq!(p.phase(&t, 16_000, Xfetch::Roll), Phase::Kept);
        assert_eq!(p.phase(&t, 30_999, Xfetch::Roll), Phase::Kept);
        assert_eq!(p.phase(&t, 31_000, Xfetch::Roll), Phase::Gone);
        let held = Entry {
            slot: Slot::Value(1),
            times: t,
            tags: crate::tags::EntryTags::NONE,
        };
        let kept = p.rearmed(&held, 20_000);
        assert_eq!(kept.retry_at_ms, 25_000);
        assert_eq!(p.phase(&kept, 24_999, Xfetch::Roll), Phase::Throttled);
        assert_eq!(p.phase(&kept, 25_000, Xfetch::Roll), Phase::Kept);
        // A throttle never outlives the entry.
        assert_eq!(p.rearmed(&held, 29_000).retry_at_ms, 31_000);
    }

    #[test]
    fn without_windows_an_expired_entry_is_gone() {
        let p = policy(0, 0, 0.0);
        let t = p.times(false, None, 0, 5);
        assert_eq!(t.stale_until_ms, t.fresh_until_ms);
        assert_eq!(p.phase(&t, t.fresh_until_ms, Xfetch::Roll), Phase::Gone);
    }

    #[test]
    fn xfetch_fires_more_often_near_expiry_and_never_far_from_it() {
        let p = policy(0, 0, 1.0);
        let t = p.times(false, None, 0, 100_000); // δ = 100 ms, expiry at 10 000
        let fires = |now: u64| (0..10_000).filter(|_| p.early(&t, now)).count();
        // P(fire) = exp(-gap / (δβ)): gap 10 ms → 0.905, 100 ms → 0.368, 500 ms → 0.0067.
        let near = fires(9_990);
        let mid = fires(9_900);
        let far = fires(9_500);
        assert!((8_700..9_400).contains(&near), "{near}");
        assert!((3_300..4_100).contains(&mid), "{mid}");
        assert!(far < 200, "{far}");
        assert_eq!(fires(0), 0, "beyond δ·β·40 it never fires");
        let off = policy(0, 0, 0.0);
        assert!(!off.early(&t, 9_999));
    }

    #[test]
    fn a_key_refreshes_once_at_a_time() {
        let set: Refreshing<u32> = Refreshing::new();
        let first = set.claim(&7, ()).expect("free");
        assert!(set.claim(&7, ()).is_none());
        assert!(set.claim(&8, ()).is_some());
        drop(first);
        assert!(set.claim(&7, ()).is_some());
    }
}
