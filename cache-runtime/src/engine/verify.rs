//! `verify`: a fraction of hits runs the load again off the caller's path and compares the
//! fresh result with what the hit served, to measure how often (and from what age) the cache
//! serves values that are no longer right (a missed invalidation, a TTL longer than the data's
//! change rate).
//!
//! **Picking.** Every n-th hit of each thread's counter stripe (`n = round(1 / verify)`,
//! `stats.rs`): no random draw, and no write shared with other threads for the first 32
//! threads (those beyond share stripes, and count atomically). The hit path does not
//! answer a picked hit: it marks it ([`pick`]) and the miss path that follows on the same
//! thread answers it (counted as a hit) and hands the body to the verification. A hit read
//! from a shared store is picked by the miss path itself.
//!
//! **Running.** Never on the caller's path and never written to the cache: a sync body on the
//! library's verification threads (`cache-runtime-verify`, two, behind a queue of 4,096,
//! drained every millisecond while busy, so that queuing makes no system call), an
//! async body as a task on the caller's runtime; at most [`IN_FLIGHT`] per cache at once. A
//! hit that is not verified (no room, the fresh load fails, panics or ends more than
//! 250 ms after the hit, the values cannot be compared, an invalidation overtook it) is
//! counted in `verify_skipped` and changes nothing.
//!
//! **Comparing.** By `PartialEq` in process; by the encoded bytes for a cache whose values
//! are serialized (Redis, tiered). A null matches a null. A verification that an
//! invalidation in this process overtook (of the key's fence shard, a clear, or one of the
//! entry's tags), between the hit and the compare, is skipped: the value was right when
//! served.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{SyncSender, TryRecvError, sync_channel};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use crate::body::{AsyncBody, CatchUnwind, Panic, SendFuture, SyncBody};
use crate::clock;
use crate::entry::{Entry, Slot};
use crate::fence::Ticket;
use crate::function::Function;
use crate::shape::Shape;
use crate::stats::Counter;
use crate::store::Store;

use super::shared::RateLimit;
use super::{Engine, Key};

/// How `verify` compares a served value with a fresh one: `PartialEq`, or the encoded bytes;
/// `None` when they cannot be compared (a value that does not encode).
pub(crate) type SameFn<V> = fn(&V, &V) -> Option<bool>;

/// Verifications of one cache running or queued at once, at most.
const IN_FLIGHT: u32 = 64;
/// Sync verifications waiting for a verification thread, at most (every cache together).
const QUEUE: usize = 4096;
/// An idle verification thread looks at its queue every millisecond this many times before
/// it blocks on it: while hits are picked, queuing one makes no system call.
const IDLE_POLLS: u32 = 1_000;
/// Verification threads.
const WORKERS: usize = 2;
/// A cache logs a mismatch at most this often.
const LOG_EVERY_MS: u64 = 60_000;
/// A verification whose fresh load ended later than this after the hit is skipped: the
/// source may have changed meanwhile, after a hit that was right.
const MAX_DELAY_MS: u64 = 250;

thread_local! {
    /// Set by the hit path for a hit `verify` picked, to the address of its engine; taken by
    /// that engine's miss path, which follows on the same thread (before any await). 0: none.
    static PICKED: Cell<usize> = const { Cell::new(0) };
}

/// Marks that the hit path of the engine at `engine` picked this call's hit.
#[cold]
pub(crate) fn pick(engine: usize) {
    PICKED.set(engine);
}

/// Whether the hit path of the engine at `engine` picked this call's hit; clears any mark
/// (one left by a call that panicked before its miss path, or by another engine's call, is
/// stale).
pub(crate) fn take_picked(engine: usize) -> bool {
    PICKED.replace(0) == engine
}

/// One cache's verification settings and state.
pub(crate) struct Verifier<V> {
    /// Every how many hits one is verified; 0 for none.
    pub(super) every: u64,
    same: Option<SameFn<V>>,
    in_flight: AtomicU32,
    log: RateLimit,
}

impl<V> Verifier<V> {
    /// `verify` (a fraction of hits in `0.0..=1.0`) compared by `same`.
    pub(super) fn new(verify: f64, same: Option<SameFn<V>>) -> Self {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "≥ 1"
        )]
        let every = match same {
            Some(_) if verify > 0.0 => (1.0 / verify.min(1.0)).round().max(1.0) as u64,
            _ => 0,
        };
        Verifier {
            every,
            same,
            in_flight: AtomicU32::new(0),
            log: RateLimit::every(LOG_EVERY_MS),
        }
    }
}

impl<V> Verifier<V> {
    /// Whether another verification may start now (a hint: [`Engine::admit`] decides).
    pub(super) fn has_room(&self) -> bool {
        self.in_flight.load(Relaxed) < IN_FLIGHT
    }
}

/// What a verification compares the fresh result with: the served entry and its age. It
/// holds one of its cache's places in flight until dropped, and a verification dropped
/// before it was counted (its body could not leave, the queue was full, its task was
/// dropped, a panic) is counted as skipped then: every picked hit is counted once.
struct Served<V: 'static> {
    entry: Entry<V>,
    age_ms: u64,
    /// When the hit was served (cache clock, ms).
    served_ms: u64,
    /// Taken when the hit was served: a verification that an invalidation in this process
    /// overtook (of the key's fence shard, or a clear) compares a value that was right when
    /// served with one written since, and proves nothing. (The entry's tags say the same of
    /// tag invalidations.)
    ticket: Ticket,
    key: Option<String>,
    in_flight: &'static AtomicU32,
    skipped: &'static AtomicU64,
    counted: bool,
}

impl<V> Drop for Served<V> {
    fn drop(&mut self) {
        if !self.counted {
            self.skipped.fetch_add(1, Relaxed);
        }
        self.in_flight.fetch_sub(1, Relaxed);
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// The queue of the verification threads, started at the first sync verification; `None`
/// if none could be started.
static QUEUE_IN: OnceLock<Option<SyncSender<Job>>> = OnceLock::new();

/// Queues `job` for a verification thread: false if the queue is full (or there is none).
fn submit(job: Job) -> bool {
    let Some(queue) = QUEUE_IN.get_or_init(start_workers) else {
        return false;
    };
    queue.try_send(job).is_ok()
}

fn start_workers() -> Option<SyncSender<Job>> {
    let (give, take) = sync_channel::<Job>(QUEUE);
    let take = Arc::new(Mutex::new(take));
    let mut started = false;
    for _ in 0..WORKERS {
        let take = Arc::clone(&take);
        let worker = move || {
            let mut idle = 0;
            loop {
                let next = take
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .try_recv();
                let job = match next {
                    Ok(job) => job,
                    Err(TryRecvError::Disconnected) => return,
                    Err(TryRecvError::Empty) if idle < IDLE_POLLS => {
                        idle += 1;
                        std::thread::sleep(Duration::from_millis(1));
                        continue;
                    }
                    Err(TryRecvError::Empty) => {
                        let next = take.lock().unwrap_or_else(PoisonError::into_inner).recv();
                        let Ok(job) = next else { return };
                        job
                    }
                };
                idle = 0;
                // A panic in a user's `PartialEq` or `Serialize` ends that job only.
                let _ = catch_unwind(AssertUnwindSafe(job));
            }
        };
        let thread = std::thread::Builder::new().name("cache-runtime-verify".into());
        started |= thread.spawn(worker).is_ok();
    }
    started.then_some(give)
}

impl<F: Function, S: Store<F>> Engine<F, S> {
    /// Verifies the hit that answered with `entry` (sync): its load runs on a verification
    /// thread.
    pub(super) fn verify(
        &'static self,
        key: &Key<F, S>,
        entry: &Entry<F::Value>,
        body: impl SyncBody<F::Output>,
    ) {
        let Some(served) = self.admit(key, entry) else {
            return;
        };
        // Dropped unverified (counted as skipped by `Served`) if the body cannot leave, or
        // the queue is full.
        let Ok(body) = body.boxed() else {
            return;
        };
        let job = move || {
            let fresh = catch_unwind(AssertUnwindSafe(body));
            self.compare(served, fresh);
        };
        let _ = submit(Box::new(job));
    }

    /// Verifies the hit that answered with `entry` (async): its load runs as a task of the
    /// caller's runtime.
    pub(super) fn verify_async(
        &'static self,
        key: &Key<F, S>,
        entry: &Entry<F::Value>,
        body: impl AsyncBody<F::Output>,
    ) {
        let Some(served) = self.admit(key, entry) else {
            return;
        };
        let job = move |body: SendFuture<F::Output>, served| async move {
            let fresh = CatchUnwind::new(body).await;
            self.compare(served, fresh);
        };
        // Without a runtime, `served` comes back and is dropped: counted as skipped.
        let _ = body.detach(served, job);
    }

    /// The hit the hit path picked for this call, if it did: answered (and counted) from the
    /// local store (the cache's entries, or an L1's copies), with its entry for the
    /// verification. `None` without a pick, or when the entry went or aged meanwhile (the
    /// call goes on as a miss).
    pub(super) fn picked_hit(&self, key: &Key<F, S>) -> Option<(Entry<F::Value>, F::Output)> {
        if !Self::LOCAL || !take_picked(self.address()) {
            return None;
        }
        let entry = self.local.get(&key.local)?;
        if !entry.is_fresh() || !entry.is_current() || !Self::serves_local() {
            return None;
        }
        let counter = match entry.slot {
            Slot::Value(_) => Counter::Hit,
            Slot::Null => Counter::NullHit,
        };
        let result = F::Shape::from_slot(entry.slot.clone())?;
        // The hit path drew no XFetch number for a picked hit; a mark left by another call
        // must not reach this call's store read.
        let _ = super::phase::take_fired();
        crate::answer::note_counted(counter, &entry.times);
        self.stats.add_answer(counter, entry.times.load_us);
        Some((entry, result))
    }

    /// This engine's address: what the hit path's pick mark names.
    pub(super) fn address(&self) -> usize {
        std::ptr::from_ref(self).addr()
    }

    /// A place in flight for a verification of `entry`, served now; `None` (counted) if the
    /// cache has [`IN_FLIGHT`] already.
    fn admit(&'static self, key: &Key<F, S>, entry: &Entry<F::Value>) -> Option<Served<F::Value>> {
        let in_flight = &self.verifier.in_flight;
        if in_flight.fetch_add(1, Relaxed) >= IN_FLIGHT {
            in_flight.fetch_sub(1, Relaxed);
            self.skipped();
            return None;
        }
        let now = clock::coarse_ms();
        Some(Served {
            entry: entry.clone(),
            age_ms: now.saturating_sub(entry.times.written_ms),
            served_ms: now,
            ticket: self.ticket(&key.local),
            key: F::key_text(&key.local),
            in_flight,
            skipped: &self.measured.verify_skipped,
            counted: false,
        })
    }

    fn skipped(&self) {
        self.measured.verify_skipped.fetch_add(1, Relaxed);
    }

    /// Whether `fresh` equals what `served` served: `None` when it cannot tell (the load
    /// failed or panicked, the values cannot be compared, the comparison panicked, or an
    /// invalidation or a long delay overtook the verification).
    fn same(&self, served: &Served<F::Value>, fresh: &Result<F::Output, Panic>) -> Option<bool> {
        let fresh = fresh.as_ref().ok().and_then(F::Shape::to_slot)?;
        let same = self.verifier.same?;
        let mut unfenced = false;
        self.fenced(served.ticket, || unfenced = true);
        let overtaken = !unfenced || !served.entry.is_current();
        let late = clock::coarse_ms().saturating_sub(served.served_ms) > MAX_DELAY_MS;
        if overtaken || late {
            return None;
        }
        let compared = catch_unwind(AssertUnwindSafe(|| match (&served.entry.slot, fresh) {
            (Slot::Null, Slot::Null) => Some(true),
            (Slot::Value(served), Slot::Value(fresh)) => same(served, fresh),
            _ => Some(false),
        }));
        compared.ok().flatten()
    }

    /// Compares a fresh result with what was served: counted by the served age; a mismatch
    /// logged at most once a minute.
    fn compare(&self, mut served: Served<F::Value>, fresh: Result<F::Output, Panic>) {
        // Counted here, or as skipped when `served` drops.
        let Some(equal) = self.same(&served, &fresh) else {
            return;
        };
        served.counted = true;
        let m = &self.measured;
        // Mismatches first: a reader that reads `verified` second never sees more of them.
        if !equal {
            m.mismatched_ages.record(served.age_ms);
        }
        m.verified_ages.record(served.age_ms);
        if equal {
            return;
        }
        #[cfg(feature = "metrics")]
        {
            let labels = [
                ("cache", self.name.to_owned()),
                ("backend", S::NAME.to_owned()),
            ];
            #[allow(clippy::cast_precision_loss, reason = "seconds")]
            let age = served.age_ms as f64 / 1_000.0;
            metrics::histogram!("cache.verify.mismatch.age.seconds", &labels).record(age);
        }
        if let Some(held_back) = self.verifier.log.allow() {
            tracing::warn!(
                cache = %self.name,
                backend = S::NAME,
                age_ms = served.age_ms,
                key = served.key.as_deref().unwrap_or("(set record_keys to see it)"),
                mismatches_not_logged = held_back,
                "cache_runtime: a verified hit served a value that a fresh load no longer gives"
            );
        }
    }
}
