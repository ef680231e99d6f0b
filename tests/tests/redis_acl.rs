//! Issue 14 (ACL): the library runs under a Redis ACL user limited to its key prefix and the
//! commands it uses (the README's rule); its password never appears in a log line. On a server
//! of its own (the ACL user is set up on it), and, in a child process (the settings are
//! process-wide), on a 3-primary cluster of its own with the user on every node.
#![cfg(feature = "redis")]

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

use cache_runtime::{Invalidation, cached, invalidate_tag};

const PASSWORD: &str = "acl-s3cret-Pw";

static LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 60, key = "{id}", name = "acl", tags = ["acl:{id}"])]
fn value(id: u32) -> u32 {
    LOADS.fetch_add(1, SeqCst);
    id
}

#[cached(backend = "tiered", ttl = 60, key = "{id}", name = "acl_tiered")]
fn tiered(id: u32) -> u32 {
    id
}

/// The rules an operator gives the library's user: its prefix's keys (and their locks, whose
/// hash tag starts with `{`), its channel, the commands it sends (also from its scripts), and
/// on a cluster the two the cluster client needs (the README's rule, word for word).
pub const COMMANDS: &str = "+@connection +get +set +del +unlink +mget +scan +evalsha +eval \
                            +script|load +publish +subscribe +xadd +xread +xrange +xrevrange \
                            +info +pexpire +pttl +cluster|slots +asking";

/// Set by the parent for its child process: run the test on a cluster.
const ON_CLUSTER: &str = "CACHE_TEST_ACL_ON_CLUSTER";

/// Sets up the library's user on `admin`'s server.
fn add_user(admin: &mut dyn redis::ConnectionLike, prefix: &str) {
    let mut rules = vec![
        "cache".to_owned(),
        "on".to_owned(),
        format!(">{PASSWORD}"),
        "resetkeys".to_owned(),
        format!("~{prefix}*"),
        format!("~{{{prefix}*"),
        "resetchannels".to_owned(),
        format!("&{prefix}*"),
        "-@all".to_owned(),
    ];
    rules.extend(COMMANDS.split_whitespace().map(str::to_owned));
    let () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg(&rules)
        .query(admin)
        .expect("ACL SETUSER");
}

#[test]
fn a_user_limited_to_the_prefix_runs_everything_on_a_cluster() {
    if std::env::var(ON_CLUSTER).is_ok() {
        return; // the child runs the test below
    }
    let mut child = tests::child::test("a_user_limited_to_the_prefix_runs_everything");
    child.env(ON_CLUSTER, "1");
    tests::child::passes(child);
}

#[test]
fn a_user_limited_to_the_prefix_runs_everything() {
    let prefix = "aclapp:";
    let on_cluster = std::env::var(ON_CLUSTER).is_ok();
    // The server (or the cluster) lives until the test ends.
    let (_server, _cluster, mut admin, stored_keys);
    if on_cluster {
        let Some(cluster) = tests::redis_server::or_skip(
            "the ACL test on a cluster",
            tests::redis_server::Cluster::start(3),
        ) else {
            return;
        };
        let mut nodes = Vec::new();
        let mut admins = Vec::new();
        for node in &cluster.nodes {
            let mut one = tests::redis_server::raw(&node.url);
            add_user(&mut one, prefix);
            admins.push(one);
            nodes.push(format!("redis://cache:{PASSWORD}@127.0.0.1:{}", node.port));
        }
        tests::logs::capture();
        cache_runtime::Config::builder()
            .cluster_nodes(nodes)
            .key_prefix(prefix)
            .init()
            .expect("settings");
        admin = admins;
        _cluster = Some(cluster);
        _server = None;
    } else {
        let Some(server) = tests::redis_server::own_server("the ACL test") else {
            return;
        };
        let mut one = tests::redis_server::raw(&server.url);
        add_user(&mut one, prefix);
        tests::logs::capture();
        let url = format!("redis://cache:{PASSWORD}@127.0.0.1:{}", server.port);
        cache_runtime::Config::builder()
            .redis_url(url.as_str())
            .key_prefix(prefix)
            .init()
            .expect("settings");
        admin = vec![one];
        _server = Some(server);
        _cluster = None;
    }
    stored_keys = |admin: &mut Vec<tests::redis_server::Raw>| -> Vec<String> {
        let mut all = Vec::new();
        for one in admin {
            let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(one).expect("KEYS");
            all.extend(keys);
        }
        all
    };

    // Misses, hits, invalidation, tags, clear: all on Redis, no store error.
    assert_eq!(value(1), 1);
    assert_eq!(value(1), 1);
    assert_eq!(LOADS.load(SeqCst), 1, "the second call hit Redis");
    assert_eq!(value_invalidate(1), Invalidation::Done);
    assert_eq!(value(1), 1);
    assert_eq!(invalidate_tag("acl:1"), Invalidation::Done);
    assert_eq!(value(1), 1);
    assert_eq!(LOADS.load(SeqCst), 3);
    assert_eq!(value_cache().clear(), Invalidation::Done);
    let s = value_cache().stats();
    assert_eq!((s.store_errors, s.store_skips), (0, 0), "{s:?}");
    let stored = stored_keys(&mut admin);
    assert!(
        stored
            .iter()
            .all(|k| k.starts_with(prefix) || k.starts_with(&format!("{{{prefix}"))),
        "only the prefix's keys: {stored:?}"
    );

    // Tiered: the log's reader (XREAD, INFO, CLIENT SETNAME) runs, so the L1 answers.
    let give_up = Instant::now() + Duration::from_secs(20);
    while tiered_cache().stats().l1_hits == 0 {
        assert!(Instant::now() < give_up, "the L1 never answered");
        tiered(1);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(tiered_invalidate(1), Invalidation::Done);
    let s = tiered_cache().stats();
    assert_eq!((s.store_errors, s.store_skips), (0, 0), "{s:?}");

    let lines = tests::logs::lines();
    assert!(
        lines.iter().all(|l| !l.contains(PASSWORD)),
        "the password was logged: {lines:?}"
    );
    let config = format!("{:?}", cache_runtime::caches());
    assert!(!config.contains(PASSWORD));
}
