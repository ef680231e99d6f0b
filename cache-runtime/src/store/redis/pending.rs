//! Invalidations that could not reach Redis, kept and replayed before Redis serves this process
//! again.
//!
//! An `f_invalidate` (or `clear`, or `invalidate_tag`) while Redis is unavailable drops the key from the in-process
//! fallback at once, and is kept here. Every Redis operation of this process first replays
//! what is kept (deletes the keys and their locks; scans and unlinks cleared caches); while that
//! fails, the operation counts as failed and the call goes to the fallback. So no value older
//! than an invalidation this process acknowledged is served from Redis to this process. Other
//! processes see the invalidation once it is replayed: at this process's first Redis operation
//! after Redis returns.
//!
//! An invalidation stays kept until Redis has confirmed its replay: a replay in flight is
//! still kept, so an operation that starts meanwhile waits for it (one replay at a time, for
//! at most `op_timeout`) and, if it has not ended or failed, is not tried (the call goes to
//! the fallback; a skip, not a failure: Redis may be healthy and the replay long) instead of
//! reading what the replay has not yet deleted (issue 22). A replay runs as a task of the
//! Redis runtime, never on a caller's task: a caller cancelled while it waits cannot drop what
//! the replay has taken.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use super::Keys;
use super::conn::{Redis, StoreError};
use super::layout::ClearScan;
use super::lease;
use super::log::{self, Change};
use super::scan;

/// One invalidation to replay.
pub(crate) enum Pending {
    /// `f_invalidate`: the value key and its lock (and, for a tiered cache, its log entry).
    Key(Keys, Option<Change>),
    /// `clear()`: what to scan for, and which keys found are the cache's.
    Clear(ClearScan, Option<Change>),
    /// `f_refresh` of a tiered cache: its log entry.
    Logged(Change),
    /// `invalidate_tag` / `invalidate_tags`: the tags.
    Tags(Vec<String>),
}

/// What is kept, once each: a key, a cleared cache, a logged change or a tag invalidated again
/// during an outage is kept once (so repeated invalidations do not grow it; it holds at most
/// the distinct ones made while Redis was unreachable).
struct Kept {
    list: Vec<Pending>,
    /// What `list` holds, by identity (value key, cleared name, logged change).
    seen: BTreeSet<String>,
    /// Every kept tag (replayed in `Pending::Tags` of [`TAGS_PER_REPLAY`], never in `list`).
    tags: BTreeSet<String>,
}

/// Tags per replayed script: a replay of many tags moves forward in steps that each fit in an
/// operation's deadline, instead of one script that never does.
const TAGS_PER_REPLAY: usize = 256;

static PENDING: Mutex<Kept> = Mutex::new(Kept {
    list: Vec::new(),
    seen: BTreeSet::new(),
    tags: BTreeSet::new(),
});
/// Whether an invalidation is kept and not yet confirmed by Redis (in `PENDING`, or taken by
/// a replay still in flight): the one load every Redis operation pays. Set and cleared under
/// `PENDING`'s lock; cleared only by a replay that found nothing more to send.
static ANY: AtomicBool = AtomicBool::new(false);

/// One replay at a time: an operation that finds invalidations kept waits here for the replay
/// in flight, then replays what is left itself.
static REPLAY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Keeps an invalidation that did not reach Redis (once: see [`Kept`]).
pub(crate) fn keep(pending: Pending) {
    let mut kept = PENDING.lock().unwrap_or_else(PoisonError::into_inner);
    let identity = match &pending {
        Pending::Tags(_) => None,
        Pending::Key(keys, _) => Some(format!("k{}", keys.value())),
        // The whole scan: two caches may share a name with shapes that do not overlap.
        Pending::Clear(scan, _) => Some(format!("c{scan:?}")),
        Pending::Logged(change) => Some(format!("l{}\0{}", change.cache, change.key)),
    };
    match (pending, identity) {
        (Pending::Tags(names), _) => kept.tags.extend(names),
        (other, Some(identity)) => {
            if kept.seen.insert(identity) {
                kept.list.push(other);
            }
        }
        (other, None) => kept.list.push(other),
    }
    ANY.store(true, Ordering::Release);
}

/// What every read, lease, invalidation and clear of this process does first: replays what
/// is kept, if anything (one load when nothing is). Its error fails the operation.
#[inline]
pub(crate) async fn replayed(redis: &'static Redis) -> Result<(), StoreError> {
    if ANY.load(Ordering::Acquire) {
        replay(redis).await
    } else {
        Ok(())
    }
}

/// Takes what is kept (to replay it), leaving it counted as kept until a later `take` finds
/// nothing: `None` then, and only then is nothing kept any more.
fn take() -> Option<Vec<Pending>> {
    let mut kept = PENDING.lock().unwrap_or_else(PoisonError::into_inner);
    if kept.list.is_empty() && kept.tags.is_empty() {
        ANY.store(false, Ordering::Release);
        return None;
    }
    kept.seen.clear();
    let mut all = std::mem::take(&mut kept.list);
    let tags: Vec<String> = std::mem::take(&mut kept.tags).into_iter().collect();
    all.extend(
        tags.chunks(TAGS_PER_REPLAY)
            .map(|chunk| Pending::Tags(chunk.to_vec())),
    );
    Some(all)
}

/// Replays every kept invalidation, after the replay in flight (if any) ended, as a task of
/// the Redis runtime; what fails is kept again, and the error returned. Waiting is bounded by
/// the operation deadline: past it the operation is not tried (`Unavailable`), and the replay
/// goes on.
async fn replay(redis: &'static Redis) -> Result<(), StoreError> {
    let limit = redis.config.op_timeout;
    let task = redis.task(async move {
        let _turn = REPLAY.lock().await;
        // Invalidations kept while this replay runs are replayed by it too.
        while let Some(batch) = take() {
            replay_batch(redis, batch).await?;
        }
        Ok(())
    });
    match tokio::time::timeout(limit, task).await {
        Ok(Ok(done)) => done,
        Ok(Err(_)) => Err(StoreError::Failed(
            "the replay of kept invalidations stopped".into(),
        )),
        Err(_) => Err(StoreError::Unavailable),
    }
}

/// Sends one batch of kept invalidations, in order; on the first failure what is left (the
/// failed one included) is kept again.
async fn replay_batch(redis: &'static Redis, batch: Vec<Pending>) -> Result<(), StoreError> {
    let mut left = batch.into_iter();
    while let Some(p) = left.next() {
        let done = match &p {
            Pending::Key(keys, None) => lease::invalidate(redis, keys.value(), keys.lock()).await,
            Pending::Key(keys, Some(change)) => {
                log::invalidate(redis, keys.value(), keys.lock(), change).await
            }
            Pending::Clear(scan, log) => match scan::delete_matching(redis, scan).await {
                Ok(_) => match log {
                    Some(change) => log::append(redis, change).await,
                    None => Ok(()),
                },
                Err(e) => Err(e),
            },
            Pending::Logged(change) => log::append(redis, change).await,
            Pending::Tags(names) => log::invalidate_tags_now(redis, names).await,
        };
        if let Err(e) = done {
            keep(p);
            left.for_each(keep);
            return Err(e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found in review: every invalidation during an outage was kept again, so a process whose
    /// Redis never came back grew its list by one per call. Each key and each tag is kept once.
    #[test]
    fn a_key_or_tag_invalidated_again_is_kept_once() {
        let key = |v: &str| Keys::new(v.to_owned(), Vec::new());
        for _ in 0..1000 {
            keep(Pending::Key(key("p:a"), None));
            keep(Pending::Tags(vec!["t:1".into(), "t:2".into()]));
        }
        keep(Pending::Key(key("p:b"), None));
        keep(Pending::Tags(vec!["t:2".into(), "t:3".into()]));
        let kept = take().expect("kept");
        let keys: Vec<&str> = kept
            .iter()
            .filter_map(|p| match p {
                Pending::Key(k, _) => Some(k.value()),
                _ => None,
            })
            .collect();
        assert_eq!(keys, ["p:a", "p:b"]);
        let tags: Vec<&Vec<String>> = kept
            .iter()
            .filter_map(|p| match p {
                Pending::Tags(t) => Some(t),
                _ => None,
            })
            .collect();
        assert_eq!(tags, [&vec!["t:1".to_owned(), "t:2".into(), "t:3".into()]]);
        assert!(take().is_none(), "taken");
        // Many tags are replayed in steps.
        keep(Pending::Tags(
            (0..600).map(|n| format!("many:{n}")).collect(),
        ));
        let steps: Vec<usize> = take()
            .expect("kept")
            .iter()
            .map(|p| match p {
                Pending::Tags(t) => t.len(),
                _ => 0,
            })
            .collect();
        assert_eq!(steps, [256, 256, 88]);
        // Two caches may share a name with shapes that do not overlap: clearing both keeps
        // both (each scan deletes only keys of its own shape); clearing one twice keeps one.
        let scan =
            |layout| ClearScan::new("p:", super::super::layout::KeyShape::new("user", layout));
        keep(Pending::Clear(scan("profile:{}"), None));
        keep(Pending::Clear(scan("settings:{}"), None));
        keep(Pending::Clear(scan("settings:{}"), None));
        assert_eq!(
            take().map(|t| t.len()),
            Some(2),
            "both caches' clears, once each"
        );
        // Kept again after a failed replay: once more, not twice.
        keep(Pending::Key(key("p:a"), None));
        keep(Pending::Key(key("p:a"), None));
        assert_eq!(take().map(|t| t.len()), Some(1));
        assert!(take().is_none());
        assert!(!ANY.load(Ordering::Acquire), "nothing kept any more");
    }
}
