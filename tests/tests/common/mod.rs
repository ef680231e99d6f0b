//! Helpers shared by the behaviour tests.
#![allow(dead_code, reason = "each test file uses some of these")]

use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Whether this build's default backend can run: always in process; with the `redis` feature,
/// once the harness has a server (else the test returns, and the harness has said why, or
/// failed the run under `CACHE_REQUIRE_REDIS=1`).
pub(crate) fn backend_ready() -> bool {
    #[cfg(feature = "redis")]
    {
        let prefix = format!("t{}:", std::process::id());
        tests::redis_server::setup(&prefix).is_some()
    }
    #[cfg(not(feature = "redis"))]
    {
        true
    }
}

/// The backends a `Cache` test runs on in this build: memory, and with the `redis` feature
/// (and a server) Redis and tiered.
pub(crate) fn cache_backends() -> Vec<cache_runtime::Backend> {
    #[allow(unused_mut)]
    let mut all = vec![cache_runtime::Backend::Memory];
    #[cfg(feature = "redis")]
    if backend_ready() {
        all.extend([
            cache_runtime::Backend::Redis,
            cache_runtime::Backend::Tiered,
        ]);
    }
    all
}

/// How long any wait in these tests may take before the test fails instead of hanging.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

/// Blocks until `cond` holds, polling every millisecond; panics after [`PATIENCE`].
pub(crate) fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let give_up = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < give_up, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The async twin of [`wait_until`].
pub(crate) async fn wait_until_async(what: &str, mut cond: impl FnMut() -> bool) {
    let give_up = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < give_up, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Runs `f` on its own thread and returns its result, failing the test if it takes longer
/// than [`PATIENCE`] (a hang becomes a failure, not a stuck test run).
pub(crate) fn within<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    within_for(PATIENCE, f)
}

/// [`within`] with a limit of its own, for long bodies (1,000 trials on a cluster).
pub(crate) fn within_for<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(e) => panic!("the test body did not finish in {limit:?}: {e}"),
    }
}

/// A gate a loader can block on until the test opens it.
pub(crate) struct Gate {
    started_tx: mpsc::SyncSender<()>,
    started_rx: std::sync::Mutex<mpsc::Receiver<()>>,
    open_tx: mpsc::SyncSender<()>,
    open_rx: std::sync::Mutex<mpsc::Receiver<()>>,
}

impl Gate {
    pub(crate) fn new() -> Self {
        let (started_tx, started_rx) = mpsc::sync_channel(16);
        let (open_tx, open_rx) = mpsc::sync_channel(16);
        Gate {
            started_tx,
            started_rx: std::sync::Mutex::new(started_rx),
            open_tx,
            open_rx: std::sync::Mutex::new(open_rx),
        }
    }

    /// Called by the loader: says it started, then blocks until the gate opens.
    pub(crate) fn arrive_and_wait(&self) {
        self.started_tx.send(()).expect("gate dropped");
        self.open_rx
            .lock()
            .expect("gate lock")
            .recv_timeout(PATIENCE)
            .expect("the gate never opened");
    }

    /// Called by the test: blocks until a loader has arrived.
    pub(crate) fn wait_for_arrival(&self) {
        self.started_rx
            .lock()
            .expect("gate lock")
            .recv_timeout(PATIENCE)
            .expect("no loader arrived");
    }

    /// Lets one waiting loader go on.
    pub(crate) fn open(&self) {
        self.open_tx.send(()).expect("gate dropped");
    }
}

/// The "database" of an invalidation storm: one version per key.
pub(crate) type StormDb = [std::sync::atomic::AtomicU32; 4];

/// Reads a version, then takes a moment, so that invalidations land while loads are in flight.
pub(crate) fn slow_read(db: &StormDb, key: usize) -> u32 {
    let version = db[key].load(std::sync::atomic::Ordering::SeqCst);
    for _ in 0..20 {
        std::thread::yield_now();
    }
    version
}

/// Six threads read four keys (and refresh them now and then) while a writer bumps a key's
/// version in `db` and invalidates it, `rounds` times. Once everyone is done, every key must
/// read its last version: no load that read an older version may have stayed in the cache
/// after the invalidation that followed it.
pub(crate) fn storm(
    db: &'static StormDb,
    rounds: usize,
    read: fn(usize) -> u32,
    invalidate: fn(usize) -> cache_runtime::Invalidation,
    refresh: fn(usize) -> u32,
) {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for r in 0..6 {
            let stop = &stop;
            s.spawn(move || {
                let mut i = r;
                while !stop.load(SeqCst) {
                    std::hint::black_box(read(i % 4));
                    if i % 7 == 0 {
                        std::hint::black_box(refresh(i % 4));
                    }
                    i += 1;
                }
            });
        }
        for round in 0..rounds {
            let key = round % 4;
            db[key].fetch_add(1, SeqCst);
            assert!(
                invalidate(key).is_done(),
                "Redis is up: every invalidation lands"
            );
        }
        stop.store(true, SeqCst);
    });
    for (key, version) in db.iter().enumerate() {
        assert_eq!(
            read(key),
            version.load(SeqCst),
            "key {key} kept a stale value"
        );
    }
}

/// A two-worker tokio runtime with every driver, for tests of async cached functions.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// A fencing race (issue 13): a tagged load reads the "database" and is held in flight while
/// the test changes the source and invalidates the tag. Static in a test (`LazyLock`), used by
/// one test function only.
pub(crate) struct Race {
    /// The "database": a version the test bumps, read by every loader.
    version: std::sync::atomic::AtomicU32,
    /// `key + 1` of the trial whose first load is held at the gate; 0 for none.
    hold: std::sync::atomic::AtomicU32,
    gate: Gate,
}

impl Race {
    pub(crate) fn new() -> Self {
        Race {
            version: std::sync::atomic::AtomicU32::new(0),
            hold: std::sync::atomic::AtomicU32::new(0),
            gate: Gate::new(),
        }
    }

    /// The loader's side: reads the source, then waits at the gate if it is the load the
    /// trial holds.
    pub(crate) fn load(&self, key: u32) -> u32 {
        use std::sync::atomic::Ordering::SeqCst;
        let version = self.version.load(SeqCst);
        if self
            .hold
            .compare_exchange(key + 1, 0, SeqCst, SeqCst)
            .is_ok()
        {
            self.gate.arrive_and_wait();
        }
        version
    }

    /// `n` trials on keys `0..n`: a load of `call(key)` reads the old version and is held in
    /// flight; the source changes and `invalidate` drops the tag; a second caller then asks (it
    /// joins the flight, or loads); the load is let go. The load's own caller gets the old
    /// version (it asked first), but nothing that asked after the invalidation returned may:
    /// not the second caller, not a later call. Returns how many trials served a stale value.
    pub(crate) fn trials(&'static self, n: u32, call: fn(u32) -> u32, invalidate: fn()) -> u32 {
        use std::sync::atomic::Ordering::SeqCst;
        // Each trial waits at most PATIENCE for a step; the whole gets a minute per 100 trials.
        within_for(Duration::from_secs(60) * n.div_ceil(100), move || {
            let mut stale = 0;
            for trial in 0..n {
                let old = self.version.load(SeqCst);
                self.hold.store(trial + 1, SeqCst);
                let loader = std::thread::spawn(move || call(trial));
                self.gate.wait_for_arrival(); // the load read `old` and is in flight
                self.version.store(old + 1, SeqCst);
                invalidate();
                let second = std::thread::spawn(move || call(trial));
                self.gate.open();
                assert_eq!(loader.join().expect("no panic"), old);
                let second = second.join().expect("no panic");
                let later = call(trial);
                if second != old + 1 || later != old + 1 {
                    stale += 1;
                }
            }
            stale
        })
    }

    /// [`Race::trials`] for an async cached function, on a runtime of its own: the loader and
    /// the second caller are tasks (the held load blocks its worker with `block_in_place`).
    pub(crate) fn trials_async<F>(
        &'static self,
        n: u32,
        call: fn(u32) -> F,
        invalidate: fn(),
    ) -> u32
    where
        F: std::future::Future<Output = u32> + Send + 'static,
    {
        use std::sync::atomic::Ordering::SeqCst;
        // Each trial waits at most PATIENCE for a step; the whole gets a minute per 100 trials.
        within_for(Duration::from_secs(60) * n.div_ceil(100), move || {
            let rt = runtime();
            let mut stale = 0;
            for trial in 0..n {
                let old = self.version.load(SeqCst);
                self.hold.store(trial + 1, SeqCst);
                let loader = rt.spawn(call(trial));
                self.gate.wait_for_arrival();
                self.version.store(old + 1, SeqCst);
                invalidate();
                let second = rt.spawn(call(trial));
                self.gate.open();
                let (first, second, later) = rt.block_on(async move {
                    let first = loader.await.expect("no panic");
                    let second = second.await.expect("no panic");
                    (first, second, call(trial).await)
                });
                assert_eq!(first, old);
                if second != old + 1 || later != old + 1 {
                    stale += 1;
                }
            }
            stale
        })
    }

    /// [`Race::load`] for an async body: the wait blocks its worker in place.
    pub(crate) fn load_blocking_in_place(&self, key: u32) -> u32 {
        tokio::task::block_in_place(|| self.load(key))
    }
}
