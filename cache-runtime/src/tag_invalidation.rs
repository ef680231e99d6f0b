//! Tag invalidation: each tag moved on in this process (`tags.rs`), then in every store that
//! keeps tag versions of its own (the tag sinks `lib.rs` names), then in this process again (a
//! copy read from a store before its tag keys changed may have landed since). The public
//! `invalidate_tag(s)` are in `lib.rs`, the one place that names every store.

use crate::invalidation::Invalidation;
use crate::registry::TagSink;
use crate::tags::bump_all;

/// Invalidates `tags` in process and in each of `sinks`; `Pending` if one of them kept it to
/// replay.
pub(crate) fn invalidate<I, S>(tags: I, sinks: &[&dyn TagSink]) -> Invalidation
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let names = bump_all(tags);
    if names.is_empty() || sinks.is_empty() {
        return Invalidation::Done;
    }
    let mut done = Invalidation::Done;
    for sink in sinks {
        if sink.invalidate(&names).is_pending() {
            done = Invalidation::Pending;
        }
    }
    bump_all(&names);
    done
}

/// The async twin of [`invalidate`].
pub(crate) async fn invalidate_async<I, S>(tags: I, sinks: &[&dyn TagSink]) -> Invalidation
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let names = bump_all(tags);
    if names.is_empty() || sinks.is_empty() {
        return Invalidation::Done;
    }
    let mut done = Invalidation::Done;
    for sink in sinks {
        if sink.invalidate_async(&names).await.is_pending() {
            done = Invalidation::Pending;
        }
    }
    bump_all(&names);
    done
}
