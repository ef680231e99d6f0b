//! Per-cache counters, striped so that counting does not limit scaling.
//!
//! Each thread counts into one of a few cache-line-sized stripes (picked once per thread),
//! so hits on different cores do not write the same cache line. [`Counters::snapshot`] adds
//! the stripes up.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// A snapshot of one cache's counters, from [`CacheHandle::stats`](crate::CacheHandle::stats).
///
/// Every call of the cached function counts as exactly one of `hits`, `null_hits` or
/// `misses`; every miss then either ran the body (`loads`) or took another caller's result
/// (`waits`, which also counts callers that gave up waiting after `lock_timeout`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Calls answered from the cache with a value.
    pub hits: u64,
    /// Calls that found no fresh entry.
    pub misses: u64,
    /// Calls answered from the cache with a cached null (`None`, `Ok(None)`).
    pub null_hits: u64,
    /// Runs of the function's body by the cache (misses and `_refresh` calls).
    pub loads: u64,
    /// Loads that returned `Err` or panicked.
    pub load_errors: u64,
    /// Callers that waited for another caller's load of the same key.
    pub waits: u64,
    /// Failures of the store: Redis errors and timeouts, and entries that could not be used
    /// (corrupt, foreign, oversized or of another type). Always 0 for the in-process store.
    pub store_errors: u64,
}

impl std::ops::Add for Stats {
    type Output = Stats;

    fn add(self, o: Stats) -> Stats {
        Stats {
            hits: self.hits + o.hits,
            misses: self.misses + o.misses,
            null_hits: self.null_hits + o.null_hits,
            loads: self.loads + o.loads,
            load_errors: self.load_errors + o.load_errors,
            waits: self.waits + o.waits,
            store_errors: self.store_errors + o.store_errors,
        }
    }
}

#[derive(Default)]
#[repr(align(128))]
struct Stripe {
    hits: AtomicU64,
    misses: AtomicU64,
    null_hits: AtomicU64,
    loads: AtomicU64,
    load_errors: AtomicU64,
    waits: AtomicU64,
    store_errors: AtomicU64,
}

/// Names one counter of a stripe.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Counter {
    Hit,
    Miss,
    NullHit,
    Load,
    LoadError,
    Wait,
    #[cfg_attr(
        not(feature = "redis"),
        allow(dead_code, reason = "only stores with I/O fail")
    )]
    StoreError,
}

/// The striped counters of one cache.
pub(crate) struct Counters {
    stripes: Box<[Stripe]>,
}

const STRIPES: usize = 16;

thread_local! {
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// The stripe of the calling thread: threads take stripes round-robin on first use.
#[inline]
fn stripe_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    STRIPE.with(|s| {
        let i = s.get();
        if i != usize::MAX {
            return i;
        }
        let i = NEXT.fetch_add(1, Relaxed) % STRIPES;
        s.set(i);
        i
    })
}

impl Counters {
    pub(crate) fn new() -> Self {
        Counters {
            stripes: (0..STRIPES).map(|_| Stripe::default()).collect(),
        }
    }

    #[inline]
    pub(crate) fn add(&self, counter: Counter) {
        let stripe = &self.stripes[stripe_index() % STRIPES];
        let cell = match counter {
            Counter::Hit => &stripe.hits,
            Counter::Miss => &stripe.misses,
            Counter::NullHit => &stripe.null_hits,
            Counter::Load => &stripe.loads,
            Counter::LoadError => &stripe.load_errors,
            Counter::Wait => &stripe.waits,
            Counter::StoreError => &stripe.store_errors,
        };
        cell.fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let mut s = Stats::default();
        for st in self.stripes.iter() {
            s.hits += st.hits.load(Relaxed);
            s.misses += st.misses.load(Relaxed);
            s.null_hits += st.null_hits.load(Relaxed);
            s.loads += st.loads.load(Relaxed);
            s.load_errors += st.load_errors.load(Relaxed);
            s.waits += st.waits.load(Relaxed);
            s.store_errors += st.store_errors.load(Relaxed);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_many_threads_add_up_exactly() {
        let c = Counters::new();
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..10_000 {
                        c.add(Counter::Hit);
                    }
                    c.add(Counter::Wait);
                });
            }
        });
        let stats = c.snapshot();
        assert_eq!(stats.hits, 80_000);
        assert_eq!(stats.waits, 8);
        assert_eq!(stats.misses, 0);
    }
}
