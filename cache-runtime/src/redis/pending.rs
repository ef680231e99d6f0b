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

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};

use super::Keys;
use super::conn::{Redis, StoreError};
use super::layout::ClearScan;
use super::lease;
use super::tiered::{self, Change};

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
/// Whether `PENDING` may hold something: the one load every Redis operation pays.
static ANY: AtomicBool = AtomicBool::new(false);

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
    ANY.store(true, Relaxed);
}

/// What every read, lease, invalidation and clear of this process does first: replays what
/// is kept, if anything (one relaxed load when nothing is). Its error fails the operation.
#[inline]
pub(crate) async fn replayed(redis: &'static Redis) -> Result<(), StoreError> {
    if ANY.load(Relaxed) {
        replay(redis).await
    } else {
        Ok(())
    }
}

/// Takes what is kept (to replay it).
fn take() -> Vec<Pending> {
    let mut kept = PENDING.lock().unwrap_or_else(PoisonError::into_inner);
    ANY.store(false, Relaxed);
    kept.seen.clear();
    let mut all = std::mem::take(&mut kept.list);
    let tags: Vec<String> = std::mem::take(&mut kept.tags).into_iter().collect();
    all.extend(
        tags.chunks(TAGS_PER_REPLAY)
            .map(|chunk| Pending::Tags(chunk.to_vec())),
    );
    all
}

/// Replays every kept invalidation; what fails is kept again, and the error returned.
async fn replay(redis: &'static Redis) -> Result<(), StoreError> {
    let mut left = take().into_iter();
    while let Some(p) = left.next() {
        let done = match &p {
            Pending::Key(keys, None) => lease::invalidate(redis, keys.value(), keys.lock()).await,
            Pending::Key(keys, Some(change)) => {
                tiered::invalidate(redis, keys.value(), keys.lock(), change).await
            }
            Pending::Clear(scan, log) => match lease::delete_matching(redis, scan).await {
                Ok(_) => match log {
                    Some(change) => tiered::append(redis, change).await,
                    None => Ok(()),
                },
                Err(e) => Err(e),
            },
            Pending::Logged(change) => tiered::append(redis, change).await,
            Pending::Tags(names) => super::tags::replay(redis, names).await,
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
        let kept = take();
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
        assert!(take().is_empty(), "taken");
        // Many tags are replayed in steps.
        keep(Pending::Tags(
            (0..600).map(|n| format!("many:{n}")).collect(),
        ));
        let steps: Vec<usize> = take()
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
        assert_eq!(take().len(), 2, "both caches' clears, once each");
        // Kept again after a failed replay: once more, not twice.
        keep(Pending::Key(key("p:a"), None));
        keep(Pending::Key(key("p:a"), None));
        assert_eq!(take().len(), 1);
    }
}
