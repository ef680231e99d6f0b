//! Issue 9: every cache registers itself at first use; `cache_runtime::caches()` lists name,
//! backend and stats of each, on the build's default backend and with a per-function override.

mod common;

use cache_runtime::cached;

#[cached(name = "registry:first")]
fn first(x: u32) -> u32 {
    x
}

#[cached(name = "registry:memory", backend = "memory")]
fn in_process(x: u32) -> u32 {
    x + 1
}

#[cached(name = "registry:never-called")]
fn never_called(x: u32) -> u32 {
    x
}

#[test]
fn issue_9_caches_lists_every_cache_used_so_far() {
    if !common::backend_ready() {
        return;
    }
    assert_eq!(first(1), 1);
    assert_eq!(first(1), 1);
    assert_eq!(in_process(1), 2);
    let listed = cache_runtime::caches();
    let find = |name: &str| listed.iter().find(|c| c.name() == name).copied();
    let f = find("registry:first").expect("first is listed");
    let default = if cfg!(feature = "redis") {
        "redis"
    } else {
        "memory"
    };
    assert_eq!(f.backend(), default);
    assert_eq!((f.stats().misses, f.stats().hits), (1, 1));
    let m = find("registry:memory").expect("in_process is listed");
    assert_eq!(m.backend(), "memory");
    assert!(
        find("registry:never-called").is_none(),
        "made only at first use"
    );
    let _ = never_called;
    let count = listed
        .iter()
        .filter(|c| c.name() == "registry:first")
        .count();
    assert_eq!(count, 1, "registered once");
}
