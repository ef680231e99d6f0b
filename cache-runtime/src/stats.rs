//! Per-cache counters, striped so that counting does not limit scaling.
//!
//! Each thread counts into a cache-line-sized stripe of its own, so hits on different cores do
//! not write the same cache line. The first [`OWNED`] threads alive at once each *own* a stripe:
//! its only writer, it adds with a plain load and store (no locked read-modify-write, about
//! 5 ns less per hit here); a thread's stripe goes back to a free list when it exits, to the
//! next thread that needs one. Threads beyond those share [`SHARED`] stripes and add
//! atomically. [`Counters::snapshot`] adds the stripes up.

use std::cell::{Cell, RefCell};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

/// A snapshot of one cache's counters, from [`CacheHandle::stats`](crate::CacheHandle::stats).
///
/// Every call of the cached function counts as exactly one of `hits`, `null_hits`,
/// `stale_hits` or `misses`, or, during a fail-safe throttle, `stale_if_error_hits`; every
/// miss then either ran the body (`loads`) or was answered by a load it did not run (`waits`):
/// another caller's, in this process or another, including a load that went on after its
/// caller was cancelled. A caller that waited and then ran the body itself (it gave up after
/// `lock_timeout`, or took over a load that failed) counts in `loads`, not in `waits`. A miss
/// answered with a kept value because its load failed is counted in `stale_if_error_hits` too.
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
    /// Misses answered by another caller's load of the same key (single-flight, in this
    /// process or another), without running the body.
    pub waits: u64,
    /// Failures of the store: Redis errors and timeouts, and entries that could not be used
    /// (corrupt, foreign, oversized or of another type). Always 0 for the in-process store.
    pub store_errors: u64,
    /// Store operations not tried because the store was known to be unavailable (the circuit
    /// breaker open, or settings that name no usable Redis): the call went on without it.
    pub store_skips: u64,
    /// Calls answered at once with an expired value within `stale` (stale-while-revalidate).
    pub stale_hits: u64,
    /// Calls answered with an expired value within `stale_if_error` in place of a load that
    /// failed, panicked or outran `load_timeout` (fail-safe), and calls answered with that
    /// value while its throttle holds off the next load.
    pub stale_if_error_hits: u64,
    /// Revalidations (`stale`) and early refreshes (`early_refresh`) started; the body runs
    /// of those that were not already done elsewhere are counted in `loads` too.
    pub refreshes: u64,
    /// `backend = "tiered"`: hits answered by the in-process L1 (also counted in `hits`).
    pub l1_hits: u64,
    /// `backend = "tiered"`: calls that missed the L1 and found an entry in Redis, in any
    /// phase (then counted as a hit, stale hit or kept answer as its phase says, or, for an
    /// entry past its windows, a miss that loads).
    pub l2_hits: u64,
    /// `backend = "tiered"`: changes of this cache received from other processes through the
    /// invalidation log (each drops that key's L1 copy, if there is one), plus the times the
    /// whole L1 was dropped (at the log reader's first connection, and when it lost entries).
    pub invalidations_received: u64,
    /// Entries this process's in-process store dropped to make room for new ones (S3-FIFO, at
    /// `max_entries`): the cache's for `"memory"`, the L1's for `"tiered"`, the outage
    /// fallback's for `"redis"`. An expired entry replaced by a load, an invalidation or a
    /// clear is not an eviction.
    pub evictions: u64,
    /// The entries this process held when the snapshot was taken
    /// ([`CacheHandle::len`](crate::CacheHandle::len)). A gauge, not a counter: it goes down
    /// on invalidations, clears and evictions.
    pub size: u64,
    /// The bytes this process's in-process stores hold for the cache (a gauge): with
    /// `max_bytes`, the entries' weights as the budget counts them ([`Weigh`](crate::Weigh):
    /// the key's and value's heap, the entry's slot; at least `max_bytes / max_entries` an
    /// entry when both are set); without it, the entries' slots only (what values own on
    /// the heap is not known). The cache's for `"memory"`, the L1's for `"tiered"`, the outage
    /// fallback's for `"redis"`.
    pub memory_bytes: u64,
    /// The byte budget of that store (`max_bytes`, rounded down to a multiple of its shard
    /// count): the cache's, the L1's, or the outage fallback's; 0 for none.
    pub max_bytes: u64,
    /// Values not stored because they weigh more than a shard of `max_bytes` holds (the
    /// budget split in up to 8 shards of at least 1 MiB; 97% of a shard). The caller still
    /// got the value. Logged once per cache.
    pub oversized: u64,
    /// The bytes of the entries this process wrote to the shared store (Redis: the
    /// envelopes, after compression), a counter; 0 for `"memory"`. What a cache holds in
    /// Redis: [`CacheHandle::shared_memory`](crate::CacheHandle::shared_memory).
    pub bytes_written: u64,
    /// The load time the cache's answers saved their callers: each hit, null hit and stale
    /// hit adds how long the load of the entry it served took (measured per load; an entry
    /// read from Redis carries it in whole milliseconds). Compare with
    /// [`store_time`](Stats::store_time) and the hits' own cost ([`crate::report`]).
    pub load_time_saved: Duration,
    /// The time this process's calls spent reading the shared store (Redis round trips of
    /// reads, hits and misses alike); zero for `"memory"`.
    pub store_time: Duration,
    /// Hits picked by `verify` whose load ran again off the caller's path and gave a value
    /// that was compared with the one served.
    pub verified: u64,
    /// Of [`verified`](Stats::verified), those whose fresh value differed from the one served.
    pub mismatched: u64,
    /// Hits picked by `verify` that were not verified: the cache had 64 verifications in
    /// flight or the queue was full, the body could not leave its caller, the fresh load
    /// failed or panicked or ended more than 250 ms after the hit, the values could not be
    /// compared, or an invalidation in this process overtook it.
    pub verify_skipped: u64,
}

impl Stats {
    /// The share of calls answered from the cache: `(hits + null_hits + stale_hits) /
    /// (hits + null_hits + stale_hits + misses)`, in `0.0..=1.0`; `None` before the first
    /// call. Answers of a kept value after a failed load (`stale_if_error_hits`) are not
    /// hits: those calls are counted as misses.
    ///
    /// ```
    /// use cache_runtime::cached;
    ///
    /// #[cached(ttl = 60)]
    /// fn triple(x: u32) -> u32 {
    ///     x * 3
    /// }
    ///
    /// assert_eq!(triple_cache().stats().hit_ratio(), None);
    /// for _ in 0..4 {
    ///     triple(1);
    /// }
    /// assert_eq!(triple_cache().stats().hit_ratio(), Some(0.75));
    /// ```
    pub fn hit_ratio(&self) -> Option<f64> {
        let hits = self.hits + self.null_hits + self.stale_hits;
        let calls = hits + self.misses;
        #[allow(clippy::cast_precision_loss, reason = "a ratio")]
        (calls > 0).then(|| hits as f64 / calls as f64)
    }
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
            store_skips: self.store_skips + o.store_skips,
            stale_hits: self.stale_hits + o.stale_hits,
            stale_if_error_hits: self.stale_if_error_hits + o.stale_if_error_hits,
            refreshes: self.refreshes + o.refreshes,
            l1_hits: self.l1_hits + o.l1_hits,
            l2_hits: self.l2_hits + o.l2_hits,
            invalidations_received: self.invalidations_received + o.invalidations_received,
            evictions: self.evictions + o.evictions,
            size: self.size + o.size,
            memory_bytes: self.memory_bytes + o.memory_bytes,
            max_bytes: self.max_bytes + o.max_bytes,
            oversized: self.oversized + o.oversized,
            bytes_written: self.bytes_written + o.bytes_written,
            load_time_saved: self.load_time_saved + o.load_time_saved,
            store_time: self.store_time + o.store_time,
            verified: self.verified + o.verified,
            mismatched: self.mismatched + o.mismatched,
            verify_skipped: self.verify_skipped + o.verify_skipped,
        }
    }
}

#[derive(Default)]
#[repr(align(128))]
struct Stripe {
    hits: AtomicU64,
    /// Microseconds of load time the answers saved (beside `hits`: one cache line for a hit).
    saved_us: AtomicU64,
    /// `verify`: an owned stripe's hits left before the next one it picks; a shared stripe's
    /// hits seen (it picks every n-th).
    verify_left: AtomicU64,
    /// Microseconds spent reading the shared store.
    store_us: AtomicU64,
    misses: AtomicU64,
    null_hits: AtomicU64,
    loads: AtomicU64,
    load_errors: AtomicU64,
    waits: AtomicU64,
    store_errors: AtomicU64,
    store_skips: AtomicU64,
    stale_hits: AtomicU64,
    stale_if_error_hits: AtomicU64,
    refreshes: AtomicU64,
    /// Hits and null hits answered from the L2 (the L1's are the others: see `Engine::stats`).
    l2_answers: AtomicU64,
    l2_hits: AtomicU64,
    invalidations_received: AtomicU64,
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
    #[cfg_attr(
        not(feature = "redis"),
        allow(dead_code, reason = "only stores with I/O are unavailable")
    )]
    StoreSkip,
    StaleHit,
    StaleIfErrorHit,
    Refresh,
    /// A hit or null hit answered from the L2 (counted beside `Hit`/`NullHit`).
    L2Answer,
    L2Hit,
    #[cfg_attr(
        not(feature = "redis"),
        allow(dead_code, reason = "only an L1 receives invalidations")
    )]
    InvalidationReceived,
}

/// The striped counters of one cache.
pub(crate) struct Counters {
    stripes: Box<[Stripe]>,
    /// `verify`: every how many hits of a stripe one is picked (0: none). Kept beside the
    /// stripes' pointer, which the hit path reads anyway (one cache line).
    verify_every: u64,
}

/// Stripes owned by one thread each.
const OWNED: usize = 32;
/// Stripes shared, round-robin, by threads beyond those.
const SHARED: usize = 8;
const STRIPES: usize = OWNED + SHARED;
/// Marks a shared stripe's index in `STRIPE`.
const SHARED_BIT: usize = 1 << (usize::BITS - 1);

thread_local! {
    /// The calling thread's stripe (`SHARED_BIT` set for a shared one); `usize::MAX` before
    /// its first count.
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
    /// Gives an owned stripe back when the thread exits.
    static OWNER: RefCell<Option<Owner>> = const { RefCell::new(None) };
}

/// Owned stripes not in use.
static FREE: Mutex<Vec<usize>> = Mutex::new(Vec::new());
/// Owned stripes ever handed out.
static HANDED_OUT: AtomicUsize = AtomicUsize::new(0);

/// An owned stripe, returned to [`FREE`] when its thread exits. The mutex orders the exiting
/// thread's last plain stores before the next owner's first load.
struct Owner(usize);

impl Drop for Owner {
    fn drop(&mut self) {
        // Counts made after this (by other thread-locals' destructors) go to a shared stripe.
        let _ = STRIPE.try_with(|s| s.set(SHARED_BIT | OWNED));
        FREE.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(self.0);
    }
}

/// The stripe of the calling thread, assigned on its first count.
#[inline]
fn stripe_index() -> usize {
    let i = STRIPE.get();
    if i != usize::MAX {
        return i;
    }
    assign()
}

#[cold]
fn assign() -> usize {
    let reused = FREE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .pop();
    let owned = reused.or_else(|| {
        let n = HANDED_OUT.fetch_add(1, Relaxed);
        (n < OWNED).then_some(n)
    });
    let i = match owned {
        // A thread that is exiting cannot keep a stripe: it shares one.
        Some(i) if OWNER.try_with(|o| *o.borrow_mut() = Some(Owner(i))).is_ok() => i,
        Some(i) => {
            FREE.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(i);
            SHARED_BIT | (OWNED + i % SHARED)
        }
        None => {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            SHARED_BIT | (OWNED + NEXT.fetch_add(1, Relaxed) % SHARED)
        }
    };
    STRIPE.set(i);
    i
}

/// Adds one to `cell`, plainly if this thread owns the stripe (`i`).
#[inline(always)]
fn bump(cell: &AtomicU64, i: usize, by: u64) {
    if i & SHARED_BIT == 0 {
        // This thread is the stripe's only writer.
        cell.store(cell.load(Relaxed).wrapping_add(by), Relaxed);
    } else {
        cell.fetch_add(by, Relaxed);
    }
}

impl Counters {
    /// Counters whose hits `verify` picks every `verify_every`-th of (0: none).
    pub(crate) fn new(verify_every: u64) -> Self {
        Counters {
            stripes: (0..STRIPES).map(|_| Stripe::default()).collect(),
            verify_every,
        }
    }

    /// Every how many hits `verify` picks one; 0 for none.
    #[inline(always)]
    pub(crate) fn verify_every(&self) -> u64 {
        self.verify_every
    }

    #[inline]
    pub(crate) fn add(&self, counter: Counter) {
        let i = stripe_index();
        let stripe = &self.stripes[(i & !SHARED_BIT) % STRIPES];
        bump(Self::cell(stripe, counter), i, 1);
    }

    /// The cell of `counter` in `stripe`.
    #[inline(always)]
    fn cell(stripe: &Stripe, counter: Counter) -> &AtomicU64 {
        match counter {
            Counter::Hit => &stripe.hits,
            Counter::Miss => &stripe.misses,
            Counter::NullHit => &stripe.null_hits,
            Counter::Load => &stripe.loads,
            Counter::LoadError => &stripe.load_errors,
            Counter::Wait => &stripe.waits,
            Counter::StoreError => &stripe.store_errors,
            Counter::StoreSkip => &stripe.store_skips,
            Counter::StaleHit => &stripe.stale_hits,
            Counter::StaleIfErrorHit => &stripe.stale_if_error_hits,
            Counter::Refresh => &stripe.refreshes,
            Counter::L2Answer => &stripe.l2_answers,
            Counter::L2Hit => &stripe.l2_hits,
            Counter::InvalidationReceived => &stripe.invalidations_received,
        }
    }

    /// The hit path's count: a hit or null hit (`counter`) on an entry whose load took
    /// `load_us`, counted with the time it saved; unless `verify_every` is not 0 and this is
    /// the hit it picks (every `verify_every`-th of the thread's stripe), which is not counted
    /// here (`false`): the miss path answers, counts and verifies it. No random draw and no
    /// write shared with other threads.
    #[inline(always)]
    pub(crate) fn add_hit(&self, counter: Counter, load_us: u32, verify_every: u64) -> bool {
        if verify_every != 0 && self.pick(verify_every) {
            return false;
        }
        let i = stripe_index();
        let stripe = &self.stripes[(i & !SHARED_BIT) % STRIPES];
        let cell = match counter {
            Counter::NullHit => &stripe.null_hits,
            _ => &stripe.hits,
        };
        bump(cell, i, 1);
        bump(&stripe.saved_us, i, u64::from(load_us));
        true
    }

    /// Counts an answer from the cache (`counter`) on an entry whose load took `load_us`: a
    /// hit, null hit or stale hit adds it to the time saved.
    #[inline(always)]
    pub(crate) fn add_answer(&self, counter: Counter, load_us: u32) {
        let i = stripe_index();
        let stripe = &self.stripes[(i & !SHARED_BIT) % STRIPES];
        bump(Self::cell(stripe, counter), i, 1);
        if matches!(counter, Counter::Hit | Counter::NullHit | Counter::StaleHit) {
            bump(&stripe.saved_us, i, u64::from(load_us));
        }
    }

    /// Adds `us` microseconds to the time spent reading the shared store.
    pub(crate) fn add_store_time(&self, us: u32) {
        let i = stripe_index();
        bump(
            &self.stripes[(i & !SHARED_BIT) % STRIPES].store_us,
            i,
            u64::from(us),
        );
    }

    /// Whether `verify` picks this hit: every `every`-th of the calling thread's stripe.
    #[inline]
    pub(crate) fn pick(&self, every: u64) -> bool {
        let i = stripe_index();
        let stripe = &self.stripes[(i & !SHARED_BIT) % STRIPES];
        if i & SHARED_BIT == 0 {
            let left = stripe.verify_left.load(Relaxed);
            let picked = left == 0;
            let next = if picked { every - 1 } else { left - 1 };
            stripe.verify_left.store(next, Relaxed);
            picked
        } else {
            stripe
                .verify_left
                .fetch_add(1, Relaxed)
                .is_multiple_of(every)
        }
    }

    /// The counts; for a cache with an L1, `l1_hits` holds the hits answered from the L2 until
    /// the engine turns it into the L1's (so that an L1 hit counts one counter, not two).
    pub(crate) fn snapshot(&self) -> Stats {
        let mut s = Stats::default();
        let (mut saved_us, mut store_us) = (0, 0);
        for st in self.stripes.iter() {
            s.hits += st.hits.load(Relaxed);
            saved_us += st.saved_us.load(Relaxed);
            store_us += st.store_us.load(Relaxed);
            s.misses += st.misses.load(Relaxed);
            s.null_hits += st.null_hits.load(Relaxed);
            s.loads += st.loads.load(Relaxed);
            s.load_errors += st.load_errors.load(Relaxed);
            s.waits += st.waits.load(Relaxed);
            s.store_errors += st.store_errors.load(Relaxed);
            s.store_skips += st.store_skips.load(Relaxed);
            s.stale_hits += st.stale_hits.load(Relaxed);
            s.stale_if_error_hits += st.stale_if_error_hits.load(Relaxed);
            s.refreshes += st.refreshes.load(Relaxed);
            s.l1_hits += st.l2_answers.load(Relaxed);
            s.l2_hits += st.l2_hits.load(Relaxed);
            s.invalidations_received += st.invalidations_received.load(Relaxed);
        }
        s.load_time_saved = Duration::from_micros(saved_us);
        s.store_time = Duration::from_micros(store_us);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stripe_is_four_cache_lines() {
        assert_eq!(std::mem::size_of::<Stripe>(), 256);
    }

    #[test]
    fn counts_from_many_threads_add_up_exactly() {
        let c = Counters::new(0);
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

    #[test]
    fn owned_and_shared_stripes_add_up_exactly_across_waves_of_threads() {
        let c = Counters::new(0);
        // More threads at once than owned stripes, in waves, so stripes are owned, shared, and
        // handed from exited threads to new ones.
        for _ in 0..4 {
            std::thread::scope(|s| {
                for _ in 0..(OWNED + 24) {
                    s.spawn(|| {
                        for _ in 0..2_000 {
                            c.add(Counter::Miss);
                        }
                    });
                }
            });
        }
        assert_eq!(c.snapshot().misses, 4 * (OWNED as u64 + 24) * 2_000);
    }
}
