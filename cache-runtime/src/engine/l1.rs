//! The L1: the engine's local store in front of a shared store (`Tier::Tiered`), kept honest
//! by the store's change feed.
//!
//! - **When it answers.** Only while [`Store::serves_local_at`] says the feed cannot have
//!   missed a change (read by the hit path, on the coarse clock).
//! - **What it drops.** The feed names a changed key by the store's name of it
//!   ([`Store::feed_key`]); the index maps those names to L1 copies. A copy is noted in the
//!   index and inserted while the index is locked, with a fence stripe held, so a change that
//!   arrives meanwhile either fences the copy out or finds it in the index.
//! - **Its life.** Each copy lives at most `l1_ttl`; the shared store keeps the rest.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::function::Function;
use crate::registry::{self, Change, Listener};
use crate::stats::Counter;
use crate::store::Store;

use super::{Engine, Key};

/// The L1 copies of one cache, by the name the change feed gives their keys.
pub(super) struct Index<K> {
    keys: Mutex<HashMap<String, K>>,
}

impl<K> Index<K> {
    pub(super) fn new() -> Self {
        Index {
            keys: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, K>> {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<F: Function, S: Store<F>> Engine<F, S> {
    /// A cache was made: an L1 listens to its store's change feed.
    pub(super) fn created(&'static self) {
        if Self::L1 {
            registry::listen(S::FEED, self.name, self);
            self.store.follow();
        }
    }

    /// Whether the local store may answer now (only an L1 may not).
    #[inline]
    pub(super) fn serves_local() -> bool {
        !Self::L1 || S::serves_local_at(crate::clock::coarse_ms())
    }

    /// Keeps a copy of `key` in the local store: runs `insert`. An L1 first notes the copy in
    /// the index and inserts while the index is locked, so that the feed, which looks keys up
    /// under the same lock, always finds a copy it must drop; a key the feed has no name for is
    /// not kept. The index holds at most twice the L1's capacity ([`Engine::index_full`]):
    /// when it is full, keys whose
    /// copies the L1 evicted are pruned, and if it is still full no copy is kept. Called with
    /// a fence stripe held: it never takes the fence.
    pub(super) fn keep_local(&self, key: &Key<F, S>, insert: impl FnOnce()) {
        if !Self::L1 {
            insert();
            return;
        }
        let Some(name) = key.store.as_ref().and_then(S::feed_key) else {
            return;
        };
        let mut keys = self.l1.lock();
        if self.index_full(keys.len()) && !keys.contains_key(name) {
            keys.retain(|_, local| self.local.peek(local).is_some());
            if self.index_full(keys.len()) {
                return;
            }
        }
        keys.insert(name.to_owned(), key.local.clone());
        insert();
    }

    /// Whether an index of `len` names is full: twice the L1's capacity; with a byte budget,
    /// which holds as many copies as fit, twice the copies it holds, at least 1,024 (counted
    /// only then: counting reads every shard).
    fn index_full(&self, len: usize) -> bool {
        let twice = |n: u64| usize::try_from(n.saturating_mul(2)).unwrap_or(usize::MAX);
        match self.policy.max_bytes {
            None => len >= twice(self.policy.max_entries),
            Some(_) => {
                len >= twice(512.min(self.policy.max_entries))
                    && len
                        >= twice(
                            (self.local.len() as u64)
                                .max(512)
                                .min(self.policy.max_entries),
                        )
            }
        }
    }

    fn drop_key(&self, name: &str) {
        // First fence every copy in flight: one whose fence check comes later is not kept,
        // and one that passed it already holds its stripe until it is in the index, where the
        // lookup below finds it.
        self.fence_all();
        let local = self.l1.lock().remove(name);
        if let Some(local) = local {
            self.invalidate_local(&local);
        }
        self.stats.add(Counter::InvalidationReceived);
    }

    fn drop_key_unless(&self, name: &str, version: u64) {
        // Copies in flight (read before the write reported) are fenced either way.
        self.fence_all();
        let local = self.l1.lock().get(name).cloned();
        let current = local
            .and_then(|local| self.local.peek(&local))
            .is_some_and(|entry| entry.times.version == version);
        if !current {
            self.drop_key(name);
        }
    }

    fn drop_all(&self) {
        self.l1.lock().clear();
        self.clear_local();
        self.stats.add(Counter::InvalidationReceived);
    }
}

impl<F: Function, S: Store<F>> Listener for Engine<F, S> {
    fn change(&self, change: Change<'_>) {
        match change {
            Change::Key(name) => self.drop_key(name),
            Change::Written(name, version) => self.drop_key_unless(name, version),
            Change::All => self.drop_all(),
        }
    }
}
