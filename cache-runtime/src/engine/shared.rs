//! The engine's calls to its store: each operation blocked on for a sync caller
//! ([`Store::block`]) or awaited by an async one, its errors counted and logged (at most one
//! line per cache every 5 s), and what it read or wrote copied to the fallback.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::clock;
use crate::entry::{Entry, Slot, Times};
use crate::function::Function;
use crate::invalidation::Invalidation;
use crate::stats::Counter;
use crate::store::{Leased, Published, Read, Start, Store, StoreError};
use crate::tags::EntryTags;

use super::fallback::Warm;
use super::{Engine, Key};

/// What a read of the store found, as a load sees it.
pub(super) enum Fetched<V> {
    /// An entry, in whatever phase.
    Hit(Entry<V>),
    Miss,
    /// An entry that cannot be used (counted): the load that follows must overwrite it.
    Unusable,
    /// The store did not answer (counted): the call goes to the fallback.
    Failed,
}

/// What asking the store for a lease gave, as a load sees it.
pub(super) enum Granted<L, V> {
    /// Load, then publish under this lease (`None`: no shared store, or it failed; load
    /// without one).
    Lease(Option<L>),
    /// Another process published meanwhile.
    Found(Entry<V>),
    /// A refresh found the lease held by another process's load: nothing to do.
    Busy,
}

/// At most one warning per cache every few seconds, with a count of those it held back.
pub(super) struct RateLimit {
    last_ms: AtomicU64,
    held_back: AtomicU64,
}

const WARN_EVERY_MS: u64 = 5_000;

impl RateLimit {
    pub(super) fn new() -> Self {
        RateLimit {
            last_ms: AtomicU64::new(0),
            held_back: AtomicU64::new(0),
        }
    }

    /// `Some(held back since the last one)` if a warning may be logged now.
    fn allow(&self) -> Option<u64> {
        let now = clock::now_ms();
        let last = self.last_ms.load(Relaxed);
        if (last == 0 || now >= last + WARN_EVERY_MS)
            && self
                .last_ms
                .compare_exchange(last, now.max(1), Relaxed, Relaxed)
                .is_ok()
        {
            return Some(self.held_back.swap(0, Relaxed));
        }
        self.held_back.fetch_add(1, Relaxed);
        None
    }
}

impl<F: Function, S: Store<F>> Engine<F, S> {
    /// Counts a store's failure, and logs it unless this cache logged one in the last 5 s or
    /// it is part of an outage the store logged itself; an operation not tried because the
    /// store is known to be unavailable is counted apart, and not logged.
    pub(super) fn store_error(&self, error: &StoreError) {
        if let StoreError::Unavailable = error {
            self.stats.add(Counter::StoreSkip);
            return;
        }
        self.stats.add(Counter::StoreError);
        let outage = self.store.health().is_some_and(|h| h.outage);
        if matches!(error, StoreError::Failed(_)) && outage {
            return;
        }
        if let Some(held_back) = self.warnings.allow() {
            tracing::warn!(
                cache = %self.name,
                backend = S::NAME,
                error = %error,
                similar_failures_not_logged = held_back,
                "cache-runtime: the store failed; the call goes on without it"
            );
        }
    }

    /// An invalidation's or clear's answer (`None`: the call has no key in the store).
    pub(super) fn invalidated(&self, done: Option<Result<(), StoreError>>) -> Invalidation {
        match done {
            None | Some(Ok(())) => Invalidation::Done,
            Some(Err(e)) => {
                self.store_error(&e);
                Invalidation::Pending
            }
        }
    }

    /// The entry of a slot the store holds for `key`, carrying the call's tags (their versions
    /// in the store were compared by the store; in process it carries the call's, so that a
    /// tag invalidated here since ends it too).
    fn entry_of(key: &Key<F, S>, slot: Slot<F::Value>, times: Times) -> Entry<F::Value> {
        Entry {
            slot,
            times,
            tags: EntryTags::of(&key.tags),
        }
    }

    /// Reads `key` from the store (sync).
    pub(super) fn fetch(&'static self, key: &Key<F, S>) -> Fetched<F::Value> {
        let Some(at) = &key.store else {
            return Fetched::Failed;
        };
        let warm = self.warm(key);
        let read = self.store.block(self.store.read(at));
        self.fetched(key, warm, read)
    }

    /// Reads `key` from the store (async).
    pub(super) async fn fetch_async(&'static self, key: &Key<F, S>) -> Fetched<F::Value> {
        let Some(at) = &key.store else {
            return Fetched::Failed;
        };
        let warm = self.warm(key);
        let read = self.store.read(at).await;
        self.fetched(key, warm, read)
    }

    fn fetched(
        &self,
        key: &Key<F, S>,
        warm: Warm<'_, F>,
        read: Result<Read<F::Value>, StoreError>,
    ) -> Fetched<F::Value> {
        match read {
            Ok(Read::Hit(slot, times)) => {
                let entry = Self::entry_of(key, slot, times);
                warm.read(&entry);
                Fetched::Hit(entry)
            }
            Ok(Read::Miss) => Fetched::Miss,
            Ok(Read::Unusable(why)) => {
                // Counted here, and overwritten by the load that follows.
                self.store_error(&StoreError::Data(format!("unusable entry: {why}")));
                Fetched::Unusable
            }
            Err(e) => {
                self.store_error(&e);
                Fetched::Failed
            }
        }
    }

    /// Takes the lease of a load of `key` (sync); in process, none is needed.
    pub(super) fn lease(
        &'static self,
        key: &Key<F, S>,
        start: Start,
    ) -> Granted<S::Lease, F::Value> {
        match (&key.store, Self::SHARED) {
            (Some(at), true) => self.granted(key, self.store.block(self.store.lease(at, start))),
            _ => Granted::Lease(None),
        }
    }

    /// Takes the lease of a load of `key` (async).
    pub(super) async fn lease_async(
        &'static self,
        key: &Key<F, S>,
        start: Start,
    ) -> Granted<S::Lease, F::Value> {
        match (&key.store, Self::SHARED) {
            (Some(at), true) => self.granted(key, self.store.lease(at, start).await),
            _ => Granted::Lease(None),
        }
    }

    /// A lease's answer: ours, or another process's value (counted as a wait by the load: a
    /// caller that waited for the lease and then took it runs the body, and is not a wait);
    /// after a failure (counted), no lease.
    fn granted(
        &self,
        key: &Key<F, S>,
        leased: Result<Leased<S::Lease, F::Value>, StoreError>,
    ) -> Granted<S::Lease, F::Value> {
        match leased {
            Ok(Leased::Lease(lease)) => Granted::Lease(Some(lease)),
            Ok(Leased::Found(slot, times)) => Granted::Found(Self::entry_of(key, slot, times)),
            Ok(Leased::Busy) => Granted::Busy,
            Err(e) => {
                self.store_error(&e);
                Granted::Lease(None)
            }
        }
    }

    /// Publishes a load's result under its lease (sync): whether the lease still held, and the
    /// version written. A failed write (counted) still shares the result in process.
    pub(super) fn publish(
        &'static self,
        key: &Key<F, S>,
        lease: S::Lease,
        stored: Option<(Slot<&F::Value>, Times)>,
    ) -> Published {
        let Some(at) = &key.store else {
            return Published::VALID;
        };
        let warm = self.warm(key);
        let published = self
            .store
            .block(self.store.publish(at, lease, stored.clone()));
        self.published(warm, published, stored)
    }

    /// The async twin of `publish`.
    pub(super) async fn publish_async(
        &'static self,
        key: &Key<F, S>,
        lease: S::Lease,
        stored: Option<(Slot<&F::Value>, Times)>,
    ) -> Published {
        let Some(at) = &key.store else {
            return Published::VALID;
        };
        let warm = self.warm(key);
        let published = self.store.publish(at, lease, stored.clone()).await;
        self.published(warm, published, stored)
    }

    fn published(
        &self,
        warm: Warm<'_, F>,
        published: Result<Published, StoreError>,
        stored: Option<(Slot<&F::Value>, Times)>,
    ) -> Published {
        match published {
            Ok(published) => {
                if published.valid
                    && let Some((slot, times)) = stored
                {
                    warm.published(slot, times);
                }
                published
            }
            Err(e) => {
                self.store_error(&e);
                Published::VALID
            }
        }
    }

    /// Writes a kept entry under a lease its load still holds (sync): whether it still held.
    pub(super) fn keep_shared(
        &'static self,
        key: &Key<F, S>,
        lease: &S::Lease,
        stored: (Slot<&F::Value>, Times),
    ) -> bool {
        match &key.store {
            Some(at) => self.kept(self.store.block(self.store.keep(at, lease, stored))),
            None => true,
        }
    }

    /// The async twin of `keep_shared`.
    pub(super) async fn keep_shared_async(
        &'static self,
        key: &Key<F, S>,
        lease: &S::Lease,
        stored: (Slot<&F::Value>, Times),
    ) -> bool {
        match &key.store {
            Some(at) => self.kept(self.store.keep(at, lease, stored).await),
            None => true,
        }
    }

    fn kept(&self, kept: Result<bool, StoreError>) -> bool {
        kept.unwrap_or_else(|e| {
            self.store_error(&e);
            true
        })
    }

    /// After `f_refresh` wrote `key`: with an L1, the store tells the other processes (sync).
    pub(super) fn announce(&'static self, key: &Key<F, S>) {
        if let (true, Some(at)) = (Self::L1, &key.store)
            && let Err(e) = self.store.block(self.store.announce(at))
        {
            self.store_error(&e);
        }
    }

    /// The async twin of `announce`.
    pub(super) async fn announce_async(&'static self, key: &Key<F, S>) {
        if let (true, Some(at)) = (Self::L1, &key.store)
            && let Err(e) = self.store.announce(at).await
        {
            self.store_error(&e);
        }
    }
}
