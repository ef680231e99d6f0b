//! Helpers shared by the behaviour tests.
#![allow(dead_code, reason = "each test file uses some of these")]

use std::sync::mpsc;
use std::time::{Duration, Instant};

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
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(PATIENCE) {
        Ok(v) => v,
        Err(e) => panic!("the test body did not finish in {PATIENCE:?}: {e}"),
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
