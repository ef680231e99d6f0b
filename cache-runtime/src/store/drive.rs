//! Driving a store's operation for a sync caller without a runtime: the default of
//! [`Store::block`](super::Store::block).

use std::future::Future;
use std::sync::Arc;
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

/// Runs `ops` concurrently; their outputs in order. (`Store::read_many`'s default.)
pub(crate) async fn join_all<Fut: Future + Unpin>(ops: Vec<Fut>) -> Vec<Fut::Output> {
    let mut ops: Vec<Option<Fut>> = ops.into_iter().map(Some).collect();
    let mut outputs: Vec<Option<Fut::Output>> = ops.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, output) in ops.iter_mut().zip(outputs.iter_mut()) {
            if let Some(op) = slot {
                match std::pin::Pin::new(op).poll(cx) {
                    Poll::Ready(out) => {
                        *output = Some(out);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        match pending {
            true => Poll::Pending,
            false => Poll::Ready(()),
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
