//! Telling a batch load that a call waits for another caller's load.
//!
//! A batch ([`Cache::get_many_or_load`](crate::Cache::get_many_or_load)) drives the calls of
//! its missing keys together and runs its loader once every one of them either leads its key,
//! is answered, or waits for another caller's load of its key (in this process or another).
//! It tells the last kind apart by this flag, which a call sets while it waits, on the thread
//! that polls it: so a batch never holds its own keys while it waits for another's (two
//! batches over the same keys never wait for each other in a circle).

use std::cell::Cell;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;

thread_local! {
    static WAITING: Cell<bool> = const { Cell::new(false) };
}

/// Awaits `wait`, a wait for another caller's load of the same key (its lease held by another
/// process, say): each poll that leaves it pending says so to a batch load that polls this
/// call. A store that waits for another process's lease (`Start::Wait`) wraps the wait in
/// it; without, a batch load waits for such a key before it loads its own.
pub async fn wait_for_another<T>(wait: impl Future<Output = T>) -> T {
    let mut wait = pin!(wait);
    poll_fn(|cx| match wait.as_mut().poll(cx) {
        Poll::Ready(out) => Poll::Ready(out),
        Poll::Pending => {
            note_waiting();
            Poll::Pending
        }
    })
    .await
}

/// Says that the call being polled waits for another caller's load (it is left pending).
pub(crate) fn note_waiting() {
    WAITING.with(|w| w.set(true));
}

/// Runs `poll` (one poll of a call) and says whether the call is left waiting for another
/// caller's load.
pub(crate) fn watching<R>(poll: impl FnOnce() -> R) -> (R, bool) {
    let before = WAITING.with(|w| w.replace(false));
    let out = poll();
    let waiting = WAITING.with(|w| w.replace(before));
    (out, waiting)
}
