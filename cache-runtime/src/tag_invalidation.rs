//! Tag invalidation: each tag moved on in this process (`tags.rs`), then in every store that
//! keeps tag versions of its own (the tag sinks `lib.rs` names), then in this process again (a
//! copy read from a store before its tag keys changed may have landed since); then the
//! invalidation hooks (`on_invalidate`) are told. The public
//! `invalidate_tag(s)` are in `lib.rs`, the one place that names every store.

use crate::invalidation::{self, Invalidated, Invalidation};
use crate::registry::TagSink;
use crate::tags::bump_all;

/// Invalidates `tags` in process and in each of `sinks`; `Pending` if one of them kept it to
/// replay.
pub(crate) fn invalidate<I, S>(tags: I, sinks: &[&dyn TagSink]) -> Invalidation
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let Some(names) = to_tell(tags, sinks) else {
        return Invalidation::Done;
    };
    let told = sinks.iter().map(|sink| sink.invalidate(&names));
    told_all(&names, told.collect())
}

/// The async twin of [`invalidate`].
pub(crate) async fn invalidate_async<I, S>(tags: I, sinks: &[&dyn TagSink]) -> Invalidation
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let Some(names) = to_tell(tags, sinks) else {
        return Invalidation::Done;
    };
    let mut told = Vec::with_capacity(sinks.len());
    for sink in sinks {
        told.push(sink.invalidate_async(&names).await);
    }
    told_all(&names, told)
}

/// The tags moved on in process; their names, if there is a sink to tell.
fn to_tell<I, S>(tags: I, sinks: &[&dyn TagSink]) -> Option<Vec<String>>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let names = bump_all(tags);
    if !names.is_empty() && sinks.is_empty() {
        // Done: what is in front of this cache (an HTTP cache) may drop its copies.
        invalidation::tell(Invalidated::Tags(&names));
    }
    (!names.is_empty() && !sinks.is_empty()).then_some(names)
}

/// After the sinks were told: the tags moved on in process again (a copy read from a store
/// before its tag keys changed may have landed since), and the answer of them all.
fn told_all(names: &[String], told: Vec<Invalidation>) -> Invalidation {
    bump_all(names);
    // Done here and in the stores (or kept to replay): what is in front of this cache (an
    // HTTP cache) may drop its copies, and reloads them from a store that is current.
    invalidation::tell(Invalidated::Tags(names));
    match told.iter().any(|t| t.is_pending()) {
        true => Invalidation::Pending,
        false => Invalidation::Done,
    }
}
