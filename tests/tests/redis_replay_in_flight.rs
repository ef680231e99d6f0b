//! Issue 22, part 1: no Redis read of this process is used while an invalidation it kept is
//! not yet confirmed by Redis. Redis takes no writes (`CLIENT PAUSE … WRITE`, reads still
//! served) while `f_invalidate`, `clear()` and `invalidate_tag` are made: each returns
//! `Pending` and is kept, and every replay of it stays in flight until the pause ends. Threads
//! and tasks read the same keys meanwhile, on a plain Redis function, a tiered one and a tagged
//! one: none may get the value from before the invalidation (before the fix a replay took the
//! kept list at its start, so a read racing it found nothing kept and read the old value).
//! One test on a `redis-server` of its own; then the same in a child process on a 3-primary
//! cluster of its own (every node paused).
#![cfg(feature = "redis")]

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

use cache_runtime::{Invalidation, cached};

/// The "database": the current version of every value.
static VERSION: AtomicU32 = AtomicU32::new(1);

#[cached(ttl = 300, key = "{id}", name = "replay_plain")]
fn plain(id: u32) -> u32 {
    id * 100 + VERSION.load(SeqCst)
}

#[cached(ttl = 300, key = "{id}", name = "replay_plain_async")]
async fn plain_async(id: u32) -> u32 {
    id * 100 + VERSION.load(SeqCst)
}

#[cached(ttl = 300, key = "{id}", name = "replay_tiered", backend = "tiered")]
fn tiered(id: u32) -> u32 {
    id * 100 + VERSION.load(SeqCst)
}

#[cached(
    ttl = 300,
    key = "{id}",
    name = "replay_tiered_async",
    backend = "tiered"
)]
async fn tiered_async(id: u32) -> u32 {
    id * 100 + VERSION.load(SeqCst)
}

#[cached(ttl = 300, key = "{id}", name = "replay_tagged", tags = ["replay:all"])]
fn tagged(id: u32) -> u32 {
    id * 100 + VERSION.load(SeqCst)
}

#[cached(ttl = 300, key = "{id}", name = "replay_tagged_async", tags = ["replay:all"])]
async fn tagged_async(id: u32) -> u32 {
    id * 100 + VERSION.load(SeqCst)
}

/// Set by the parent for its child process: run the test on a cluster.
const ON_CLUSTER: &str = "CACHE_TEST_REPLAY_ON_CLUSTER";

#[test]
fn issue_22_the_same_on_a_cluster() {
    if std::env::var(ON_CLUSTER).is_ok() {
        return; // the child runs the test below
    }
    let mut child = tests::child::test("issue_22_no_read_races_a_replay_in_flight");
    child.env(ON_CLUSTER, "1");
    tests::child::passes(child);
}

/// One kind of invalidation, made while writes are paused, of what `read` and `read_async`
/// read.
struct Trial {
    what: &'static str,
    read: fn(u32) -> u32,
    read_async: fn(u32) -> std::pin::Pin<Box<dyn Future<Output = u32> + Send>>,
    invalidate: fn(u32) -> Invalidation,
}

const TRIALS: [Trial; 4] = [
    Trial {
        what: "f_invalidate, plain",
        read: plain,
        read_async: |id| Box::pin(plain_async(id)),
        invalidate: |id| {
            let sync = plain_invalidate(id);
            let tasks = block_on(plain_async_invalidate(id));
            if sync == tasks {
                sync
            } else {
                Invalidation::Done
            }
        },
    },
    Trial {
        what: "f_invalidate, tiered",
        read: tiered,
        read_async: |id| Box::pin(tiered_async(id)),
        invalidate: |id| {
            let sync = tiered_invalidate(id);
            let tasks = block_on(tiered_async_invalidate(id));
            if sync == tasks {
                sync
            } else {
                Invalidation::Done
            }
        },
    },
    Trial {
        what: "clear()",
        read: plain,
        read_async: |id| Box::pin(plain_async(id)),
        invalidate: |_| {
            let sync = plain_cache().clear();
            let tasks = plain_async_cache().clear();
            if sync == tasks {
                sync
            } else {
                Invalidation::Done
            }
        },
    },
    Trial {
        what: "invalidate_tags",
        read: tagged,
        read_async: |id| Box::pin(tagged_async(id)),
        invalidate: |_| cache_runtime::invalidate_tags(["replay:all", "replay:other"]),
    },
];

#[test]
fn issue_22_no_read_races_a_replay_in_flight() {
    use tests::redis_server::raw;
    let on_cluster = std::env::var(ON_CLUSTER).is_ok();
    // The servers live until the test ends.
    let what = "the replay-in-flight test";
    let Some(own) = tests::redis_server::Own::start(what, on_cluster) else {
        return;
    };
    let urls = own.urls.clone();
    // The breaker never opens: every read tries Redis, so each one races the replays.
    let settings = cache_runtime::Config::builder()
        .op_timeout(Duration::from_millis(100))
        .breaker_threshold(1_000_000);
    let settings = match on_cluster {
        true => settings.cluster_nodes(urls.clone()),
        false => settings.redis_url(urls[0].as_str()),
    };
    let prefix = format!("replay{}:", std::process::id());
    settings
        .key_prefix(prefix.as_str())
        .init()
        .expect("settings");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let pause = |ms: u64| {
        for url in &urls {
            let mut node = raw(url);
            let _: () = redis::cmd("CLIENT")
                .arg("PAUSE")
                .arg(ms)
                .arg("WRITE")
                .query(&mut node)
                .expect("CLIENT PAUSE");
        }
    };
    for (n, trial) in TRIALS.iter().enumerate() {
        let id = u32::try_from(n).expect("few trials");
        let old = VERSION.load(SeqCst);
        assert_eq!((trial.read)(id), id * 100 + old);
        assert_eq!(runtime.block_on((trial.read_async)(id)), id * 100 + old);
        // Cached in Redis (and in the tiered L1): the old value is what a Redis read returns.
        let pause_ms = 1_500;
        let paused_at = Instant::now();
        pause(pause_ms);
        let new = VERSION.fetch_add(1, SeqCst) + 1;
        assert_eq!(
            (trial.invalidate)(id),
            Invalidation::Pending,
            "{}: Redis takes no writes: kept",
            trial.what
        );
        let stop = AtomicBool::new(false);
        let (reads, old_reads) = (AtomicU32::new(0), AtomicU32::new(0));
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    while !stop.load(SeqCst) {
                        if (trial.read)(id) != id * 100 + new {
                            old_reads.fetch_add(1, SeqCst);
                        }
                        reads.fetch_add(1, SeqCst);
                    }
                });
            }
            let task_stop = std::sync::Arc::new(AtomicBool::new(false));
            let tasks: Vec<_> = (0..3)
                .map(|_| {
                    let (stop, read) = (task_stop.clone(), trial.read_async);
                    runtime.spawn(async move {
                        let (mut n, mut old) = (0u32, 0u32);
                        while !stop.load(SeqCst) {
                            if read(id).await != id * 100 + new {
                                old += 1;
                            }
                            n += 1;
                        }
                        (n, old)
                    })
                })
                .collect();
            // Past the pause: the replays go through, and reads come from Redis again.
            while paused_at.elapsed() < Duration::from_millis(pause_ms + 500) {
                std::thread::sleep(Duration::from_millis(20));
            }
            task_stop.store(true, SeqCst);
            for task in tasks {
                let (n, old) = runtime.block_on(task).expect("no task panicked");
                reads.fetch_add(n, SeqCst);
                old_reads.fetch_add(old, SeqCst);
            }
            stop.store(true, SeqCst);
        });
        assert!(reads.load(SeqCst) > 6, "{}: the readers read", trial.what);
        assert_eq!(
            old_reads.load(SeqCst),
            0,
            "{}: of {} reads, these returned the value from before the invalidation",
            trial.what,
            reads.load(SeqCst)
        );
        // Redis has the invalidation: what it serves now is the new version.
        assert_eq!((trial.read)(id), id * 100 + new);
        assert_eq!(runtime.block_on((trial.read_async)(id)), id * 100 + new);
    }
}

/// Runs a future on a bare current-thread runtime (an async invalidation needs none of the
/// caller's).
fn block_on<T>(fut: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
        .block_on(fut)
}
