//! Every `tracing` event of the process, as text, for tests that check what the library logs
//! (and what it never logs: passwords).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// The captured lines: `LEVEL message field=value ...`.
static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// The captured spans: `(id, "name field=value ...")`, fields recorded later appended.
static SPANS: Mutex<Vec<(u64, String)>> = Mutex::new(Vec::new());

struct Capture {
    next: AtomicU64,
}

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={value}", field.name());
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Relaxed) + 1;
        let mut line = Line(span.metadata().name().to_owned());
        span.record(&mut line);
        SPANS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((id, line.0));
        Id::from_u64(id)
    }
    fn record(&self, id: &Id, values: &Record<'_>) {
        let mut spans = SPANS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, line)) = spans.iter_mut().find(|(i, _)| *i == id.into_u64()) {
            let mut more = Line(std::mem::take(line));
            values.record(&mut more);
            *line = more.0;
        }
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = Line(event.metadata().level().to_string());
        event.record(&mut line);
        LINES.lock().unwrap_or_else(|e| e.into_inner()).push(line.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Starts capturing every event of the process (once; later calls do nothing).
pub fn capture() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = tracing::subscriber::set_global_default(Capture {
            next: AtomicU64::new(0),
        });
    });
}

/// The spans captured so far: their name, then their fields (`name field=value ...`).
pub fn spans() -> Vec<String> {
    SPANS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(_, s)| s.clone())
        .collect()
}

/// The lines captured so far.
pub fn lines() -> Vec<String> {
    LINES.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The lines at `level` or more severe.
pub fn at_least(level: Level) -> Vec<String> {
    lines()
        .into_iter()
        .filter(|l| {
            let parsed: Option<Level> = l.split_whitespace().next().and_then(|w| w.parse().ok());
            parsed.is_some_and(|lv| lv <= level)
        })
        .collect()
}
