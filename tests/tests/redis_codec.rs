//! Issue 10 (#4): values round-trip through Redis exactly. With JSON, a cached
//! `vec![Some(f64::NAN), None, Some(1.5)]` came back as `[None, None, Some(1.5)]` (a wrong
//! value served as a hit), and infinite floats or maps with non-string keys never cached
//! (`store_errors` grew every call). Each function here is called twice: one load, one hit
//! with the exact value, no store error.
#![cfg(feature = "redis")]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

use cache_runtime::{CacheHandle, cached};
use serde::{Deserialize, Serialize};

static LOADS: [AtomicU32; 6] = [const { AtomicU32::new(0) }; 6];

#[cached(key = "{id}", name = "codec_nan_vec")]
fn nan_vec(id: u32) -> Vec<Option<f64>> {
    LOADS[0].fetch_add(1, SeqCst);
    vec![Some(f64::NAN), None, Some(f64::from(id) + 0.5)]
}

#[cached(key = "{id}", name = "codec_inf")]
fn infinite(id: u32) -> (f64, f64, f32) {
    LOADS[1].fetch_add(1, SeqCst);
    (f64::INFINITY, f64::NEG_INFINITY, -0.0 * id as f32)
}

#[cached(key = "{id}", name = "codec_pairs")]
fn pairs(id: u32) -> HashMap<(u32, u32), String> {
    LOADS[2].fetch_add(1, SeqCst);
    HashMap::from([((id, 2), "two".into()), ((id, 3), "three".into())])
}

#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct StructKey {
    region: String,
    shard: u16,
}

#[cached(key = "{id}", name = "codec_struct_keys")]
fn by_struct(id: u32) -> BTreeMap<StructKey, u64> {
    LOADS[3].fetch_add(1, SeqCst);
    let key = StructKey {
        region: "eu".into(),
        shard: id as u16,
    };
    BTreeMap::from([(key, u64::MAX)])
}

#[cached(key = "{id}", name = "codec_wide")]
fn wide(id: u32) -> (u128, i128, Vec<u8>) {
    LOADS[4].fetch_add(1, SeqCst);
    (
        u128::MAX - u128::from(id),
        i128::MIN,
        vec![0, 255, id as u8],
    )
}

#[cached(key = "{id}", name = "codec_nan")]
fn nan(id: u32) -> Option<f64> {
    LOADS[5].fetch_add(1, SeqCst);
    Some(f64::NAN * f64::from(id))
}

/// One load, one hit, no store error.
fn cached_once(cache: &CacheHandle, loads: &AtomicU32) {
    let s = cache.stats();
    assert_eq!(loads.load(SeqCst), 1, "{}: loaded again", cache.name());
    assert_eq!((s.misses, s.hits), (1, 1), "{}: {s:?}", cache.name());
    assert_eq!(s.store_errors, 0, "{}: {s:?}", cache.name());
}

#[test]
fn issue_10_values_round_trip_exactly() {
    if !common::backend_ready() {
        return;
    }
    for _ in 0..2 {
        let v = nan_vec(1);
        assert!(v[0].is_some_and(f64::is_nan), "NaN stays NaN: {v:?}");
        assert_eq!(&v[1..], &[None, Some(1.5)]);
    }
    cached_once(nan_vec_cache(), &LOADS[0]);

    for _ in 0..2 {
        let (up, down, zero) = infinite(1);
        assert_eq!((up, down), (f64::INFINITY, f64::NEG_INFINITY));
        assert!(
            zero == 0.0 && zero.is_sign_negative(),
            "−0.0 keeps its sign"
        );
    }
    cached_once(infinite_cache(), &LOADS[1]);

    for _ in 0..2 {
        assert_eq!(pairs(1).get(&(1, 3)).map(String::as_str), Some("three"));
        assert_eq!(pairs(1).len(), 2);
    }
    assert_eq!(LOADS[2].load(SeqCst), 1);
    assert_eq!(pairs_cache().stats().store_errors, 0);

    for _ in 0..2 {
        let key = StructKey {
            region: "eu".into(),
            shard: 1,
        };
        assert_eq!(by_struct(1), BTreeMap::from([(key, u64::MAX)]));
    }
    cached_once(by_struct_cache(), &LOADS[3]);

    for _ in 0..2 {
        assert_eq!(wide(1), (u128::MAX - 1, i128::MIN, vec![0, 255, 1]));
    }
    cached_once(wide_cache(), &LOADS[4]);

    for _ in 0..2 {
        assert!(
            nan(1).is_some_and(f64::is_nan),
            "a NaN result is a value, not a null"
        );
    }
    cached_once(nan_cache(), &LOADS[5]);
}

static JSON_LOADS: [AtomicU32; 3] = [const { AtomicU32::new(0) }; 3];

#[cached(key = "{id}", name = "codec_json", codec = "json")]
fn json_value(id: u32) -> BTreeMap<String, f64> {
    JSON_LOADS[0].fetch_add(1, SeqCst);
    BTreeMap::from([("price".to_string(), f64::from(id) + 0.25)])
}

#[cached(key = "{id}", name = "codec_json_nan", codec = "json")]
fn json_nan(id: u32) -> Vec<Option<f64>> {
    JSON_LOADS[1].fetch_add(1, SeqCst);
    vec![Some(f64::NAN), None, Some(f64::from(id))]
}

/// `codec = "json"`: readable JSON in Redis, and what JSON cannot hold is refused at write
/// (counted), never written changed: the caller still gets its exact result.
#[test]
fn issue_10_the_json_codec_is_readable_and_refuses_what_it_cannot_hold() {
    if !common::backend_ready() {
        return;
    }
    let mut con = tests::redis_server::raw(tests::redis_server::url().expect("a server"));
    for _ in 0..2 {
        assert_eq!(json_value(1)["price"], 1.25);
    }
    cached_once(json_value_cache(), &JSON_LOADS[0]);
    let key = format!("t{}:codec_json:1", std::process::id());
    let bytes: Vec<u8> = redis::cmd("GET").arg(&key).query(&mut con).expect("GET");
    let entry: serde_json::Value = serde_json::from_slice(&bytes).expect("readable JSON");
    assert_eq!(entry["v"], 3);
    assert_eq!(
        entry["g"], "",
        "an untagged function records no tag versions"
    );
    assert_eq!(entry["d"]["price"], 1.25);
    let fresh_for = entry["f"].as_u64().unwrap() - entry["w"].as_u64().unwrap();
    assert!(fresh_for > 1_000, "fresh for {fresh_for} ms");
    assert_eq!(entry["r"], 0);

    for _ in 0..2 {
        let v = json_nan(1);
        assert!(
            v[0].is_some_and(f64::is_nan),
            "the caller gets its exact result"
        );
        assert_eq!(&v[1..], &[None, Some(1.0)]);
    }
    assert_eq!(JSON_LOADS[1].load(SeqCst), 2, "not cached: refused");
    let s = json_nan_cache().stats();
    assert_eq!((s.hits, s.store_errors), (0, 2), "{s:?}");
    let key = format!("t{}:codec_json_nan:1", std::process::id());
    let stored: Option<Vec<u8>> = redis::cmd("GET").arg(&key).query(&mut con).expect("GET");
    assert_eq!(stored, None, "nothing written changed");
}

#[cached(key = "{id}", name = "codec_json_tagged", codec = "json", tags = ["codec:json:{id}"])]
fn json_tagged(id: u32) -> u32 {
    JSON_LOADS[2].fetch_add(1, SeqCst) + id
}

/// Issue 13, found in review: a version-3 JSON entry in another shape than the writer's (fields
/// reordered, spaces, no `g`), as another tool might write it, was served by the Rust reader and
/// never checked against its tag versions, so `invalidate_tag` could not end it. Every such
/// shape is now a counted miss, and the load writes the entry back in the writer's shape.
#[test]
fn issue_13_a_json_entry_in_another_shape_is_a_counted_miss() {
    if !common::backend_ready() {
        return;
    }
    let mut con = tests::redis_server::raw(tests::redis_server::url().expect("a server"));
    let key = format!("t{}:codec_json_tagged:1", std::process::id());
    let loads = || JSON_LOADS[2].load(SeqCst);
    assert_eq!(json_tagged(1), 1);
    assert_eq!(json_tagged(1), 1);
    assert_eq!(loads(), 1);
    let written: serde_json::Value = {
        let bytes: Vec<u8> = redis::cmd("GET").arg(&key).query(&mut con).expect("GET");
        serde_json::from_slice(&bytes).expect("readable JSON")
    };
    let field = |name: &str| written[name].to_string();
    let shapes = [
        // `f` and `r` swapped, the value changed: a hit would serve 999.
        format!(
            r#"{{"v":3,"t":{},"r":{},"f":{},"g":{},"w":{},"l":0,"d":999}}"#,
            field("t"),
            field("r"),
            field("f"),
            field("g"),
            field("w")
        ),
        // Pretty-printed by a tool.
        format!(
            r#"{{ "v": 3, "t": {}, "f": {}, "r": {}, "g": {}, "w": {}, "l": 0, "d": 999 }}"#,
            field("t"),
            field("f"),
            field("r"),
            field("g"),
            field("w")
        ),
        // Without the tag versions.
        format!(
            r#"{{"v":3,"t":{},"f":{},"r":{},"w":{},"l":0,"d":999}}"#,
            field("t"),
            field("f"),
            field("r"),
            field("w")
        ),
    ];
    for (n, shape) in shapes.iter().enumerate() {
        let errors = json_tagged_cache().stats().store_errors;
        let () = redis::cmd("SET")
            .arg(&key)
            .arg(shape)
            .query(&mut con)
            .expect("SET");
        assert_eq!(
            json_tagged(1),
            1 + n as u32 + 1,
            "{shape}: a miss, loaded again"
        );
        assert_eq!(loads(), n as u32 + 2);
        assert!(
            json_tagged_cache().stats().store_errors > errors,
            "{shape}: counted"
        );
    }
    // The load wrote the writer's shape back: a hit again, ended by its tag.
    let hit = json_tagged(1);
    assert_eq!(loads(), 4);
    assert!(cache_runtime::invalidate_tag("codec:json:1").is_done());
    assert_ne!(json_tagged(1), hit);
    assert_eq!(loads(), 5);
}

static REFUSED_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "{id}", name = "codec_refused")]
fn refused(id: u32) -> u32 {
    REFUSED_LOADS.fetch_add(1, SeqCst);
    id + 5
}

/// Found in review: a command Redis refuses (here `WRONGTYPE`: another tool made the value key
/// a list) is this cache's own failure, not an outage: the call is answered, the refusal is
/// counted and logged with the cache's name, and it does not start an outage (whose one
/// warning would then hide every other cache's failures).
#[test]
fn a_refused_command_is_the_caches_own_failure_not_an_outage() {
    if !common::backend_ready() {
        return;
    }
    tests::logs::capture();
    let mut con = tests::redis_server::raw(tests::redis_server::url().expect("a server"));
    let key = format!("t{}:codec_refused:1", std::process::id());
    let _: i64 = redis::cmd("RPUSH")
        .arg(&key)
        .arg("not an entry")
        .query(&mut con)
        .expect("RPUSH");
    assert_eq!(refused(1), 6, "the call is answered");
    let s = refused_cache().stats();
    assert!(s.store_errors > 0, "counted: {s:?}");
    let lines = tests::logs::at_least(tracing::Level::WARN);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("codec_refused") && l.contains("WRONGTYPE")),
        "logged with the cache's name: {lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("until it answers again")),
        "not an outage: {lines:#?}"
    );
    let _: i64 = redis::cmd("DEL").arg(&key).query(&mut con).expect("DEL");
}
