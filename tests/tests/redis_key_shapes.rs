//! Issue 10 (#3): two functions never share Redis keys (DESIGN §6 "Injective across
//! functions"). Before: `name = "user", key = "profile:{id}"` and `name = "user:profile",
//! key = "{id}"` both used `user:profile:7` and served each other's values; `clear()` of
//! `acct` deleted `acct:profile:1`; a value `"profile:42"` under `key = "{id}"` rendered
//! to `…:profile:42`.
#![cfg(feature = "redis")]

mod common;

use cache_runtime::cached;
use redis::Commands;

#[cached(key = "profile:{id}", name = "shape_user")]
fn user_by_template(id: u32) -> String {
    format!("template {id}")
}

#[cached(key = "{id}", name = "shape_user:profile")]
fn user_by_name(id: u32) -> String {
    format!("name {id}")
}

#[cached(key = "{id}", name = "shape_acct")]
fn acct(id: u32) -> u32 {
    id
}

#[cached(key = "{id}", name = "shape_acct:profile")]
fn acct_profile(id: u32) -> u32 {
    id + 1000
}

#[cached(key = "{id}", name = "shape_inj")]
fn by_text(id: &str) -> String {
    format!("text {id}")
}

#[cached(key = "profile:{id}", name = "shape_inj")]
fn by_number(id: u32) -> String {
    format!("number {id}")
}

fn prefix() -> String {
    format!("t{}:", std::process::id())
}

fn exists(con: &mut tests::redis_server::Raw, key: &str) -> bool {
    con.exists(format!("{}{key}", prefix())).expect("EXISTS")
}

#[test]
fn issue_10_functions_with_overlapping_keys_never_share_an_entry() {
    if !common::backend_ready() {
        return;
    }
    let mut con = tests::redis_server::raw(tests::redis_server::url().expect("a server"));
    for _ in 0..2 {
        assert_eq!(user_by_template(7), "template 7");
        assert_eq!(
            user_by_name(7),
            "name 7",
            "served the other function's value"
        );
    }
    assert!(
        exists(&mut con, "shape_user:profile:7"),
        "the first cache uses Redis"
    );
    let second = user_by_name_cache().stats();
    assert_eq!(second.store_errors, 0, "{second:?}");
    assert!(
        second.store_skips >= 2,
        "the second runs in process: {second:?}"
    );
    assert_eq!(second.hits, 1, "and still caches: {second:?}");

    // Invalidating and clearing the second never touches the first's entry.
    assert!(user_by_name_invalidate(7).is_done());
    assert!(user_by_name_cache().clear().is_done());
    assert!(exists(&mut con, "shape_user:profile:7"));
    assert_eq!(user_by_template_cache().stats().hits, 1);
}

#[test]
fn issue_10_clear_deletes_only_its_own_keys() {
    if !common::backend_ready() {
        return;
    }
    let mut con = tests::redis_server::raw(tests::redis_server::url().expect("a server"));
    assert_eq!(acct(1), 1);
    assert_eq!(acct_profile(1), 1001);
    assert!(exists(&mut con, "shape_acct:1") && exists(&mut con, "shape_acct:profile:1"));
    assert!(acct_cache().clear().is_done());
    assert!(!exists(&mut con, "shape_acct:1"), "cleared");
    assert!(
        exists(&mut con, "shape_acct:profile:1"),
        "clear() of `shape_acct` deleted a key of `shape_acct:profile`"
    );
    assert_eq!(acct_profile(1), 1001);
    assert_eq!(acct_profile_cache().stats().hits, 1);
}

#[test]
fn issue_10_a_value_cannot_forge_another_functions_key() {
    if !common::backend_ready() {
        return;
    }
    let mut con = tests::redis_server::raw(tests::redis_server::url().expect("a server"));
    // Same name, shapes `shape_inj:{…}` and `shape_inj:profile:{…}`: apart, since no value
    // holds a `:`.
    assert_eq!(by_number(42), "number 42");
    assert_eq!(by_text("profile:42"), "text profile:42");
    assert_eq!(by_number(42), "number 42");
    assert_eq!(by_text("profile:42"), "text profile:42");
    assert!(exists(&mut con, "shape_inj:profile:42"));
    assert!(exists(&mut con, "shape_inj:profile%3A42"));
    for cache in [by_number_cache(), by_text_cache()] {
        let s = cache.stats();
        assert_eq!((s.hits, s.store_skips), (1, 0), "{}: {s:?}", cache.name());
    }
}

/// A generic `impl` whose `Self` holds a closure: its type name prints braces.
struct Pricer<F>(F);

impl<F: Fn(u32) -> u32 + Sync + 'static> Pricer<F> {
    #[cached(ttl = 60, key = "{id}")]
    fn price(&self, id: u32) -> u32 {
        (self.0)(id)
    }

    #[cached(ttl = 60, key = "{id}", name = "pricer_named")]
    fn named(&self, id: u32) -> u32 {
        (self.0)(id) + 1
    }

    fn handles(&self) -> [&'static cache_runtime::CacheHandle; 2] {
        [Self::price_cache(), Self::named_cache()]
    }
}

/// Issue 14, found in review: a method's cache name comes from `Self`'s type name, which
/// holds braces when `Self` holds a closure (`{{closure}}`); as a Redis Cluster hash tag they
/// put the value key and its lock in different slots (CROSSSLOT: every call a store error).
/// The braces are escaped, with a given name and without; on the cluster run (CI part 3) the
/// lease script then touches one slot.
#[test]
fn issue_14_a_closure_in_self_cannot_move_a_key_off_its_locks_slot() {
    if !common::backend_ready() {
        return;
    }
    let pricer = Pricer(|id| id * 3);
    for _ in 0..2 {
        assert_eq!(pricer.price(5), 15);
        assert_eq!(pricer.named(5), 16);
    }
    for handle in pricer.handles() {
        let name = handle.name();
        assert!(!name.contains(['{', '}']), "{name}");
        assert!(
            name.contains("%7B"),
            "{name}: the closure's braces, escaped"
        );
        let s = handle.stats();
        assert_eq!(
            (s.loads, s.hits, s.store_errors),
            (1, 1, 0),
            "{name}: {s:?}"
        );
    }
}
