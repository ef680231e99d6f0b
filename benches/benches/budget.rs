//! Issue 25: a byte budget against a count tuned to the same memory. 20,000 keys whose values
//! are log-uniform from 10 B to 1 MiB (a fixed size per key), 300,000 requests drawn from a
//! Zipf(1.0) distribution over them: the hit ratio and the heap peak of `max_bytes = "64MiB"`
//! and of `max_entries` chosen so that the mean value size fills 64 MiB. Prints its figures
//! (no criterion). Run: `cargo bench -p benches --bench budget`.

#![allow(clippy::print_stdout, reason = "a benchmark prints its figures")]

use tests::counting::{Counting, live};

#[global_allocator]
static ALLOC: Counting = Counting;

const KEYS: u64 = 20_000;
const REQUESTS: u64 = 300_000;
const BUDGET: u64 = 64 << 20;

/// Log-uniform from 10 B to 1 MiB, fixed per key (a hash of it).
fn size(id: u64) -> usize {
    let h = id.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 11;
    let u = h as f64 / (1u64 << 53) as f64;
    let (lo, hi) = (10f64.ln(), ((1u64 << 20) as f64).ln());
    (lo + u * (hi - lo)).exp() as usize
}

/// The mean value size over the keys: what a count must be tuned with.
fn mean_size() -> f64 {
    (0..KEYS).map(|k| size(k) as f64).sum::<f64>() / KEYS as f64
}

/// A Zipf(1.0) key stream over `KEYS` (inverse CDF of the continuous approximation), the
/// same in every run.
fn stream() -> Vec<u64> {
    let mut s: u64 = 0x2545_f491_4f6c_dd1d;
    (0..REQUESTS)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 11) as f64 / (1u64 << 53) as f64;
            // Rank r in 1..=KEYS with P(r) ∝ 1/r; ranks are shuffled onto keys by a hash.
            let r = ((KEYS as f64).powf(u)).floor().clamp(1.0, KEYS as f64) as u64 - 1;
            r.wrapping_mul(0x2545_f491_4f6c_dd1d) % KEYS
        })
        .collect()
}

#[cache_runtime::cached(backend = "memory", ttl = 3600, max_bytes = "64MiB")]
fn by_bytes(id: u64) -> Vec<u8> {
    vec![1; size(id)]
}

static BY_COUNT: std::sync::OnceLock<cache_runtime::Cache<u64, Vec<u8>>> =
    std::sync::OnceLock::new();

fn by_count(id: u64) -> Vec<u8> {
    BY_COUNT
        .get()
        .expect("made in main")
        .get_or_load(id, || vec![1; size(id)])
}

/// Runs the stream through `get`; the hit ratio and the heap peak above the start.
fn run(name: &str, get: fn(u64) -> Vec<u8>, handle: cache_runtime::CacheHandle) {
    let keys = stream();
    let base = live();
    let mut peak = 0;
    for &k in &keys {
        drop(get(k));
        peak = peak.max(live() - base);
    }
    let s = handle.stats();
    println!(
        "{name}: hit ratio {:.3}, heap peak {:.1} MiB ({:.3}x of 64 MiB), {} entries held, {} evictions",
        s.hit_ratio().unwrap_or(0.0),
        peak as f64 / (1u64 << 20) as f64,
        peak as f64 / BUDGET as f64,
        s.size,
        s.evictions
    );
}

fn main() {
    let mean = mean_size();
    let entries = (BUDGET as f64 / mean).round() as usize;
    println!(
        "{KEYS} keys, values 10 B..1 MiB log-uniform (mean {mean:.0} B), {REQUESTS} Zipf(1.0) requests"
    );
    let cache = cache_runtime::Cache::builder("budget.by_count")
        .backend(cache_runtime::Backend::Memory)
        .ttl(std::time::Duration::from_secs(3600))
        .max_entries(entries)
        .build()
        .expect("valid settings");
    let _ = BY_COUNT.set(cache);
    run("max_bytes = 64 MiB", by_bytes, *by_bytes_cache());
    let handle = *BY_COUNT.get().expect("set").handle();
    run(&format!("max_entries = {entries}"), by_count, handle);
}
