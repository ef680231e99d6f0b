//! Tags on Redis (DESIGN §11): one key per tag, `{prefix}cache-runtime:tag:{tag}`, whose value
//! is the tag's current version (16 hex digits, random).
//!
//! - A load records the versions of its call's tags, read by the script that takes its lease
//!   (a missing tag key is made there with a fresh version), in its entry's envelope
//!   (`codec.rs`), and publishes only if the tag keys still hold them (the publish script
//!   checks, so a load that started before an invalidation never writes).
//! - A read of a tagged function is a `GET` of the value and an `MGET` of its tag keys in one
//!   pipeline (one round trip): the value, if the versions it records are the tag keys' values;
//!   else a miss. Every script that finds a value for a waiter or a refresh compares the same.
//! - [`invalidate`] sets the tag keys to a fresh random version and appends each tag to the
//!   invalidation log (for every process's L1), in one script on a single server: one round
//!   trip whatever the number of entries (on a cluster, see below).
//!
//! A fresh random version rather than `INCR`: a counter restarts at 1 when its key is lost
//! (evicted, deleted, expired, a restart without persistence), and could then match an entry
//! written under an earlier 1. A lost tag key makes every entry carrying it a miss (a read
//! finds no version to match; the next load makes the key again, with a version no entry
//! recorded). So a tag key may expire, and every one has a lifetime (`tag_life` in `lease.rs`):
//!
//! - The lease script makes a missing tag key for what the load needs (its lock's lifetime and
//!   10 minutes) and an hour more, and renews one that has less than the load needs left.
//! - The publish that writes an entry renews each of its tag keys that has less left than the
//!   entry's `PX` and a minute: so a tag key outlives every entry that recorded it. An entry
//!   without `PX` (no `ttl`) counts as 7 days: it is a miss, and loads again, once its tag keys
//!   are gone, 7 to 14 days after the last load that recorded them.
//! - A renewal gives what is needed and as much again, at least an hour more, and never
//!   shortens a lifetime (it compares `PTTL`; `PEXPIRE … GT` needs Redis 7 and would leave a
//!   key without a lifetime as it is). A renewal is a write, and tiered processes are told of
//!   every write of a tag key (`tracking.rs`), which moves the tag on there (their L1 copies
//!   carrying it are read from Redis again): so a tag that loads record all the time is
//!   renewed at most about once an hour, not at every load.
//! - An invalidation sets the new version with the lifetime the key has left (`KEEPTTL`: what
//!   loads gave it, which the loads that follow need as much, so none has to renew it), or for
//!   an hour if that is longer (a missing key). That is enough: no entry records the new
//!   version yet, and those that recorded the old one are misses whether the key is there or
//!   not.
//!
//! A tag key written by another service without `PX` gets a lifetime at the next load that
//! records it. Under an ACL that does not allow `PTTL` nothing fails, but no tag key is
//! renewed (nor keeps its lifetime through an invalidation): an entry that lives longer than
//! its tag key (about an hour) is then a miss early.
//!
//! The other keys: the invalidation log (`log.rs`) lives a week past its last append; a lock
//! lives `lock_timeout` (`PX`, renewed while its load runs); a value has its entry's `PX`, and
//! none without a `ttl`.
//!
//! On Redis Cluster (DESIGN §12) a tag key and a value key live on different slots, which one
//! script cannot touch: the client reads the tag keys first, each with a script of its own on
//! its node, all at once (it makes a missing key, or renews one, as above) and gives the
//! versions to the lease script, which then touches the value and its lock only (one slot);
//! the publish reads (and renews) them just before it and compares, and reads them again
//! after: a tag invalidated in between makes a write that every reader misses (each read
//! compares the versions, as everywhere), and no hand-over here. A read is a `GET` and an
//! `MGET` sent together. `invalidate_tag` sets each tag key and appends each tag to the log as
//! separate commands, one script per tag key and one append per tag (kept and replayed whole if
//! one fails).

use super::conn::{Redis, StoreError};
use super::log;
use super::pending::{self, Pending};
use crate::invalidation::Invalidation;

/// Moves the tags `names` to a fresh version on Redis and tells every L1; `Pending`, kept to
/// replay, when Redis cannot be reached; `Pending`, not kept, when the settings name no usable
/// Redis.
pub(crate) fn invalidate(names: &[String]) -> Invalidation {
    let Some(redis) = target() else {
        return done_without_redis();
    };
    let tags = names.to_vec();
    let done = redis.block(async move { apply(redis, &tags).await });
    answer(names, done)
}

/// The async twin of [`invalidate`].
pub(crate) async fn invalidate_async(names: &[String]) -> Invalidation {
    let Some(redis) = target() else {
        return done_without_redis();
    };
    let tags = names.to_vec();
    let done = redis.run(async move { apply(redis, &tags).await }).await;
    answer(names, done)
}

/// The Redis to tell; `None` when the settings name no usable Redis (then every Redis cache
/// runs on its fallback, nothing is ever read from Redis, and nothing is kept to replay).
fn target() -> Option<&'static Redis> {
    Redis::get().ok()
}

/// The answer without a usable Redis: as for `f_invalidate`, `Pending`.
fn done_without_redis() -> Invalidation {
    Invalidation::Pending
}

/// What an invalidation runs on Redis: first what is kept to replay, then its own script.
async fn apply(redis: &'static Redis, names: &[String]) -> Result<(), StoreError> {
    pending::replayed(redis).await?;
    log::invalidate_tags_now(redis, names).await
}

fn answer(names: &[String], done: Result<(), StoreError>) -> Invalidation {
    match done {
        Ok(()) => Invalidation::Done,
        Err(e) => {
            if !matches!(e, StoreError::Unavailable) && !Redis::in_outage() {
                tracing::warn!(
                    tags = ?names,
                    error = %e,
                    "cache-runtime: a tag invalidation did not reach Redis; it is kept and \
                     replayed before this process reads from Redis again"
                );
            }
            pending::keep(Pending::Tags(names.to_vec()));
            Invalidation::Pending
        }
    }
}

/// `invalidate_tag` reaching Redis from every process of the feature, whether or not it made
/// a Redis cache (installed by `lib.rs`).
pub(crate) struct RedisTags;

impl crate::registry::TagSink for RedisTags {
    fn invalidate(&self, names: &[String]) -> Invalidation {
        invalidate(names)
    }

    fn invalidate_async<'a>(
        &'a self,
        names: &'a [String],
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Invalidation> + Send + 'a>> {
        Box::pin(invalidate_async(names))
    }
}
