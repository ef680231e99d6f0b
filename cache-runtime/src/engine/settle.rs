//! Running the body and mapping its result: the load counter, panic accounting, re-entry
//! marks, and the shape's mapping of a result to what is stored and what waiters get.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::body::{CatchUnwind, Panic};
use crate::entry::{Slot, Times};
use crate::function::Function;
use crate::reentry::Mark;
use crate::shape::Shape;
use crate::stats::{Counter, Counters};
use crate::store::Store;

use super::Engine;
use super::waiters::Running;

/// How a load ended, as its span and histogram say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The body returned a value or a null.
    Success,
    /// It returned an error (`Err`, or the error of a fallible shape).
    Error,
    /// It panicked.
    Panicked,
    /// Its future was dropped before it ended.
    Cancelled,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Error => "error",
            Outcome::Panicked => "panicked",
            Outcome::Cancelled => "cancelled",
        }
    }
}

/// One load, watched from its start to its end: counted in `loads` when it starts and in
/// `load_errors` if it panics (an `Err` is counted by [`Engine::settle`]); its `cache.load`
/// span (debug) with the cache, backend, outcome, duration and the callers that waited for
/// it, and the key only with `record_keys`; with the `metrics` feature, its sample of the
/// `cache.load.duration.seconds` histogram. Dropped without an end, it ends as `panicked` while its
/// thread unwinds, else as `cancelled`.
pub(crate) struct LoadWatch<'a> {
    stats: &'a Counters,
    #[cfg_attr(not(feature = "metrics"), allow(dead_code, reason = "a metrics label"))]
    cache: &'a str,
    #[cfg_attr(not(feature = "metrics"), allow(dead_code, reason = "a metrics label"))]
    backend: &'static str,
    span: tracing::Span,
    /// When the load started: only if someone reads its duration (its span is enabled, or the
    /// `metrics` feature is on); reading the clock costs more than a quarter of a miss here.
    started: Option<Instant>,
    /// Its place among the loads waited for: only while its span is enabled.
    running: Option<Running<'a>>,
    ended: bool,
}

impl LoadWatch<'_> {
    /// Ends the load with its result (`Err` for a panic).
    pub(crate) fn finish<F: Function>(mut self, result: &Result<F::Output, Panic>) {
        let outcome = match result {
            Ok(output) if F::Shape::to_slot(output).is_some() => Outcome::Success,
            Ok(_) => Outcome::Error,
            Err(_) => {
                self.stats.add(Counter::LoadError);
                Outcome::Panicked
            }
        };
        self.end(outcome);
    }

    /// The load's span, to enter while its body runs.
    pub(crate) fn span(&self) -> &tracing::Span {
        &self.span
    }

    fn end(&mut self, outcome: Outcome) {
        self.ended = true;
        let Some(took) = self.started.map(|s| s.elapsed()) else {
            return;
        };
        self.span.record("outcome", outcome.as_str());
        self.span.record(
            "duration_ms",
            u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
        );
        if let Some(running) = &self.running {
            self.span.record("waits", running.waits());
        }
        #[cfg(feature = "metrics")]
        {
            let labels = [
                ("cache", self.cache.to_owned()),
                ("backend", self.backend.to_owned()),
                ("outcome", outcome.as_str().to_owned()),
            ];
            metrics::histogram!("cache.load.duration.seconds", &labels).record(took.as_secs_f64());
        }
    }
}

impl Drop for LoadWatch<'_> {
    fn drop(&mut self) {
        if !self.ended {
            if std::thread::panicking() {
                self.stats.add(Counter::LoadError);
                self.end(Outcome::Panicked);
            } else {
                self.end(Outcome::Cancelled);
            }
        }
    }
}

/// Ends a load that returned `result`.
fn finish_ok<F: Function>(watch: LoadWatch<'_>, result: &F::Output) {
    let outcome = if F::Shape::to_slot(result).is_some() {
        Outcome::Success
    } else {
        Outcome::Error
    };
    let mut watch = watch;
    watch.end(outcome);
}

/// What a load's result leaves behind.
pub(crate) struct Settled<'r, V> {
    /// What to store (`None`: an error, or a null while null caching is off).
    pub(crate) store: Option<Slot<&'r V>>,
    /// What this process's waiters get (`None`: an error; one of them loads next).
    pub(crate) share: Option<Slot<&'r V>>,
    /// The times of what is stored.
    pub(crate) times: Times,
}

impl<'r, V> Settled<'r, V> {
    /// Takes what a publish did: the version of what it wrote (the one every process reading
    /// it computes); returns whether the lease still held.
    pub(crate) fn published(&mut self, published: crate::store::Published) -> bool {
        self.times.version = published.version.unwrap_or(self.times.version);
        published.valid
    }

    /// What a backend publishes.
    pub(crate) fn stored(&self) -> Option<(Slot<&'r V>, Times)> {
        self.store.clone().map(|slot| (slot, self.times))
    }
}

impl<F: Function, S: Store<F>> Engine<F, S> {
    /// Starts watching a load of `key` (`mark` is its re-entry mark): counts it.
    pub(crate) fn watch(&self, mark: Mark, key: &F::Key) -> LoadWatch<'_> {
        self.stats.add(Counter::Load);
        let span = tracing::debug_span!(
            "cache.load",
            cache = %self.name,
            backend = S::NAME,
            key = tracing::field::Empty,
            outcome = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
            waits = tracing::field::Empty,
        );
        if !span.is_disabled()
            && let Some(text) = F::key_text(key)
        {
            span.record("key", text);
        }
        let observed = !span.is_disabled();
        LoadWatch {
            stats: &self.stats,
            cache: self.name,
            backend: S::NAME,
            span,
            started: (observed || cfg!(feature = "metrics")).then(Instant::now),
            running: observed.then(|| self.waiters.start(mark)),
            ended: false,
        }
    }

    /// Runs the body in place, watched by `watch`, marked as this thread's load of the key.
    pub(crate) fn run(
        &self,
        mark: Mark,
        watch: LoadWatch<'_>,
        body: impl FnOnce() -> F::Output,
    ) -> F::Output {
        let result = {
            let _entered = watch.span().enter();
            crate::answer::quiet(|| mark.run(body))
        };
        finish_ok::<F>(watch, &result);
        result
    }

    /// The async twin of [`Engine::run`].
    pub(crate) async fn run_async(
        &self,
        mark: Mark,
        watch: LoadWatch<'_>,
        body: impl Future<Output = F::Output>,
    ) -> F::Output {
        let span = watch.span().clone();
        let body = crate::answer::quiet_async(mark.run_async(body));
        let result = tracing::Instrument::instrument(body, span).await;
        finish_ok::<F>(watch, &result);
        result
    }

    /// [`Engine::run_async`] with the body's panic caught (a held entry may answer instead);
    /// a panicked load is finished by its watch's drop, as in `run_caught`. The panic is
    /// caught around the body, not around this future: a wrapper around a future that borrows
    /// the engine would hide from the type checker that the load is `Send` (a load whose
    /// caller was cancelled moves to the runtime: `AsyncBody::own`).
    pub(crate) async fn run_caught_async(
        &self,
        mark: Mark,
        watch: LoadWatch<'_>,
        body: impl Future<Output = F::Output>,
    ) -> Result<F::Output, Panic> {
        let span = watch.span().clone();
        let body = crate::answer::quiet_async(mark.run_async(CatchUnwind::new(body)));
        let result = tracing::Instrument::instrument(body, span).await;
        if let Ok(result) = &result {
            finish_ok::<F>(watch, result);
        }
        result
    }

    /// Maps a result by the function's shape: an error is counted and neither stored nor
    /// shared; a null is shared, and stored only while null caching is on. `load_us` is how
    /// long the load took (XFetch's δ).
    pub(crate) fn settle<'r>(&self, result: &'r F::Output, load_us: u32) -> Settled<'r, F::Value> {
        self.measured.loads.record(u64::from(load_us));
        let Some(slot) = F::Shape::to_slot(result) else {
            self.stats.add(Counter::LoadError);
            return Settled {
                store: None,
                share: None,
                times: Times::FOREVER,
            };
        };
        let (null, ttl, stored) = self.lifetime(&slot);
        Settled {
            store: stored.then(|| slot.clone()),
            share: Some(slot),
            times: self.policy.times_from_now(null, ttl, load_us),
        }
    }

    /// Whether `slot` is a null, the lifetime `ttl_fn` chose for it (capped by a fallback's
    /// own), and whether it is stored at all.
    pub(crate) fn lifetime(&self, slot: &Slot<&F::Value>) -> (bool, Option<Duration>, bool) {
        let (null, ttl) = match (slot, self.ttl_fn) {
            (Slot::Value(value), Some(ttl_fn)) => {
                let chosen = ttl_fn(value);
                (
                    false,
                    Some(self.ttl_cap.map_or(chosen, |cap| chosen.min(cap))),
                )
            }
            (slot, _) => (matches!(slot, Slot::Null), None),
        };
        let stored = match ttl {
            Some(ttl) => !ttl.is_zero(),
            None => !null || self.policy.caches_nulls(),
        };
        (null, ttl, stored)
    }

    /// Whether `result` is a value or a null that is not stored (an error is neither).
    pub(crate) fn unstored(&self, result: &F::Output) -> bool {
        F::Shape::to_slot(result).is_some_and(|slot| !self.lifetime(&slot).2)
    }
}
