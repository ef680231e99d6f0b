//! The Redis operations, as `'static` futures that run on the Redis runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use super::Keys;
use super::conn::{Redis, StoreError};
use super::layout::ClearScan;
use super::lease::{self, Begin, Lease};
use super::log::{self, Change};
use super::pending;
use super::scan;
use super::tracking::Echo;
use crate::store::Start;

pub(super) async fn read(redis: &'static Redis, keys: Keys) -> Result<Option<Vec<u8>>, StoreError> {
    pending::replayed(redis).await?;
    lease::read(redis, &keys).await
}

/// The values of untagged `keys` on one server, in one `MGET`.
pub(super) async fn read_many(
    redis: &'static Redis,
    keys: Vec<String>,
) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
    pending::replayed(redis).await?;
    let mut cmd = redis::cmd("MGET");
    cmd.arg(keys);
    redis.query::<Vec<Option<Vec<u8>>>>(cmd).await
}

pub(super) async fn begin(
    redis: &'static Redis,
    keys: Keys,
    wait: Duration,
    start: Start,
) -> Result<Begin, StoreError> {
    pending::replayed(redis).await?;
    match start {
        Start::Wait => lease::begin(redis, &keys, wait).await,
        Start::ReadOrTake => lease::read_or_take(redis, &keys, wait).await,
        Start::Take => lease::force(redis, &keys, wait).await,
        Start::Refresh(seen) => {
            let seen = crate::clock::to_unix_ms(seen);
            let begun = lease::try_refresh(redis, &keys, wait, seen);
            begun.await
        }
    }
}

/// Publishes under `lease`; with `tracked` (a tiered cache's name) the write's own report
/// from the tracking connection is verified rather than acted on (`tracking::Echo`).
pub(super) async fn publish(
    redis: &'static Redis,
    keys: Keys,
    lease: Lease,
    write: Option<(Vec<u8>, lease::Write)>,
    tracked: Option<String>,
) -> Result<bool, StoreError> {
    match write {
        Some((payload, write)) => {
            let _echo = tracked.and_then(|cache| Echo::value(&cache, keys.value()));
            lease::publish(redis, &keys, &lease, &payload, write).await
        }
        None => lease::release(redis, keys.value(), keys.lock(), &lease)
            .await
            .map(|()| true),
    }
}

/// Renews `lease` every third of `lifetime` until `done`, or until the lock no longer
/// holds its token, or Redis fails.
pub(super) async fn renew(
    redis: &'static Redis,
    keys: Keys,
    lease: Lease,
    lifetime: Duration,
    done: Arc<AtomicBool>,
) -> Result<(), StoreError> {
    let every = (lifetime / 3).max(Duration::from_millis(1));
    loop {
        tokio::time::sleep(every).await;
        if done.load(Relaxed) || !lease::renew(redis, keys.lock(), &lease, lifetime).await? {
            return Ok(());
        }
    }
}

pub(super) async fn release(
    redis: &'static Redis,
    keys: Keys,
    lease: Lease,
) -> Result<(), StoreError> {
    lease::release(redis, keys.value(), keys.lock(), &lease).await
}

/// Deletes the value and its lock; with `log` (a tiered cache), appends the change to the
/// invalidation log in the same script.
pub(super) async fn invalidate(
    redis: &'static Redis,
    keys: Keys,
    log: Option<Change>,
) -> Result<(), StoreError> {
    pending::replayed(redis).await?;
    match log {
        Some(change) => log::invalidate(redis, keys.value(), keys.lock(), &change).await,
        None => lease::invalidate(redis, keys.value(), keys.lock()).await,
    }
}

pub(super) async fn clear(
    redis: &'static Redis,
    scan: ClearScan,
    log: Option<Change>,
) -> Result<(), StoreError> {
    pending::replayed(redis).await?;
    scan::delete_matching(redis, &scan).await?;
    match log {
        Some(change) => log::append(redis, &change).await,
        None => Ok(()),
    }
}

/// After `f_refresh` of a tiered cache wrote: the change appended to the log.
pub(super) async fn changed(redis: &'static Redis, change: Change) -> Result<(), StoreError> {
    pending::replayed(redis).await?;
    log::append(redis, &change).await
}
