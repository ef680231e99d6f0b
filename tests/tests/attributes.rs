//! Issue 8: `#[tracing::instrument]` on a cached function behaves as on an uncached one when
//! written below `#[cached]` (a span per call, none added per load); written above, it wraps
//! the body (a span per load). Counted by a minimal `tracing` subscriber of this test.
#![cfg(not(feature = "redis"))]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};

use cache_runtime::cached;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Counts the spans opened per name.
#[derive(Default)]
struct Spans {
    next: AtomicU64,
    per_call: AtomicUsize,
    per_load: AtomicUsize,
}

struct Counting(Arc<Spans>);

impl Subscriber for Counting {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        match span.metadata().name() {
            "instrumented_below" => self.0.per_call.fetch_add(1, SeqCst),
            "instrumented_above" => self.0.per_load.fetch_add(1, SeqCst),
            _ => 0,
        };
        Id::from_u64(self.0.next.fetch_add(1, SeqCst) + 1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[cached]
#[tracing::instrument]
fn instrumented_below(x: u32) -> u32 {
    x + 1
}

#[tracing::instrument]
#[cached]
fn instrumented_above(x: u32) -> u32 {
    x + 2
}

#[test]
fn issue_8_instrument_below_cached_opens_a_span_per_call_above_a_span_per_load() {
    let spans = Arc::new(Spans::default());
    tracing::subscriber::with_default(Counting(spans.clone()), || {
        for _ in 0..3 {
            assert_eq!(instrumented_below(1), 2);
            assert_eq!(instrumented_above(1), 3);
        }
    });
    assert_eq!(
        spans.per_call.load(SeqCst),
        3,
        "one span per call, none more per load"
    );
    assert_eq!(
        spans.per_load.load(SeqCst),
        1,
        "the body, instrumented, ran once"
    );
}
