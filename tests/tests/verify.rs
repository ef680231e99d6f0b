//! `verify` (issue 27): a fraction of hits runs the load again off the caller's path and
//! compares; the counts by served age match a known change process; invalidation on every
//! write leaves nothing to find; a verification that fails or panics changes nothing served.
//! Also the time hits save (`load_time_saved`) and the report's verdicts.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{LazyLock, RwLock};
use std::time::{Duration, Instant};

use cache_runtime::{CacheHandle, VerdictKind, cached};

/// Waits until every picked hit of `cache` (with `verify = 1.0`: every hit) was verified or
/// skipped.
fn drained(cache: &CacheHandle) -> cache_runtime::Stats {
    let give_up = Instant::now() + Duration::from_secs(20);
    loop {
        let s = cache.stats();
        if s.verified + s.verify_skipped >= s.hits + s.null_hits {
            return s;
        }
        assert!(Instant::now() < give_up, "verifications never ended: {s:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

// ------------------------------------------------ a source that changes every 200 ms

static START: LazyLock<Instant> = LazyLock::new(Instant::now);

/// The source: each key's value changes every 200 ms, the keys' changes spread over the
/// period (key `k` is shifted by `37·k` ms), never invalidated.
#[cached(
    ttl = 2,
    jitter = 0.0,
    verify = 1.0,
    backend = "memory",
    max_entries = 1000
)]
fn drifting(k: u64) -> u64 {
    let ms = u64::try_from(START.elapsed().as_millis()).unwrap();
    (ms + 37 * k) / 200
}

#[test]
fn mismatches_by_age_follow_the_change_process() {
    LazyLock::force(&START);
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        for k in 0..50 {
            drifting(k);
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    let s = drained(drifting_cache());
    assert!(s.verified > 2_000, "too few verified: {s:?}");
    let report = cache_runtime::report();
    let row = report.row(drifting_cache().name()).unwrap();
    let share = |from_ms: u64, to_ms: u64| {
        let (v, m) = row
            .by_age
            .iter()
            .filter(|b| {
                b.from >= Duration::from_millis(from_ms) && b.to <= Duration::from_millis(to_ms)
            })
            .fold((0, 0), |(v, m), b| (v + b.verified, m + b.mismatched));
        assert!(
            v >= 30,
            "{v} verified hits aged {from_ms}..{to_ms} ms: {:?}",
            row.by_age
        );
        m as f64 / v as f64
    };
    // Older than the period, a value has always changed since its load.
    let old = share(256, u64::MAX);
    assert_eq!(old, 1.0, "{:?}", row.by_age);
    // Younger: the chance it changed is age / 200 ms (age uniform in the band).
    for (from, to, expected) in [(32, 64, 0.24), (64, 128, 0.48), (128, 256, 0.90)] {
        let got = share(from, to);
        assert!(
            (got - expected).abs() < 0.15,
            "aged {from}..{to} ms: {got:.2} differed, expected {expected:.2}: {:?}",
            row.by_age
        );
    }
    assert_eq!(
        row.verdict.kind,
        VerdictKind::Stale,
        "{}",
        row.verdict.reason
    );
    let from = row.mismatches_from.expect("mismatches start somewhere");
    assert!(from <= Duration::from_millis(64), "{from:?}");
    assert!(
        row.verdict.reason.contains("invalidate on write"),
        "{}",
        row.verdict.reason
    );
}

// ------------------------------------------------ invalidation on every write

thread_local! {
    /// Set while a reader of this thread holds its source's read lock around a call.
    static HOLDING: Cell<bool> = const { Cell::new(false) };
}

/// A source written under a lock that also invalidates: no call sees a write between the
/// source's change and its invalidation. A load takes the read lock, unless its caller holds
/// it already (a read lock taken twice by one thread can deadlock behind a waiting writer).
struct Source {
    lock: RwLock<()>,
    value: AtomicU64,
}

impl Source {
    const fn new() -> Self {
        Source {
            lock: RwLock::new(()),
            value: AtomicU64::new(0),
        }
    }

    fn read(&self) -> u64 {
        if HOLDING.get() {
            return self.value.load(SeqCst);
        }
        let _reading = self.lock.read().unwrap();
        self.value.load(SeqCst)
    }

    /// Changes the value and runs `invalidate`, under the write lock.
    fn write(&self, invalidate: impl FnOnce()) {
        let _writing = self.lock.write().unwrap();
        self.value.fetch_add(1, SeqCst);
        invalidate();
    }

    /// Calls `call` under the read lock.
    fn call<R>(&self, call: impl FnOnce() -> R) -> R {
        let _reading = self.lock.read().unwrap();
        HOLDING.set(true);
        let result = call();
        HOLDING.set(false);
        result
    }
}

/// Two readers for 2 s while a writer changes `source` every 20 ms and `invalidate`s.
fn race_writes(source: &Source, invalidate: impl Fn() + Sync, call: impl Fn(u64) + Sync) {
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(SeqCst) {
                source.write(&invalidate);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let readers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let until = Instant::now() + Duration::from_secs(2);
                    while Instant::now() < until {
                        for k in 0..8 {
                            source.call(|| call(k));
                        }
                        std::thread::sleep(Duration::from_micros(100));
                    }
                })
            })
            .collect();
        for reader in readers {
            reader.join().unwrap();
        }
        stop.store(true, SeqCst);
    });
}

static KEYED: Source = Source::new();

#[cached(ttl = 60, verify = 1.0, backend = "memory")]
fn invalidated_on_write(k: u64) -> u64 {
    KEYED.read() * 1_000 + k
}

#[test]
fn invalidation_on_every_write_leaves_no_mismatch() {
    let invalidate = || {
        for k in 0..8 {
            assert!(invalidated_on_write_invalidate(k).is_done());
        }
    };
    race_writes(&KEYED, invalidate, |k| {
        invalidated_on_write(k);
    });
    let s = drained(invalidated_on_write_cache());
    assert!(s.verified > 500, "too few verified: {s:?}");
    assert_eq!(s.mismatched, 0, "{s:?}");
}

static TAGGED: Source = Source::new();

#[cached(ttl = 60, verify = 1.0, backend = "memory", tags = ["verify-tagged-source"])]
fn invalidated_by_tag(k: u64) -> u64 {
    TAGGED.read() * 1_000 + k
}

#[test]
fn invalidation_by_tag_on_every_write_leaves_no_mismatch() {
    // Done in process; with the `redis` feature and no Redis here, it is also kept for Redis
    // (`Pending`), which changes nothing in process.
    let invalidate = || {
        let _ = cache_runtime::invalidate_tag("verify-tagged-source");
    };
    race_writes(&TAGGED, invalidate, |k| {
        invalidated_by_tag(k);
    });
    let s = drained(invalidated_by_tag_cache());
    assert!(s.verified > 500, "too few verified: {s:?}");
    assert_eq!(s.mismatched, 0, "{s:?}");
}

// ------------------------------------------------ a verification that fails or panics

static BREAK: AtomicBool = AtomicBool::new(false);
static PANICKY_LOADS: AtomicU64 = AtomicU64::new(0);

#[cached(ttl = 60, verify = 1.0, backend = "memory")]
fn panicky(k: u64) -> u64 {
    PANICKY_LOADS.fetch_add(1, SeqCst);
    assert!(!BREAK.load(SeqCst), "the source broke");
    k * 2
}

#[cached(ttl = 60, verify = 1.0, backend = "memory")]
fn failing(k: u64) -> Result<u64, String> {
    if BREAK.load(SeqCst) {
        return Err("the source is down".into());
    }
    Ok(k * 3)
}

#[test]
fn a_verification_that_panics_or_fails_changes_nothing_served() {
    assert_eq!((panicky(1), failing(1)), (2, Ok(3)));
    BREAK.store(true, SeqCst);
    for _ in 0..50 {
        assert_eq!(panicky(1), 2);
        assert_eq!(failing(1), Ok(3));
    }
    for cache in [panicky_cache(), failing_cache()] {
        let s = drained(cache);
        assert_eq!((s.hits, s.misses, s.loads), (50, 1, 1), "{s:?}");
        assert_eq!((s.verified, s.mismatched), (0, 0), "{s:?}");
        assert_eq!(s.verify_skipped, 50, "{s:?}");
    }
    // The verifications ran the body (off the callers' path), and the entry is still there.
    assert!(PANICKY_LOADS.load(SeqCst) > 1);
    assert_eq!(panicky(1), 2);
}

// ------------------------------------------------ picking: exactly one hit in n

#[cached(ttl = 60, verify = 0.1, backend = "memory")]
fn tenth(k: u64) -> u64 {
    k
}

#[test]
fn verify_picks_exactly_one_hit_in_n_per_thread() {
    tenth(7);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..1_000 {
                    assert_eq!(tenth(7), 7);
                    // One at a time: none skipped for want of room.
                    std::thread::sleep(Duration::from_micros(50));
                }
            });
        }
    });
    let give_up = Instant::now() + Duration::from_secs(20);
    let s = loop {
        let s = tenth_cache().stats();
        if s.verified + s.verify_skipped >= 200 || Instant::now() > give_up {
            break s;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(s.hits, 2_000, "{s:?}");
    // Each thread's stripe picks its 1st, 11th, ... hit: 100 each.
    assert_eq!(s.verified + s.verify_skipped, 200, "{s:?}");
    assert_eq!(s.mismatched, 0);
}

// ------------------------------------------------ time saved, and the other verdicts

#[cached(ttl = 60, backend = "memory")]
fn slow(k: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(5));
    k
}

#[test]
fn each_hit_saves_the_load_time_of_its_entry() {
    slow(1);
    for _ in 0..10 {
        slow(1);
    }
    let saved = slow_cache().stats().load_time_saved;
    assert!(
        saved >= Duration::from_millis(50) && saved < Duration::from_millis(200),
        "{saved:?} saved by 10 hits on a 5 ms load"
    );
    let row_saved = cache_runtime::report()
        .row(slow_cache().name())
        .unwrap()
        .time_saved;
    assert_eq!(row_saved, saved);
}

/// Spins for about 20 µs: not cheap.
fn spin() {
    let until = Instant::now() + Duration::from_micros(20);
    while Instant::now() < until {}
}

#[cached(ttl = 60, backend = "memory")]
fn rarely_again(k: u64) -> u64 {
    spin();
    k
}

#[cached(ttl = 60, backend = "memory")]
fn worth_it(k: u64) -> u64 {
    spin();
    k
}

#[test]
fn the_report_calls_cold_and_good_caches_by_their_figures() {
    for k in 0..300 {
        rarely_again(k);
        worth_it(k % 10);
    }
    let report = cache_runtime::report();
    let verdict = |c: &CacheHandle| report.row(c.name()).unwrap().verdict.clone();
    let cold = verdict(rarely_again_cache());
    assert_eq!(cold.kind, VerdictKind::Cold, "{}", cold.reason);
    assert!(cold.reason.contains("hit ratio 0.0%"), "{}", cold.reason);
    let keep = verdict(worth_it_cache());
    assert_eq!(keep.kind, VerdictKind::Keep, "{}", keep.reason);
    assert!(keep.reason.contains("not verified"), "{}", keep.reason);
    let table = report.to_string();
    assert!(
        table.contains(worth_it_cache().name()) && table.contains("keep"),
        "{table}"
    );
}
