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
