//! Running the body and mapping its result: the load counter, panic accounting, re-entry
//! marks, and the shape's mapping of a result to what is stored and what waiters get.

use std::future::Future;

use crate::backend::BackendState;
#[cfg(feature = "redis")]
use crate::entry::Entry;
use crate::entry::{Slot, Times};
use crate::function::{Function, Types};
use crate::reentry::Mark;
use crate::shape::Shape;
use crate::stats::{Counter, Counters};

use super::Engine;

/// One load being watched: counts it if it panics (dropped during unwinding before the body
/// returned), and records its `cache.load` span's outcome and duration (and, with the
/// `metrics` feature, the `cache.load.duration` histogram) when it ends.
struct PanicCounter<'a> {
    stats: &'a Counters,
    returned: bool,
    span: tracing::Span,
    started: std::time::Instant,
    #[cfg_attr(not(feature = "metrics"), allow(dead_code, reason = "a metrics label"))]
    cache: &'a str,
}

impl<'a> PanicCounter<'a> {
    fn new(stats: &'a Counters, cache: &'a str) -> Self {
        let span = tracing::debug_span!(
            "cache.load",
            cache = %cache,
            outcome = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        );
        PanicCounter {
            stats,
            returned: false,
            span,
            started: std::time::Instant::now(),
            cache,
        }
    }

    /// The body returned `ok` (a value or a null) or an error.
    fn returned(&mut self, ok: bool) {
        self.returned = true;
        self.end(if ok { "success" } else { "error" });
    }

    fn end(&self, outcome: &'static str) {
        let took = self.started.elapsed();
        self.span.record("outcome", outcome);
        self.span.record(
            "duration_ms",
            u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
        );
        #[cfg(feature = "metrics")]
        {
            let labels = [
                ("cache", self.cache.to_owned()),
                ("outcome", outcome.to_owned()),
            ];
            metrics::histogram!("cache.load.duration", &labels).record(took.as_secs_f64());
        }
    }
}

impl Drop for PanicCounter<'_> {
    fn drop(&mut self) {
        if !self.returned {
            if std::thread::panicking() {
                self.stats.add(Counter::LoadError);
                self.end("panicked");
            } else {
                self.end("cancelled");
            }
        }
    }
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
    /// What a backend publishes.
    pub(crate) fn stored(&self) -> Option<(Slot<&'r V>, Times)> {
        self.store.clone().map(|slot| (slot, self.times))
    }
}

impl<F: Types + Function, B: BackendState<F>> Engine<F, B> {
    /// Runs the body, counted as a load, marked as this thread's load of the key.
    pub(crate) fn run(&self, mark: Mark, body: impl FnOnce() -> F::Output) -> F::Output {
        self.stats.add(Counter::Load);
        let mut counter = PanicCounter::new(&self.stats, &self.name);
        let result = {
            let _entered = counter.span.enter();
            mark.run(body)
        };
        counter.returned(F::Shape::to_slot(&result).is_some());
        result
    }

    /// The async twin of [`Engine::run`].
    pub(crate) async fn run_async(
        &self,
        mark: Mark,
        body: impl Future<Output = F::Output>,
    ) -> F::Output {
        self.stats.add(Counter::Load);
        let mut counter = PanicCounter::new(&self.stats, &self.name);
        let span = counter.span.clone();
        let result = tracing::Instrument::instrument(mark.run_async(body), span).await;
        counter.returned(F::Shape::to_slot(&result).is_some());
        result
    }

    /// Maps a result by the function's shape: an error is counted and neither stored nor
    /// shared; a null is shared, and stored only while null caching is on. `load_ms` is how
    /// long the load took (XFetch's δ).
    pub(crate) fn settle<'r>(&self, result: &'r F::Output, load_ms: u32) -> Settled<'r, F::Value> {
        let Some(slot) = F::Shape::to_slot(result) else {
            self.stats.add(Counter::LoadError);
            return Settled {
                store: None,
                share: None,
                times: Times::FOREVER,
            };
        };
        let null = matches!(slot, Slot::Null);
        let stored = !null || self.policy.caches_nulls();
        Settled {
            store: stored.then(|| slot.clone()),
            share: Some(slot),
            times: self.policy.times_from_now(null, load_ms),
        }
    }

    /// The local entry of a slot, with the times its policy gives it now.
    #[cfg(feature = "redis")]
    pub(crate) fn entry(&self, slot: Slot<&F::Value>, tags: &crate::tags::Tags) -> Entry<F::Value> {
        let null = matches!(slot, Slot::Null);
        Entry {
            times: self.policy.times_from_now(null, 0),
            slot: slot.cloned(),
            tags: crate::tags::EntryTags::of(tags),
        }
    }
}
