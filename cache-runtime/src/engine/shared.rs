//! The engine's calls to its store: each operation blocked on for a sync caller
//! ([`Store::block`]) or awaited by an async one, its errors counted and logged (at most one
//! line per cache every 5 s), and what it read or wrote copied to the fallback.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll, Waker};

use crate::clock;
use crate::entry::{Entry, Slot, Times};
use crate::function::Function;
use crate::invalidation::Invalidation;
use crate::stats::Counter;
use crate::store::{Leased, Op, Published, Read, Start, Store, StoreError};
use crate::tags::EntryTags;

use super::{Engine, Key};
use crate::stopwatch::Stopwatch;

/// How a call waits for its store's operations: written once, each step that asks the store
/// is an `async fn` generic over this; a sync caller runs it with [`Blocking`] (each operation
/// blocked on by [`Store::block`], so the step is done at its first poll: [`now`]), an async
/// caller awaits it with [`Awaiting`].
pub(super) trait Wait: Copy + Send + Sync + 'static {
    /// Waits for `op` of `store`.
    fn wait<F: Function, S: Store<F>, T: Send + 'static>(
        self,
        store: &'static S,
        op: Op<T>,
    ) -> impl Future<Output = Result<T, StoreError>> + Send;
}

/// A sync caller: the thread blocks on each operation.
#[derive(Clone, Copy)]
pub(super) struct Blocking;

/// An async caller: each operation is polled on its task.
#[derive(Clone, Copy)]
pub(super) struct Awaiting;

impl Wait for Blocking {
    fn wait<F: Function, S: Store<F>, T: Send + 'static>(
        self,
        store: &'static S,
        op: Op<T>,
    ) -> impl Future<Output = Result<T, StoreError>> + Send {
        std::future::ready(store.block(op))
    }
}

impl Wait for Awaiting {
    fn wait<F: Function, S: Store<F>, T: Send + 'static>(
        self,
        _: &'static S,
        op: Op<T>,
    ) -> impl Future<Output = Result<T, StoreError>> + Send {
        op
    }
}

/// The output of a step run with [`Blocking`]: done at its first poll (every wait in it is
/// ready). Should one not be, the thread blocks until it is.
pub(super) fn now<T>(step: impl Future<Output = T>) -> T {
    let mut step = std::pin::pin!(step);
    let mut cx = Context::from_waker(Waker::noop());
    match step.as_mut().poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => crate::store::drive::block_on(step),
    }
}

/// What a read of the store found, as a load sees it.
pub(crate) enum Fetched<V> {
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
    every_ms: u64,
}

const WARN_EVERY_MS: u64 = 5_000;

impl RateLimit {
    /// At most one warning every 5 s.
    pub(super) fn new() -> Self {
        Self::every(WARN_EVERY_MS)
    }

    /// At most one warning every `every_ms`.
    pub(super) fn every(every_ms: u64) -> Self {
        RateLimit {
            last_ms: AtomicU64::new(0),
            held_back: AtomicU64::new(0),
            every_ms,
        }
    }

    /// `Some(held back since the last one)` if a warning may be logged now.
    pub(super) fn allow(&self) -> Option<u64> {
        let now = clock::now_ms();
        let last = self.last_ms.load(Relaxed);
        if (last == 0 || now >= last + self.every_ms)
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

    /// Adds the time since `started` to the time spent reading the store.
    fn took(&self, started: Stopwatch) {
        self.stats.add_store_time(started.elapsed_us());
    }

    /// Reads `key` from the store (sync).
    pub(super) fn fetch(&'static self, key: &Key<F, S>) -> Fetched<F::Value> {
        now(self.fetch_with(key, Blocking))
    }

    /// Reads `key` from the store (async).
    pub(super) async fn fetch_async(&'static self, key: &Key<F, S>) -> Fetched<F::Value> {
        self.fetch_with(key, Awaiting).await
    }

    async fn fetch_with(&'static self, key: &Key<F, S>, wait: impl Wait) -> Fetched<F::Value> {
        let Some(at) = &key.store else {
            return Fetched::Failed;
        };
        // The fallback's ticket, before the read: an invalidation since keeps its copy out.
        let warm = self.warm(key);
        let started = Stopwatch::start();
        let read = wait.wait(&self.store, self.store.read(at)).await;
        self.took(started);
        self.fetched(key, warm, read)
    }

    /// Reads every key of a batch from the store at once (`Store::read_many`).
    pub(super) async fn fetch_many_async(
        &'static self,
        keys: &[Key<F, S>],
    ) -> Vec<Fetched<F::Value>> {
        let at: Vec<S::Key> = keys.iter().filter_map(|k| k.store.clone()).collect();
        let warms: Vec<_> = keys.iter().map(|key| self.warm(key)).collect();
        let started = Stopwatch::start();
        let read = self.store.read_many(&at).await;
        self.took(started);
        let mut reads = match read {
            Ok(reads) if reads.len() == at.len() => reads.into_iter(),
            Ok(_) => {
                let e = StoreError::Failed("read_many answered another number of keys".into());
                self.store_error(&e);
                Vec::new().into_iter()
            }
            Err(e) => {
                self.store_error(&e);
                Vec::new().into_iter()
            }
        };
        keys.iter()
            .zip(warms)
            // Only a key with a store key has a read (`at` has no others).
            .map(
                |(key, warm)| match key.store.as_ref().and_then(|_| reads.next()) {
                    Some(read) => self.fetched(key, warm, read),
                    None => Fetched::Failed,
                },
            )
            .collect()
    }

    /// What a read of `key` from the store found: its errors counted, an entry made local and
    /// copied into the fallback (`warm`, its ticket taken before the read).
    fn fetched(
        &self,
        key: &Key<F, S>,
        warm: super::fallback::Warm<'_, F>,
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
        if !Self::SHARED {
            return Granted::Lease(None);
        }
        now(self.lease_with(key, start, Blocking))
    }

    /// Takes the lease of a load of `key` (async).
    pub(super) async fn lease_async(
        &'static self,
        key: &Key<F, S>,
        start: Start,
    ) -> Granted<S::Lease, F::Value> {
        self.lease_with(key, start, Awaiting).await
    }

    /// A lease's answer: ours, or another process's value (counted as a wait by the load: a
    /// caller that waited for the lease and then took it runs the body, and is not a wait);
    /// after a failure (counted), no lease.
    async fn lease_with(
        &'static self,
        key: &Key<F, S>,
        start: Start,
        wait: impl Wait,
    ) -> Granted<S::Lease, F::Value> {
        let (Some(at), true) = (&key.store, Self::SHARED) else {
            return Granted::Lease(None);
        };
        match wait.wait(&self.store, self.store.lease(at, start)).await {
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
        now(self.publish_with(key, lease, stored, Blocking))
    }

    /// The async twin of `publish`.
    pub(super) async fn publish_async(
        &'static self,
        key: &Key<F, S>,
        lease: S::Lease,
        stored: Option<(Slot<&F::Value>, Times)>,
    ) -> Published {
        self.publish_with(key, lease, stored, Awaiting).await
    }

    pub(super) async fn publish_with(
        &'static self,
        key: &Key<F, S>,
        lease: S::Lease,
        stored: Option<(Slot<&F::Value>, Times)>,
        wait: impl Wait,
    ) -> Published {
        let Some(at) = &key.store else {
            return Published::VALID;
        };
        let warm = self.warm(key);
        let op = self.store.publish(at, lease, stored.clone());
        match wait.wait(&self.store, op).await {
            Ok(published) => {
                if published.valid
                    && let Some((slot, times)) = stored
                {
                    warm.published(slot, times, published.version);
                }
                published
            }
            Err(e) => {
                self.store_error(&e);
                Published::VALID
            }
        }
    }

    /// Writes a kept entry under a lease its load still holds: whether it still held.
    pub(super) async fn keep_shared_with(
        &'static self,
        key: &Key<F, S>,
        lease: &S::Lease,
        stored: (Slot<&F::Value>, Times),
        wait: impl Wait,
    ) -> bool {
        let Some(at) = &key.store else {
            return true;
        };
        let kept = wait.wait(&self.store, self.store.keep(at, lease, stored));
        kept.await.unwrap_or_else(|e| {
            self.store_error(&e);
            true
        })
    }

    /// After `f_refresh` wrote `key`: with an L1, the store tells the other processes (sync).
    pub(super) fn announce(&'static self, key: &Key<F, S>) {
        now(self.announce_with(key, Blocking));
    }

    /// The async twin of `announce`.
    pub(super) async fn announce_async(&'static self, key: &Key<F, S>) {
        self.announce_with(key, Awaiting).await;
    }

    async fn announce_with(&'static self, key: &Key<F, S>, wait: impl Wait) {
        if let (true, Some(at)) = (Self::L1, &key.store)
            && let Err(e) = wait.wait(&self.store, self.store.announce(at)).await
        {
            self.store_error(&e);
        }
    }
}
