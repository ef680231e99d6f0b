//! Issue 25: no key without a lifetime. A tag key has one, which outlives every entry that
//! recorded it and is renewed (never shortened) by the loads that record it; an invalidation
//! gives it one too; a tag key that expires makes its entries misses (they load again, never
//! come back); and after a tagged workload with a `ttl`, every key under the prefix (values,
//! locks, tag keys, the invalidation log) has a lifetime, the values of a cache without `ttl`
//! excepted (no `PX`, as the README's layout says). The tiered part of the workload runs in
//! another process (this test binary run again, on the helper test
//! `tiered_workload_in_another_process`): a tiered cache's tracking connection moves tags on
//! in its process at every write of a tag key, which would make the load counts here race.
#![cfg(feature = "redis")]

mod common;

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::Duration;

use cache_runtime::{cached, invalidate_tag, invalidate_tags};

const MINUTE_MS: i64 = 60 * 1000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;

const CHILD_PREFIX: &str = "CACHE_TEST_TAG_LIFETIME_PREFIX";

/// The Redis prefix of this process (the parent's, in the child), and the server (`None`:
/// skipped, said why).
fn setup() -> Option<(String, &'static str)> {
    let prefix =
        std::env::var(CHILD_PREFIX).unwrap_or_else(|_| format!("rtl{}:", std::process::id()));
    let url = tests::redis_server::setup(&prefix)?;
    Some((prefix, url))
}

fn tag_key(prefix: &str, tag: &str) -> String {
    format!("{prefix}cache-runtime:tag:{tag}")
}

/// `PTTL`: ms left, -1 for a key without a lifetime, -2 for no key.
fn pttl(con: &mut dyn redis::ConnectionLike, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query(con).expect("PTTL")
}

fn pexpire(con: &mut dyn redis::ConnectionLike, key: &str, ms: i64) {
    let set: i64 = redis::cmd("PEXPIRE")
        .arg(key)
        .arg(ms)
        .query(con)
        .expect("PEXPIRE");
    assert_eq!(set, 1, "{key} is there");
}

fn get(con: &mut dyn redis::ConnectionLike, key: &str) -> Option<String> {
    redis::cmd("GET").arg(key).query(con).expect("GET")
}

fn exists(con: &mut dyn redis::ConnectionLike, key: &str) -> bool {
    redis::cmd("EXISTS").arg(key).query(con).expect("EXISTS")
}

#[cached(backend = "redis", ttl = 60, jitter = 0, name = "rtl_short", key = "{id}",
         tags = ["rtl:short:{id}", "rtl:short"])]
fn short(id: u32) -> u32 {
    id
}

#[cached(backend = "redis", ttl = "2h", stale = "1h", jitter = 0, name = "rtl_long",
         key = "{id}", tags = ["rtl:long:{id}", "rtl:long"])]
fn long(id: u32) -> u32 {
    id
}

/// A lifetime chosen by the value: as many seconds as it says.
fn seconds(value: &u32) -> Duration {
    Duration::from_secs(u64::from(*value))
}

#[cached(backend = "redis", ttl = 60, ttl_fn = seconds, jitter = 0, name = "rtl_chosen",
         key = "{secs}", tags = ["rtl:chosen:{secs}"])]
fn chosen(secs: u32) -> u32 {
    secs
}

/// A tag key lives at least as long as the entry its load wrote: a short entry (the key made
/// by the lease lives longer already), a long one with `stale` (the publish renews the key past
/// it), and one whose lifetime `ttl_fn` chose (3 h, past its `ttl`: known only at the
/// publish). And no longer than a bound: under a day for these.
#[test]
fn a_tag_key_outlives_the_entry_its_load_wrote() {
    let Some((prefix, url)) = setup() else {
        return;
    };
    let mut con = tests::redis_server::raw(url);
    assert_eq!(short(1), 1);
    assert_eq!(long(1), 1);
    assert_eq!(chosen(3 * 3600), 3 * 3600);
    let cases: [(&str, &[&str]); 3] = [
        ("rtl_short:1", &["rtl:short:1", "rtl:short"]),
        ("rtl_long:1", &["rtl:long:1", "rtl:long"]),
        ("rtl_chosen:10800", &["rtl:chosen:10800"]),
    ];
    for (entry, tags) in cases {
        let entry = format!("{prefix}{entry}");
        let entry_left = pttl(&mut con, &entry);
        assert!(entry_left > 0, "{entry} has a lifetime: {entry_left}");
        for tag in tags {
            let key = tag_key(&prefix, tag);
            let left = pttl(&mut con, &key);
            assert!(
                left >= entry_left,
                "{key} ({left} ms left) ends before {entry} ({entry_left} ms left)"
            );
            assert!(left < DAY_MS, "{key} lives {left} ms");
        }
    }
    // The long entry's key was renewed past it by the publish: past 3 h.
    let left = pttl(&mut con, &tag_key(&prefix, "rtl:long:1"));
    assert!(left > 3 * HOUR_MS, "{left}");
}

static RENEWED_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(backend = "redis", ttl = 60, jitter = 0, name = "rtl_renewed", key = "{id}",
         tags = ["rtl:renewed"])]
fn renewed(id: u32) -> u32 {
    RENEWED_LOADS.fetch_add(1, SeqCst);
    id
}

#[cached(backend = "redis", ttl = "2h", jitter = 0, name = "rtl_renewed_long", key = "{id}",
         tags = ["rtl:renewed:long"])]
fn renewed_long(id: u32) -> u32 {
    id
}

/// A load of another key that records the same tag renews its key: one nearly gone lives on,
/// one with a long life left keeps it (never shortened), and the version stays (entries that
/// recorded it still hit). At the lease (a key with less left than a load needs) and at the
/// publish (a key with less left than the entry written).
#[test]
fn a_load_that_records_a_tag_renews_its_key_and_never_shortens_it() {
    let Some((prefix, url)) = setup() else {
        return;
    };
    let mut con = tests::redis_server::raw(url);
    let key = tag_key(&prefix, "rtl:renewed");
    assert_eq!(renewed(1), 1);
    let version = get(&mut con, &key).expect("the load made the tag key");

    // Nearly gone: the next load raises it.
    pexpire(&mut con, &key, 5_000);
    assert_eq!(renewed(2), 2);
    let left = pttl(&mut con, &key);
    let entry_left = pttl(&mut con, &format!("{prefix}rtl_renewed:2"));
    assert!(left > 5_000, "not renewed: {left} ms left");
    assert!(left >= entry_left, "{left} ms left, the entry {entry_left}");

    // A longer life than any load needs: kept.
    pexpire(&mut con, &key, 30 * DAY_MS);
    assert_eq!(renewed(3), 3);
    let left = pttl(&mut con, &key);
    assert!(left > 29 * DAY_MS, "shortened to {left} ms");

    // Renewals left the version alone: every entry still hits.
    assert_eq!(get(&mut con, &key), Some(version));
    for id in 1..=3 {
        assert_eq!(renewed(id), id);
    }
    assert_eq!(
        RENEWED_LOADS.load(SeqCst),
        3,
        "a renewal made entries misses"
    );

    // The publish: 20 minutes left is more than a load needs, less than a 2 h entry.
    let long_key = tag_key(&prefix, "rtl:renewed:long");
    assert_eq!(renewed_long(1), 1);
    pexpire(&mut con, &long_key, 20 * MINUTE_MS);
    assert_eq!(renewed_long(2), 2);
    let entry_left = pttl(&mut con, &format!("{prefix}rtl_renewed_long:2"));
    let left = pttl(&mut con, &long_key);
    assert!(entry_left > HOUR_MS, "{entry_left}");
    assert!(left >= entry_left, "{left} ms left, the entry {entry_left}");
}

static PERSISTED_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(backend = "redis", ttl = 60, name = "rtl_persisted", key = "{id}",
         tags = ["rtl:persisted"])]
fn persisted(id: u32) -> u32 {
    PERSISTED_LOADS.fetch_add(1, SeqCst);
    id
}

/// A tag key without a lifetime (set by another service with a plain `SET`, or by an older
/// version of this library) gets one at the next load that records it, version unchanged.
#[test]
fn a_tag_key_without_a_lifetime_gets_one_at_the_next_load() {
    let Some((prefix, url)) = setup() else {
        return;
    };
    let mut con = tests::redis_server::raw(url);
    let key = tag_key(&prefix, "rtl:persisted");
    let () = redis::cmd("SET")
        .arg(&key)
        .arg("0123456789abcdef")
        .query(&mut con)
        .expect("SET");
    assert_eq!(pttl(&mut con, &key), -1);
    assert_eq!(persisted(1), 1);
    let left = pttl(&mut con, &key);
    assert!(left > 0 && left < DAY_MS, "{left}");
    assert_eq!(get(&mut con, &key).as_deref(), Some("0123456789abcdef"));
    let entry: Vec<u8> = redis::cmd("GET")
        .arg(format!("{prefix}rtl_persisted:1"))
        .query(&mut con)
        .expect("GET");
    assert_eq!(tests::envelope::parse(&entry).tags, b"0123456789abcdef");
    assert_eq!(persisted(1), 1);
    assert_eq!(PERSISTED_LOADS.load(SeqCst), 1, "then a hit");
}

static INVALIDATED_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(backend = "redis", ttl = 60, jitter = 0, name = "rtl_invalidated", key = "{id}",
         tags = ["rtl:invalidated"])]
fn invalidated(id: u32) -> u32 {
    INVALIDATED_LOADS.fetch_add(1, SeqCst);
    id
}

/// `invalidate_tag` and `invalidate_tags` set tag keys with a lifetime, whether a load made the
/// key or none ever did; the invalidation log they append to has one too.
#[test]
fn an_invalidated_tag_key_has_a_lifetime() {
    let Some((prefix, url)) = setup() else {
        return;
    };
    let mut con = tests::redis_server::raw(url);
    let key = tag_key(&prefix, "rtl:invalidated");
    assert_eq!(invalidated(1), 1);
    let before = get(&mut con, &key);
    assert!(invalidate_tag("rtl:invalidated").is_done());
    assert_ne!(get(&mut con, &key), before, "a new version");
    let left = pttl(&mut con, &key);
    assert!(left > 0 && left < DAY_MS, "{left}");
    assert_eq!(invalidated(1), 1);
    assert_eq!(INVALIDATED_LOADS.load(SeqCst), 2, "the entry was a miss");
    let entry_left = pttl(&mut con, &format!("{prefix}rtl_invalidated:1"));
    assert!(pttl(&mut con, &key) >= entry_left);

    // Tags no load ever recorded, several at once.
    assert!(invalidate_tags(["rtl:invalidated:a", "rtl:invalidated:b"]).is_done());
    for tag in ["rtl:invalidated:a", "rtl:invalidated:b"] {
        let left = pttl(&mut con, &tag_key(&prefix, tag));
        assert!(left > 0 && left < DAY_MS, "{tag}: {left}");
    }

    // The invalidation log: renewed by each append, gone a week after the last.
    let left = pttl(&mut con, &format!("{prefix}cache-runtime:invalidations"));
    assert!(left > 0 && left <= 7 * DAY_MS, "{left}");
}

static EXPIRED_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(backend = "redis", ttl = 3600, name = "rtl_expired", key = "{id}",
         tags = ["rtl:expired:{id}"])]
fn expired(id: u32) -> u32 {
    EXPIRED_LOADS.fetch_add(1, SeqCst);
    id
}

/// The safety of a lifetime on tag keys: one that is lost (deleted, as an eviction would) or
/// expires makes every entry that recorded it a miss, and the next load makes it again with a
/// version no entry recorded; before and after an invalidation (a counter starting again at 1
/// could match an old entry; a random version cannot).
#[test]
fn a_tag_key_that_expires_makes_its_entries_misses() {
    let Some((prefix, url)) = setup() else {
        return;
    };
    let mut con = tests::redis_server::raw(url);
    let key = tag_key(&prefix, "rtl:expired:1");
    let loads = || EXPIRED_LOADS.load(SeqCst);
    assert_eq!(expired(1), 1);
    assert_eq!(expired(1), 1);
    assert_eq!(loads(), 1);
    let first = get(&mut con, &key).expect("the load made the tag key");

    // Deleted.
    let () = redis::cmd("DEL").arg(&key).query(&mut con).expect("DEL");
    assert_eq!(expired(1), 1);
    assert_eq!(loads(), 2, "a lost tag key is a miss");
    let second = get(&mut con, &key).expect("the load made it again");
    assert_ne!(second, first);
    assert!(pttl(&mut con, &key) > 0);
    assert_eq!(expired(1), 1);
    assert_eq!(loads(), 2, "then a hit");

    // Expired, for real.
    pexpire(&mut con, &key, 1);
    common::wait_until("the tag key expired", || !exists(&mut con, &key));
    assert_eq!(expired(1), 1);
    assert_eq!(loads(), 3, "an expired tag key is a miss");
    assert_ne!(get(&mut con, &key), Some(second));
    assert_eq!(expired(1), 1);
    assert_eq!(loads(), 3, "then a hit");

    // Invalidated, then expired: still a miss.
    assert!(invalidate_tag("rtl:expired:1").is_done());
    assert_eq!(expired(1), 1);
    assert_eq!(loads(), 4);
    pexpire(&mut con, &key, 1);
    common::wait_until("the tag key expired", || !exists(&mut con, &key));
    assert_eq!(expired(1), 1);
    assert_eq!(loads(), 5);
}

#[cached(backend = "redis", name = "rtl_forever", key = "{id}", tags = ["rtl:forever:{id}"])]
fn forever(id: u32) -> u32 {
    id
}

/// An entry without `ttl` is written without `PX` (kept until evicted or invalidated); its tag
/// keys are kept a week at least after the load that recorded them (two at most), so such an
/// entry is a miss, and loads again, within about a week or two without a load of its tags.
#[test]
fn an_entry_that_never_expires_keeps_its_tag_keys_for_a_week() {
    let Some((prefix, url)) = setup() else {
        return;
    };
    let mut con = tests::redis_server::raw(url);
    assert_eq!(forever(1), 1);
    assert_eq!(pttl(&mut con, &format!("{prefix}rtl_forever:1")), -1);
    let left = pttl(&mut con, &tag_key(&prefix, "rtl:forever:1"));
    assert!(left >= 7 * DAY_MS - MINUTE_MS, "{left}");
    assert!(left <= 15 * DAY_MS, "{left}");
}

#[cached(backend = "redis", ttl = 60, name = "rtl_audit", key = "{id}",
         tags = ["rtl:audit:{id}", "rtl:audit"])]
fn audit(id: u32) -> u32 {
    id
}

static AUDIT_GATE: LazyLock<common::Gate> = LazyLock::new(common::Gate::new);

#[cached(backend = "redis", ttl = 60, name = "rtl_audit_slow", key = "{id}",
         tags = ["rtl:audit:slow"])]
fn audit_slow(id: u32) -> u32 {
    AUDIT_GATE.arrive_and_wait();
    id
}

#[cached(backend = "tiered", ttl = 60, name = "rtl_audit_tiered", key = "{id}",
         tags = ["rtl:audit:tiered:{id}", "rtl:audit:tiered"])]
fn audit_tiered(id: u32) -> u32 {
    id
}

/// The other process: a tiered cache's workload (loads, `f_invalidate` and `f_refresh`, whose
/// changes go to the invalidation log, `clear()`, a tag invalidation), on its parent's prefix.
#[test]
fn tiered_workload_in_another_process() {
    if std::env::var(CHILD_PREFIX).is_err() {
        return; // run by the harness itself: nothing to do
    }
    let Some(_) = setup() else {
        panic!("the parent had a Redis");
    };
    for id in 0..10 {
        assert_eq!(audit_tiered(id), id);
    }
    assert!(audit_tiered_invalidate(1).is_done());
    assert_eq!(audit_tiered_refresh(2), 2);
    assert!(invalidate_tag("rtl:audit:tiered").is_done());
    for id in 0..10 {
        assert_eq!(audit_tiered(id), id);
    }
    assert!(audit_tiered_cache().clear().is_done());
    for id in 0..5 {
        assert_eq!(audit_tiered(id), id);
    }
}

/// After a tagged workload with a `ttl` (loads, invalidations of keys and tags, a load in
/// flight holding its lock, and a tiered cache's in another process), every key under the
/// prefix has a lifetime. Two kinds are let be, and said why: the values of `rtl_forever`
/// (no `ttl`: no `PX`, by design) and the tag key `rtl:persisted`, which a test above writes
/// without a lifetime on purpose (as another service would) until its next load.
#[test]
fn no_key_of_a_workload_with_a_ttl_lives_for_ever() {
    let Some((prefix, url)) = setup() else {
        return;
    };
    for id in 0..10 {
        assert_eq!(audit(id), id);
    }
    assert!(audit_invalidate(3).is_done());
    assert!(invalidate_tag("rtl:audit").is_done());
    for id in 0..10 {
        assert_eq!(audit(id), id);
    }
    assert!(invalidate_tags(["rtl:audit:1", "rtl:audit:never"]).is_done());

    let mut child = tests::child::test("tiered_workload_in_another_process");
    child
        .env("CACHE_TEST_REDIS_URL", url)
        .envs(tests::redis_server::child_env())
        .env(CHILD_PREFIX, &prefix);
    tests::child::passes(child);

    // A load in flight: its lock key is there, with a lifetime.
    let slow = std::thread::spawn(|| audit_slow(1));
    AUDIT_GATE.wait_for_arrival();
    let lock = format!("{{{prefix}rtl_audit_slow:1}}:lock");
    let mut con = tests::redis_server::raw(url);
    let left = pttl(&mut con, &lock);
    assert!(left > 0, "the lock of a load in flight: {left}");

    let let_be = [
        format!("{prefix}rtl_forever:"),
        tag_key(&prefix, "rtl:persisted"),
    ];
    let mut seen: Vec<String> = Vec::new();
    let mut for_ever: Vec<String> = Vec::new();
    for server in tests::redis_server::servers() {
        let mut node = redis::Client::open(server.as_str())
            .and_then(|c| c.get_connection())
            .expect("a connection to each server");
        // Values, tag keys and the log start with the prefix; locks with `{` and the prefix.
        for pattern in [format!("{prefix}*"), format!("{{{prefix}*")] {
            let mut cursor: u64 = 0;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(500)
                    .query(&mut node)
                    .expect("SCAN");
                for key in keys {
                    if pttl(&mut node, &key) == -1 && !let_be.iter().any(|p| key.starts_with(p)) {
                        for_ever.push(key.clone());
                    }
                    seen.push(key);
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
    }
    AUDIT_GATE.open();
    assert_eq!(slow.join().expect("no panic"), 1);

    assert!(for_ever.is_empty(), "keys without a lifetime: {for_ever:?}");
    let expected = [
        format!("{prefix}rtl_audit:1"),
        format!("{prefix}rtl_audit_tiered:1"),
        tag_key(&prefix, "rtl:audit"),
        tag_key(&prefix, "rtl:audit:never"),
        tag_key(&prefix, "rtl:audit:tiered"),
        format!("{prefix}cache-runtime:invalidations"),
        lock,
    ];
    for key in expected {
        assert!(seen.contains(&key), "{key} was not found among {seen:?}");
    }
}
