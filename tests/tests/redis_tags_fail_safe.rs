//! Issue 13, found in review: a value held for `stale_if_error` must not be written back as
//! current after its tag was invalidated by another process between this process's read of it
//! and its lease. Alone in its binary: it watches the pub/sub channel to know that its caller
//! waits for the lease. Real time, not the test clock: the kept value's times must round-trip
//! through Redis exactly, as they do between real processes.
#![cfg(feature = "redis")]

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

use cache_runtime::cached;
use redis::Commands;

static FAILING: AtomicBool = AtomicBool::new(false);
static LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(
    ttl = "200ms",
    stale_if_error = "10m",
    jitter = 0,
    key = "{id}",
    name = "kept",
    tags = ["kept:{id}"],
    lock = "distributed",
    lock_timeout = "10s"
)]
fn kept(id: u32) -> Result<u32, String> {
    if FAILING.load(SeqCst) {
        return Err("database down".into());
    }
    Ok(id * 100 + LOADS.fetch_add(1, SeqCst))
}

#[test]
fn a_kept_value_is_not_written_back_after_its_tag_moved_on_in_another_process() {
    let prefix = format!("rtfs{}:", std::process::id());
    let Some(url) = tests::redis_server::setup(&prefix) else {
        return;
    };
    let mut raw = tests::redis_server::raw(url);
    let value_key = format!("{prefix}kept:1");
    let lock_key = format!("{{{value_key}}}:lock");
    let tag_key = format!("{prefix}cache-runtime:tag:kept:1");
    let channel = format!("{prefix}cache-runtime:published");

    assert_eq!(kept(1), Ok(100));
    // Expired (200 ms, no jitter), kept for `stale_if_error`: waiting out the TTL races nothing.
    std::thread::sleep(Duration::from_millis(300));
    FAILING.store(true, SeqCst);
    // Another process holds the lease: this process's caller reads the kept value, then waits.
    let () = raw.set_ex(&lock_key, "another process", 30).unwrap();
    let caller = std::thread::spawn(|| kept(1));
    let give_up = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, n): (String, u32) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&channel)
            .query::<Vec<(String, u32)>>(&mut raw)
            .unwrap()
            .pop()
            .unwrap();
        if n > 0 {
            break; // it subscribed: it waits for the lease, the kept value in hand
        }
        assert!(Instant::now() < give_up, "the caller never waited");
        std::thread::sleep(Duration::from_millis(1));
    }
    // The other process invalidates the tag, and its load ends without a value.
    let () = raw.set(&tag_key, "0123456789abcdef").unwrap();
    let () = raw.del(&lock_key).unwrap();
    let _: u32 = raw.publish(&channel, &value_key).unwrap();
    // The caller asked before the invalidation: either answer is allowed for it.
    let _ = caller.join().expect("no panic");

    let stored: Vec<u8> = raw.get(&value_key).unwrap();
    let stored = tests::envelope::parse(&stored);
    assert_ne!(
        stored.tags, b"0123456789abcdef",
        "the kept value was written back as current under the new tag version"
    );
    FAILING.store(false, SeqCst);
    assert_eq!(kept(1), Ok(101), "after the invalidation, a load");
}
