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

static PENDING: Mutex<Vec<Pending>> = Mutex::new(Vec::new());
/// Whether `PENDING` may hold something: the one load every Redis operation pays.
static ANY: AtomicBool = AtomicBool::new(false);

/// Keeps an invalidation that did not reach Redis.
pub(crate) fn keep(pending: Pending) {
    let mut all = PENDING.lock().unwrap_or_else(PoisonError::into_inner);
    all.push(pending);
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
    let mut all = PENDING.lock().unwrap_or_else(PoisonError::into_inner);
    ANY.store(false, Relaxed);
    std::mem::take(&mut *all)
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
