//! The in-process backend: return shapes, null caching, keys, companions and stats.

// The in-process backend: with the `redis` feature, Redis is the default backend of the
// whole build, so these run in the build without it (`cargo test --workspace`).
#![cfg(not(feature = "redis"))]

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

use cache_runtime::cached;

// ---------------------------------------------------------------- return shapes

static PLAIN_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached]
fn plain(x: u64) -> Vec<u64> {
    PLAIN_LOADS.fetch_add(1, SeqCst);
    vec![x; 3]
}

#[test]
fn a_plain_result_is_cached() {
    assert_eq!(plain(2), vec![2, 2, 2]);
    assert_eq!(plain(2), vec![2, 2, 2]);
    assert_eq!(plain(3), vec![3, 3, 3]);
    assert_eq!(PLAIN_LOADS.load(SeqCst), 2);
    let s = plain_cache().stats();
    assert_eq!((s.hits, s.misses, s.loads, s.null_hits), (1, 2, 2, 0));
}

static RESULT_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 60)]
fn fallible(x: i32) -> Result<i32, String> {
    RESULT_LOADS.fetch_add(1, SeqCst);
    if x < 0 {
        Err(format!("negative: {x}"))
    } else {
        Ok(x * 10)
    }
}

#[test]
fn ok_is_cached_and_err_never_is() {
    assert_eq!(fallible(1), Ok(10));
    assert_eq!(fallible(1), Ok(10));
    assert_eq!(fallible(-1), Err("negative: -1".into()));
    assert_eq!(fallible(-1), Err("negative: -1".into()));
    assert_eq!(RESULT_LOADS.load(SeqCst), 3, "the error was cached");
    let s = fallible_cache().stats();
    assert_eq!((s.hits, s.misses, s.loads, s.load_errors), (1, 3, 3, 2));
}

static OPTION_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 60)]
fn lookup(id: u32) -> Option<String> {
    OPTION_LOADS.fetch_add(1, SeqCst);
    (id == 1).then(|| "one".to_owned())
}

#[test]
fn none_is_cached_as_a_null() {
    assert_eq!(lookup(2), None);
    assert_eq!(lookup(2), None);
    assert_eq!(lookup(1), Some("one".into()));
    assert_eq!(lookup(1), Some("one".into()));
    assert_eq!(
        OPTION_LOADS.load(SeqCst),
        2,
        "the missing row was loaded twice"
    );
    let s = lookup_cache().stats();
    assert_eq!((s.hits, s.null_hits, s.misses), (1, 1, 2));
}

static NO_NULL_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 60, null_ttl = 0)]
fn lookup_no_nulls(id: u32) -> Option<u32> {
    NO_NULL_LOADS.fetch_add(1, SeqCst);
    (id == 1).then_some(id)
}

#[test]
fn null_ttl_zero_turns_null_caching_off() {
    assert_eq!(lookup_no_nulls(5), None);
    assert_eq!(lookup_no_nulls(5), None);
    assert_eq!(NO_NULL_LOADS.load(SeqCst), 2);
    assert_eq!(lookup_no_nulls(1), Some(1));
    assert_eq!(lookup_no_nulls(1), Some(1));
    assert_eq!(NO_NULL_LOADS.load(SeqCst), 3);
}

static RESOPT_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached]
fn find(id: u32) -> Result<Option<u32>, String> {
    RESOPT_LOADS.fetch_add(1, SeqCst);
    match id {
        0 => Err("db down".into()),
        1 => Ok(None),
        n => Ok(Some(n)),
    }
}

#[test]
fn result_of_option_caches_values_and_nulls_but_not_errors() {
    for _ in 0..2 {
        assert_eq!(find(0), Err("db down".into()));
        assert_eq!(find(1), Ok(None));
        assert_eq!(find(7), Ok(Some(7)));
    }
    assert_eq!(RESOPT_LOADS.load(SeqCst), 4);
    let s = find_cache().stats();
    assert_eq!((s.hits, s.null_hits, s.misses, s.load_errors), (1, 1, 4, 2));
}

static NESTED_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached]
fn nested(x: u8) -> Option<Option<u8>> {
    NESTED_LOADS.fetch_add(1, SeqCst);
    match x {
        0 => None,
        1 => Some(None),
        n => Some(Some(n)),
    }
}

#[test]
fn a_cached_null_differs_from_an_inner_none() {
    for _ in 0..3 {
        assert_eq!(nested(0), None);
        assert_eq!(nested(1), Some(None));
        assert_eq!(nested(2), Some(Some(2)));
    }
    assert_eq!(NESTED_LOADS.load(SeqCst), 3);
    let s = nested_cache().stats();
    assert_eq!((s.hits, s.null_hits), (4, 2));
}

#[cached]
fn unit_option(x: u8) -> Option<()> {
    (x == 1).then_some(())
}

#[test]
fn a_unit_value_differs_from_a_null() {
    for _ in 0..2 {
        assert_eq!(unit_option(1), Some(()));
        assert_eq!(unit_option(0), None);
    }
    let s = unit_option_cache().stats();
    assert_eq!((s.hits, s.null_hits, s.misses), (1, 1, 2));
}

// ---------------------------------------------------------------- keys

#[cached(key = "{a}:{b}")]
fn joined(a: &str, b: &str) -> String {
    format!("{a}|{b}")
}

#[test]
fn values_cannot_forge_a_separator() {
    assert_eq!(joined("x:y", "z"), "x:y|z");
    assert_eq!(joined("x", "y:z"), "x|y:z");
    assert_eq!(joined_cache().stats().misses, 2);
}

#[cached]
fn default_key(a: u32, b: String, c: &[u8]) -> usize {
    a as usize + b.len() + c.len()
}

#[test]
fn the_default_key_uses_every_argument() {
    assert_eq!(default_key(1, "ab".into(), &[1]), 4);
    assert_eq!(default_key(1, "ab".into(), &[1, 2]), 5);
    assert_eq!(default_key(1, "abc".into(), &[1]), 5);
    assert_eq!(default_key(2, "ab".into(), &[1]), 5);
    assert_eq!(default_key(1, "ab".into(), &[1]), 4);
    let s = default_key_cache().stats();
    assert_eq!((s.misses, s.hits), (4, 1));
}

struct Request {
    user: String,
    page: u32,
    trace_id: u64,
}

static FIELD_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "{req.user}:{req.page}")]
fn page(req: &Request) -> String {
    FIELD_LOADS.fetch_add(1, SeqCst);
    format!("{}#{}", req.user, req.page)
}

#[test]
fn field_placeholders_key_by_the_fields_only() {
    let r = |user: &str, page, trace_id| Request {
        user: user.into(),
        page,
        trace_id,
    };
    assert_eq!(page(&r("ann", 1, 10)), "ann#1");
    assert_eq!(
        page(&r("ann", 1, 11)),
        "ann#1",
        "trace_id is not part of the key"
    );
    assert_eq!(page(&r("ann", 2, 10)), "ann#2");
    assert_eq!(page(&r("bob", 1, 10)), "bob#1");
    assert_eq!(FIELD_LOADS.load(SeqCst), 3);
    assert!(page_invalidate(&r("ann", 1, 99)).is_done());
    assert_eq!(page(&r("ann", 1, 12)), "ann#1");
    assert_eq!(FIELD_LOADS.load(SeqCst), 4);
    assert_eq!(r("x", 0, 0).trace_id, 0);
}

static UNUSED_PARAM_LOADS: AtomicU32 = AtomicU32::new(0);

struct Db;

#[cached(key = "user:{id}")]
fn by_id(db: &Db, id: u64) -> u64 {
    let _ = db;
    UNUSED_PARAM_LOADS.fetch_add(1, SeqCst);
    id
}

#[test]
fn parameters_outside_the_template_are_not_key_parts() {
    // `Db` is neither `Hash` nor `Eq`: it need not be, since the key does not name it.
    assert_eq!(by_id(&Db, 4), 4);
    assert_eq!(by_id(&Db, 4), 4);
    assert!(by_id_invalidate(4).is_done());
    assert_eq!(by_id(&Db, 4), 4);
    assert_eq!(UNUSED_PARAM_LOADS.load(SeqCst), 2);
}

#[cached(key = "shared:{x}")]
fn first(x: u32) -> u32 {
    x + 1
}

#[cached(key = "shared:{x}")]
fn second(x: u32) -> u32 {
    x + 2
}

#[test]
fn two_functions_never_share_entries() {
    assert_eq!(first(1), 2);
    assert_eq!(second(1), 3);
    assert_eq!(first(1), 2);
    assert_eq!(second(1), 3);
    assert_ne!(first_cache().name(), second_cache().name());
}

// ---------------------------------------------------------------- companions

static COMPANION_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(name = "companions")]
fn companion(x: u32) -> u32 {
    COMPANION_LOADS.fetch_add(1, SeqCst) + x * 1000
}

#[test]
fn companions_work_together() {
    let cache = companion_cache();
    assert_eq!(cache.name(), "companions");
    assert_eq!(companion(1), 1000);
    assert_eq!(companion(1), 1000);
    assert_eq!(
        companion_uncached(1),
        1001,
        "the uncached body runs every time"
    );
    assert_eq!(
        companion(1),
        1000,
        "the uncached call does not touch the cache"
    );
    assert_eq!(companion_refresh(1), 1002);
    assert_eq!(companion(1), 1002, "refresh wrote through");
    assert!(companion_invalidate(1).is_done());
    assert_eq!(companion(1), 1003);
    assert_eq!(cache.len(), 1);
    assert!(cache.clear().is_done());
    assert!(cache.is_empty());
    assert_eq!(companion(1), 1004);
    let s = cache.stats();
    assert_eq!(
        (s.hits, s.misses, s.loads, s.waits, s.store_errors),
        (3, 3, 4, 0, 0)
    );
    assert!(format!("{cache:?}").contains("companions"));
}

#[cached]
fn default_name() -> u8 {
    7
}

#[test]
fn the_default_name_is_the_function_path() {
    assert_eq!(default_name(), 7);
    assert_eq!(default_name_cache().name(), "memory::default_name");
}

// ---------------------------------------------------------------- capacity

#[cached(max_entries = 100)]
fn bounded(x: u32) -> u32 {
    x
}

#[test]
fn max_entries_bounds_the_store() {
    for x in 0..1000 {
        assert_eq!(bounded(x), x);
        assert!(
            bounded_cache().len() <= 100,
            "{} entries",
            bounded_cache().len()
        );
    }
    assert!(
        bounded_cache().len() >= 50,
        "the store holds too little: {}",
        bounded_cache().len()
    );
}

// ---------------------------------------------------------------- no arguments

static CONFIG_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = "1h")]
fn config() -> String {
    CONFIG_LOADS.fetch_add(1, SeqCst);
    "cfg".into()
}

#[test]
fn a_function_without_arguments_has_one_entry() {
    assert_eq!(config(), "cfg");
    assert_eq!(config(), "cfg");
    assert!(config_invalidate().is_done());
    assert_eq!(config(), "cfg");
    assert_eq!(CONFIG_LOADS.load(SeqCst), 2);
}
