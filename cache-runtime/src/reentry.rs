//! Re-entry: a call never waits for a load that its own thread (sync) or task (async) is
//! running.
//!
//! A body that calls its own cached function with the same key (directly, or through another
//! cached function) would otherwise wait on its own placeholder or Redis lease until
//! `lock_timeout`. So every load marks `(cache, key)` as in flight *on the caller's thread
//! while the body runs* (for an async body: during each poll of it, which is when a nested
//! call on the same task starts), and a miss that finds its own mark runs the body at once,
//! without single-flight and without storing (the outer load stores). The key is compared by
//! a 64-bit hash: a collision costs a nested call its caching, never a wrong value.

use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::hash::{BuildHasher, Hash};
use std::pin::pin;
use std::sync::LazyLock;

thread_local! {
    static LOADS: RefCell<Vec<Mark>> = const { RefCell::new(Vec::new()) };
}

static HASHER: LazyLock<quick_cache::DefaultHashBuilder> = LazyLock::new(Default::default);

/// One load in flight: the cache (its address) and the key's hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mark {
    cache: usize,
    key: u64,
}

impl Mark {
    pub(crate) fn new<C, K: Hash + ?Sized>(cache: &C, key: &K) -> Self {
        Mark {
            cache: std::ptr::from_ref(cache).addr(),
            key: HASHER.hash_one(key),
        }
    }

    /// The key's 64-bit hash.
    pub(crate) fn key_hash(self) -> u64 {
        self.key
    }

    /// Whether the calling thread is running this load (or a task polled on it is).
    #[inline]
    pub(crate) fn is_running(self) -> bool {
        LOADS.with_borrow(|loads| !loads.is_empty() && loads.contains(&self))
    }

    /// Runs `body` with this load marked on the thread.
    pub(crate) fn run<R>(self, body: impl FnOnce() -> R) -> R {
        let _marked = Marked::push(self);
        body()
    }

    /// Polls `body` with this load marked on the thread during each poll.
    pub(crate) async fn run_async<F: Future>(self, body: F) -> F::Output {
        let mut body = pin!(body);
        poll_fn(|cx| {
            let _marked = Marked::push(self);
            body.as_mut().poll(cx)
        })
        .await
    }
}

/// Unmarks on drop, also when the body panics.
struct Marked(Mark);

impl Marked {
    fn push(mark: Mark) -> Self {
        LOADS.with_borrow_mut(|loads| loads.push(mark));
        Marked(mark)
    }
}

impl Drop for Marked {
    fn drop(&mut self) {
        LOADS.with_borrow_mut(|loads| {
            if let Some(at) = loads.iter().rposition(|m| *m == self.0) {
                loads.remove(at);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_hold_while_the_body_runs_and_only_for_their_key() {
        let cache = 0u8;
        let (a, b) = (Mark::new(&cache, "a"), Mark::new(&cache, "b"));
        assert!(!a.is_running());
        a.run(|| {
            assert!(a.is_running());
            assert!(!b.is_running());
            assert!(!Mark::new(&1u8, "a").is_running(), "another cache");
        });
        assert!(!a.is_running());
    }

    #[test]
    fn a_panicking_body_unmarks() {
        let a = Mark::new(&0u8, &1u64);
        let caught = std::panic::catch_unwind(|| a.run(|| panic!("boom")));
        assert!(caught.is_err());
        assert!(!a.is_running());
    }
}
