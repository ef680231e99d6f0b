//! Redis failing under a running program: killed, frozen (`SIGSTOP`) and restarted on the
//! same port, for sync and async functions. Every answer stays right, no call hangs, the hot
//! key is not hammered while Redis is away, and the program goes back to Redis by itself.
//! One test, in a process of its own, with a `redis-server` of its own that it kills and
//! restarts (never a shared one). It prints the figures it measured.
#![cfg(feature = "redis")]

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

use cache_runtime::cached;
use redis::Commands;

static LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 60, key = "{k}", name = "hot")]
fn hot(k: u32) -> u32 {
    LOADS.fetch_add(1, SeqCst);
    k * 2
}

static ASYNC_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 60, key = "{k}", name = "hot_async")]
async fn hot_async(k: u32) -> u32 {
    ASYNC_LOADS.fetch_add(1, SeqCst);
    k * 3
}

const OP_TIMEOUT: Duration = Duration::from_millis(100);

/// Per-call latencies of an outage, and the figures drawn from them.
struct Outage {
    latencies: Vec<Duration>,
    loads: u32,
    total: Duration,
}

impl Outage {
    fn report(&self, what: &str) {
        let mut sorted = self.latencies.clone();
        let first: Vec<String> = sorted.iter().take(4).map(|d| format!("{d:.1?}")).collect();
        let later = sorted.split_off(sorted.len().min(4));
        let mut later = later;
        later.sort();
        let pct = |p: f64| {
            later
                .get(((later.len() as f64 - 1.0) * p) as usize)
                .copied()
                .unwrap_or_default()
        };
        eprintln!(
            "{what}: {} calls in {:.1?}; first calls {}; later calls p50 {:.1?}, p99 {:.1?}, max {:.1?}; loads of the hot key {}",
            self.latencies.len(),
            self.total,
            first.join(", "),
            pct(0.5),
            pct(0.99),
            later.last().copied().unwrap_or_default(),
            self.loads
        );
    }

    fn check(&self) {
        let max = self.latencies.iter().max().copied().unwrap_or_default();
        assert!(
            max < OP_TIMEOUT * 10,
            "a call took {max:?}: Redis made it hang"
        );
        assert!(
            self.loads <= 2,
            "the hot key was loaded {} times during the outage",
            self.loads
        );
    }
}

fn outage(calls: usize, mut call: impl FnMut()) -> (Vec<Duration>, Duration) {
    let start = Instant::now();
    let latencies = (0..calls)
        .map(|_| {
            let t = Instant::now();
            call();
            t.elapsed()
        })
        .collect();
    (latencies, start.elapsed())
}

/// Calls `probe` until the key it writes appears in Redis; the time that took.
fn recovery(
    con: &mut impl FnMut() -> Option<redis::Connection>,
    key: &str,
    mut probe: impl FnMut(),
) -> Duration {
    let start = Instant::now();
    loop {
        probe();
        if let Some(mut c) = con()
            && c.exists::<_, bool>(key).unwrap_or(false)
        {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no recovery in 20 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn redis_killed_frozen_and_restarted() {
    let Some(server) = tests::redis_server::own_server("the Redis fault tests") else {
        return;
    };
    let prefix = format!("faults{}:", std::process::id());
    cache_runtime::Config::builder()
        .redis_url(server.url.as_str())
        .key_prefix(prefix.as_str())
        .op_timeout(OP_TIMEOUT)
        .breaker_threshold(3)
        .breaker_cooldown(Duration::from_secs(1))
        .init()
        .expect("settings");
    let url = server.url.clone();
    let mut connect = || {
        redis::Client::open(url.as_str())
            .ok()?
            .get_connection()
            .ok()
    };

    // Warm: the hot key is in Redis.
    assert_eq!(hot(1), 2);
    assert_eq!(hot(1), 2);
    assert_eq!(LOADS.load(SeqCst), 1);

    // A. Redis killed mid-run.
    server.stop();
    let before = LOADS.load(SeqCst);
    let (latencies, total) = outage(300, || assert_eq!(hot(1), 2));
    let killed = Outage {
        latencies,
        loads: LOADS.load(SeqCst) - before,
        total,
    };
    killed.report("killed (sync)");
    killed.check();
    let errors = hot_cache().stats().store_errors;
    assert!(errors >= 3, "failures were not counted: {errors}");

    // B. Restarted on the same port: back to Redis without restarting the program.
    server.restart().expect("restart");
    let took = recovery(&mut connect, &format!("{prefix}hot:3"), || {
        assert_eq!(hot(3), 6)
    });
    eprintln!("restarted (sync): Redis used again after {took:.1?}");

    // C. Frozen with SIGSTOP: timeouts, not hangs.
    let pid = tests::redis_server::pid(&mut connect().expect("connected"));
    let kill = |sig: &str| tests::redis_server::signal(pid, sig);
    kill("-STOP");
    let before = LOADS.load(SeqCst);
    let (latencies, total) = outage(100, || assert_eq!(hot(1), 2));
    kill("-CONT");
    let frozen = Outage {
        latencies,
        loads: LOADS.load(SeqCst) - before,
        total,
    };
    frozen.report("frozen (sync)");
    frozen.check();
    let took = recovery(&mut connect, &format!("{prefix}hot:4"), || {
        assert_eq!(hot(4), 8)
    });
    eprintln!("thawed (sync): Redis used again after {took:.1?}");

    // D. The same cycle for an async function.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(hot_async(1)), 3);
    server.stop();
    let before = ASYNC_LOADS.load(SeqCst);
    let (latencies, total) = outage(300, || assert_eq!(rt.block_on(hot_async(1)), 3));
    let killed = Outage {
        latencies,
        loads: ASYNC_LOADS.load(SeqCst) - before,
        total,
    };
    killed.report("killed (async)");
    killed.check();
    server.restart().expect("restart");
    let took = recovery(&mut connect, &format!("{prefix}hot_async:5"), || {
        assert_eq!(rt.block_on(hot_async(5)), 15);
    });
    eprintln!("restarted (async): Redis used again after {took:.1?}");
    server.stop();
}
