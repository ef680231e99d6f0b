//! Invalidation fencing: a load that was in flight when its key was invalidated never
//! writes its (possibly stale) result back.
//!
//! Keys are split into stripes (the store's shards). Each stripe has a generation under a
//! mutex. A load takes a [`Ticket`] (the generation) before it runs the body; an invalidation
//! bumps the generation and removes the entry under the same mutex; the load publishes its
//! result only if the generation is still the one on its ticket, again under the mutex. So
//! either the write lands before the invalidation (which then removes it) or it sees the new
//! generation and is dropped. A stripe shared by other keys can drop a result that was not
//! stale: a spare miss, never a stale hit. Only misses and invalidations take the mutex.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// The generation of a stripe when a load started.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ticket {
    stripe: usize,
    generation: u64,
}

pub(crate) struct Fence {
    stripes: Box<[Mutex<u64>]>,
}

impl Fence {
    pub(crate) fn new(stripes: usize) -> Self {
        Fence {
            stripes: (0..stripes.max(1)).map(|_| Mutex::new(0)).collect(),
        }
    }

    fn lock(&self, stripe: usize) -> MutexGuard<'_, u64> {
        // The guarded sections cannot leave the generation half-written: poison is harmless.
        let i = stripe % self.stripes.len();
        self.stripes[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Called before a load runs the body.
    pub(crate) fn ticket(&self, stripe: usize) -> Ticket {
        Ticket {
            stripe,
            generation: *self.lock(stripe),
        }
    }

    /// Runs `write` if no invalidation of the ticket's stripe happened since the ticket was
    /// taken; returns whether it ran.
    pub(crate) fn publish(&self, ticket: Ticket, write: impl FnOnce()) -> bool {
        let generation = self.lock(ticket.stripe);
        if *generation != ticket.generation {
            return false;
        }
        write();
        true
    }

    /// Fences the loads in flight on `stripe`, then runs `remove`.
    pub(crate) fn invalidate(&self, stripe: usize, remove: impl FnOnce()) {
        let mut generation = self.lock(stripe);
        *generation = generation.wrapping_add(1);
        remove();
    }

    /// Fences every load in flight, then runs `remove`.
    pub(crate) fn invalidate_all(&self, remove: impl FnOnce()) {
        let mut guards: Vec<_> = (0..self.stripes.len()).map(|i| self.lock(i)).collect();
        for g in &mut guards {
            **g = g.wrapping_add(1);
        }
        remove();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalidation_after_the_ticket_drops_the_write() {
        let f = Fence::new(4);
        let t = f.ticket(1);
        f.invalidate(1, || {});
        assert!(!f.publish(t, || panic!("a fenced write ran")));
        let t = f.ticket(1);
        assert!(f.publish(t, || {}));
    }

    #[test]
    fn other_stripes_are_not_fenced_but_clear_fences_all() {
        let f = Fence::new(4);
        let t = f.ticket(2);
        f.invalidate(1, || {});
        assert!(f.publish(t, || {}));
        let t = f.ticket(3);
        f.invalidate_all(|| {});
        assert!(!f.publish(t, || {}));
    }
}
