//! Issue 25: `max_bytes` bounds the in-process store by weight ([`Weigh`]), reports what it
//! holds, and refuses a value heavier than a shard of it without evicting the cache.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::Duration;

use cache_runtime::{Backend, Cache, Weigh, cached};

#[derive(Clone, Debug, PartialEq, Weigh, serde::Serialize, serde::Deserialize)]
struct Page {
    id: u64,
    title: String,
    body: Vec<u8>,
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Weigh, serde::Serialize, serde::Deserialize)]
enum Part {
    Text(String),
    Image { bytes: Vec<u8> },
    Rule,
}

#[test]
fn derive_adds_up_the_fields_and_the_held_variant() {
    let page = Page {
        id: 1,
        title: "abc".to_owned(),
        body: vec![0; 100],
        parts: vec![
            Part::Text("hello".to_owned()),
            Part::Image { bytes: vec![1; 50] },
            Part::Rule,
        ],
    };
    let parts = page.parts.capacity() * std::mem::size_of::<Part>() + 5 + 50;
    assert_eq!(page.heap_bytes(), 3 + 100 + parts);
    assert_eq!(Part::Rule.heap_bytes(), 0);
}

static BIG_LOADS: AtomicU32 = AtomicU32::new(0);

/// 2 MiB, 1 MiB shards: every value of 300 KiB fits, six of them do not.
#[cached(backend = "memory", ttl = 60, max_bytes = "2MiB")]
fn blob(id: u64) -> Vec<u8> {
    BIG_LOADS.fetch_add(1, Relaxed);
    vec![id as u8; 300 << 10]
}

#[test]
fn the_weight_bounds_the_cache_and_is_reported() {
    for id in 0..20 {
        assert_eq!(blob(id).len(), 300 << 10);
    }
    let stats = blob_cache().stats();
    assert_eq!(stats.max_bytes, 2 << 20);
    assert!(stats.memory_bytes <= stats.max_bytes, "{stats:?}");
    assert!(stats.memory_bytes >= 300 << 10, "{stats:?}");
    assert!(
        stats.size <= 6,
        "at most six 300 KiB values in 2 MiB: {stats:?}"
    );
    assert!(stats.evictions >= 14, "{stats:?}");
    assert_eq!(stats.oversized, 0);
    // A key asked for again is held (S3-FIFO admits a key seen before to its main queue).
    blob(19);
    let loads = BIG_LOADS.load(Relaxed);
    blob(19);
    assert_eq!(BIG_LOADS.load(Relaxed), loads, "a hit");
}

static HUGE_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(backend = "memory", ttl = 60, max_bytes = "4MiB")]
fn sized(bytes: usize) -> String {
    HUGE_LOADS.fetch_add(1, Relaxed);
    "x".repeat(bytes)
}

#[test]
fn a_value_heavier_than_a_shard_is_not_stored_and_evicts_nothing() {
    for n in 1..=20 {
        sized(n * 1000);
    }
    let before = sized_cache().stats();
    assert_eq!(before.size, 20);
    // 4 MiB in 4 shards of 1 MiB: 2 MiB cannot be held.
    assert_eq!(sized(2 << 20).len(), 2 << 20, "the caller gets its value");
    assert_eq!(sized(2 << 20).len(), 2 << 20);
    let after = sized_cache().stats();
    assert_eq!(after.oversized, 2, "{after:?}");
    assert_eq!(after.size, 20, "nothing was evicted for it");
    assert_eq!(after.evictions, before.evictions);
    assert_eq!(HUGE_LOADS.load(Relaxed), 22, "not stored: loaded each time");
}

static NULL_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(backend = "memory", ttl = 60, max_bytes = "1MiB", max_entries = 50)]
fn maybe(name: String) -> Option<String> {
    NULL_LOADS.fetch_add(1, Relaxed);
    name.is_empty().then(String::new)
}

#[test]
fn both_bounds_hold_and_nulls_weigh_their_key() {
    for i in 0..200 {
        assert_eq!(maybe(format!("user-{i:04}")), None);
    }
    let stats = maybe_cache().stats();
    assert!(
        stats.size <= 50,
        "max_entries holds with max_bytes: {stats:?}"
    );
    assert!(stats.size >= 40, "{stats:?}");
    let loads = NULL_LOADS.load(Relaxed);
    assert_eq!(maybe("user-0199".to_owned()), None);
    assert_eq!(NULL_LOADS.load(Relaxed), loads, "the null is cached");
}

#[test]
fn a_cache_value_takes_a_byte_budget() {
    let cache: Cache<u64, String> = Cache::builder("max_bytes::held")
        .backend(Backend::Memory)
        .ttl(Duration::from_secs(60))
        .max_bytes(1 << 20)
        .build()
        .unwrap();
    for id in 0..100u64 {
        let v = cache.get_or_load(id, || "v".repeat(20_000 + id as usize));
        assert_eq!(v.len(), 20_000 + id as usize);
    }
    let stats = cache.stats();
    assert_eq!(stats.max_bytes, 1 << 20);
    assert!(
        stats.memory_bytes <= 1 << 20 && stats.memory_bytes > 900_000,
        "{stats:?}"
    );
    assert!(stats.size < 60 && stats.evictions > 40, "{stats:?}");
    let zero = Cache::<u64, String>::builder("max_bytes::zero")
        .backend(Backend::Memory)
        .max_bytes(0)
        .build();
    assert_eq!(zero.err(), Some(cache_runtime::BuildError::MaxBytes));
}

static ONE_LOADS: AtomicU32 = AtomicU32::new(0);

/// `max_entries = 1` with a budget: the one entry's share is the whole budget, which a
/// shard cannot admit; it is capped at what a shard admits, so the entry is held.
#[cached(backend = "memory", ttl = 60, max_bytes = "1MiB", max_entries = 1)]
fn only(id: u64) -> u64 {
    ONE_LOADS.fetch_add(1, Relaxed);
    id
}

#[test]
fn a_single_entry_with_a_budget_is_held() {
    assert_eq!(only(7), 7);
    assert_eq!(only(7), 7);
    assert_eq!(ONE_LOADS.load(Relaxed), 1, "{:?}", only_cache().stats());
    assert_eq!(only_cache().stats().oversized, 0);
    only(8);
    assert!(only_cache().stats().size <= 1);
}
