//! The callers that wait for each load in flight in this process: the `waits` field of a
//! load's `cache.load` span.
//!
//! quick_cache's placeholders do not tell how many callers wait on them, so a caller about
//! to join a key's single-flight adds itself here to the load of that key that is running, if
//! there is one, and the load reads its count when its body ends. Loads are known by their
//! re-entry mark's 64-bit key hash (a collision can only mix two keys' counts). The count is
//! exact but for two races: a caller that arrives in the instant between a load's start and
//! its registration is not counted, and one that arrives as the load ends is counted and may
//! load next. Only misses and loads touch it, never a hit, and only while debug events are
//! enabled (a disabled `cache.load` span has no `waits` to record).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::reentry::Mark;

/// Loads in flight, by key hash: how many run and how many callers came to wait.
#[derive(Default)]
pub(crate) struct Waiters {
    flights: Mutex<HashMap<u64, Flight>>,
}

#[derive(Default)]
struct Flight {
    loads: u32,
    waits: u32,
}

/// One load's place in [`Waiters`], left when dropped.
pub(crate) struct Running<'a> {
    waiters: &'a Waiters,
    key: u64,
}

impl Waiters {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Flight>> {
        self.flights.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A load of `mark`'s key starts.
    pub(crate) fn start(&self, mark: Mark) -> Running<'_> {
        let key = mark.key_hash();
        self.lock().entry(key).or_default().loads += 1;
        Running { waiters: self, key }
    }

    /// A caller is about to wait for a load of `mark`'s key: counted if one is running.
    pub(crate) fn arrive(&self, mark: Mark) {
        if let Some(flight) = self.lock().get_mut(&mark.key_hash()) {
            flight.waits = flight.waits.saturating_add(1);
        }
    }
}

impl Running<'_> {
    /// The callers that came to wait since the load started.
    pub(crate) fn waits(&self) -> u32 {
        self.waiters.lock().get(&self.key).map_or(0, |f| f.waits)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut flights = self.waiters.lock();
        if let Some(flight) = flights.get_mut(&self.key) {
            flight.loads -= 1;
            if flight.loads == 0 {
                flights.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_count_only_while_a_load_of_their_key_runs() {
        let waiters = Waiters::default();
        let (a, b) = (Mark::new(&waiters, "a"), Mark::new(&waiters, "b"));
        waiters.arrive(a);
        let running = waiters.start(a);
        waiters.arrive(a);
        waiters.arrive(a);
        waiters.arrive(b);
        assert_eq!(running.waits(), 2);
        drop(running);
        assert!(waiters.lock().is_empty());
        assert_eq!(waiters.start(a).waits(), 0, "a new load starts from zero");
    }
}
