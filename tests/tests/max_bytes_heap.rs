//! Issue 25: a cache bounded by `max_bytes` keeps the process's heap within its budget,
//! measured with a counting global allocator while ten times the budget is loaded through it.
//! The only test of this binary: another test's allocations would blur the heap's figure.

use cache_runtime::cached;
use tests::counting::{Counting, live};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const BUDGET: u64 = 64 << 20;

/// A value size for `id`, log-uniform from 10 B to 1 MiB (a fixed hash of the id, so the
/// run is the same every time).
fn size_of_value(id: u64) -> usize {
    let h = id.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 11;
    let u = h as f64 / (1u64 << 53) as f64;
    let (lo, hi) = (10f64.ln(), ((1u64 << 20) as f64).ln());
    (lo + u * (hi - lo)).exp() as usize
}

#[cached(backend = "memory", ttl = 3600, max_bytes = "64MiB")]
fn page(id: u64) -> Vec<u8> {
    vec![(id % 251) as u8; size_of_value(id)]
}

#[test]
fn the_heap_stays_within_the_budget_while_ten_times_it_is_loaded() {
    let base = live();
    let (mut loaded, mut id, mut peak) = (0u64, 0u64, 0isize);
    while loaded < 10 * BUDGET {
        let value = page(id);
        loaded += value.len() as u64;
        assert_eq!(value.len(), size_of_value(id));
        drop(value);
        peak = peak.max(live() - base);
        id += 1;
    }
    let stats = page_cache().stats();
    let heap = live() - base;
    eprintln!(
        "{id} values, {loaded} bytes loaded; heap peak {peak} B, now {heap} B; cache says \
         {} B of {} B, {} entries, {} evictions, {} oversized",
        stats.memory_bytes, stats.max_bytes, stats.size, stats.evictions, stats.oversized
    );
    let limit = (BUDGET as f64 * 1.05) as isize;
    assert!(
        peak <= limit,
        "heap peak {peak} B over 64 MiB + 5% ({limit} B)"
    );
    assert!(stats.memory_bytes <= stats.max_bytes && stats.max_bytes <= BUDGET);
    assert!(stats.evictions > 0, "ten times the budget went through it");
    assert!(
        heap as f64 > BUDGET as f64 * 0.8,
        "the budget is used, not left empty: {heap} B"
    );
    // The weight is the heap: within 5% of what the allocator counts (the cache's own
    // structures and the registry are in `heap` too).
    let error = (heap as f64 - stats.memory_bytes as f64).abs() / heap as f64;
    assert!(
        error < 0.05,
        "weights {} B against heap {heap} B",
        stats.memory_bytes
    );
}
