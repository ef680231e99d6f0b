//! Driving a store's operation for a sync caller without a runtime: the default of
//! [`Store::block`](super::Store::block).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

/// Wakes the thread that blocks on the operation.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `op` on the calling thread until it is done, parking between polls. An operation
/// that is done already (every operation of an in-process store) costs one poll.
pub(crate) fn block_on<F: Future>(op: F) -> F::Output {
    let mut op = std::pin::pin!(op);
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        match op.as_mut().poll(&mut cx) {
            Poll::Ready(out) => return out,
            Poll::Pending => thread::park(),
        }
    }
}

/// Futures run together on one task, each with a waker of its own, so that a wake-up polls
/// only the future it concerns (a batch of 1,000 calls would otherwise poll all 1,000 at every
/// reply).
pub(crate) struct Set<Fut> {
    futures: Vec<Option<Fut>>,
    woken: Arc<Woken>,
    wakers: Vec<Waker>,
    left: usize,
}

/// Which futures of a [`Set`] were woken, and the task that polls the set.
struct Woken {
    flags: Vec<AtomicBool>,
    task: Mutex<Option<Waker>>,
}

/// The waker of the future `i` of a [`Set`].
struct One {
    woken: Arc<Woken>,
    i: usize,
}

impl Wake for One {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.flags[self.i].store(true, Ordering::Release);
        let task = self
            .woken
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(task) = task.as_ref() {
            task.wake_by_ref();
        }
    }
}

impl<Fut: Future + Unpin> Set<Fut> {
    pub(crate) fn new(futures: Vec<Fut>) -> Self {
        let n = futures.len();
        let woken = Arc::new(Woken {
            flags: (0..n).map(|_| AtomicBool::new(true)).collect(),
            task: Mutex::new(None),
        });
        let wakers = (0..n)
            .map(|i| {
                let woken = Arc::clone(&woken);
                Waker::from(Arc::new(One { woken, i }))
            })
            .collect();
        Set {
            futures: futures.into_iter().map(Some).collect(),
            woken,
            wakers,
            left: n,
        }
    }

    /// How many futures have not finished.
    pub(crate) fn left(&self) -> usize {
        self.left
    }

    /// The futures to poll now (woken since their last poll, and not finished); `cx`'s task is
    /// the one to wake next.
    pub(crate) fn woken(&mut self, cx: &Context<'_>) -> Vec<usize> {
        {
            let mut task = self
                .woken
                .task
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if !task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
        }
        (0..self.futures.len())
            .filter(|&i| {
                self.futures[i].is_some() && self.woken.flags[i].swap(false, Ordering::AcqRel)
            })
            .collect()
    }

    /// Polls the future `i` with its own waker; its output once it finishes.
    pub(crate) fn poll_at(&mut self, i: usize) -> Option<Fut::Output> {
        let fut = self.futures[i].as_mut()?;
        let mut cx = Context::from_waker(&self.wakers[i]);
        match std::pin::Pin::new(fut).poll(&mut cx) {
            Poll::Ready(out) => {
                self.futures[i] = None;
                self.left -= 1;
                Some(out)
            }
            Poll::Pending => None,
        }
    }
}

/// Runs `ops` concurrently; their outputs in order. (`Store::read_many`'s default.)
pub(crate) async fn join_all<Fut: Future + Unpin>(ops: Vec<Fut>) -> Vec<Fut::Output> {
    let mut outputs: Vec<Option<Fut::Output>> = ops.iter().map(|_| None).collect();
    let mut set = Set::new(ops);
    std::future::poll_fn(|cx| {
        for i in set.woken(cx) {
            if let Some(out) = set.poll_at(i) {
                outputs[i] = Some(out);
            }
        }
        match set.left() {
            0 => Poll::Ready(()),
            _ => Poll::Pending,
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
