//! Publish notifications: a waiter in one process learns that another process published (or
//! released) a key at once, instead of finding out at its next poll.
//!
//! The publish and release scripts end with `PUBLISH {prefix}cache-runtime:published <value
//! key>` (in the same script, so no added round trip). A process subscribes to that channel on
//! its own connection the first time one of its callers waits for another process's load, and
//! stays subscribed; each message wakes the callers of this process waiting on that key,
//! which then read it. A waiter keeps its capped backoff too, as a safety net: a message lost
//! (while subscribing, or during a reconnect) costs at most one backoff step, as before.
//! Redis pub/sub is fire-and-forget: every publish is sent to every subscribed process, so the
//! traffic is one message per publish per process that has waited at least once.
//! The channel idea follows the "backplane" notifications of FusionCache and the keyspace
//! notification pattern of Redis; the wake-up is `tokio::sync::Notify`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::sync::Notify;

use super::conn::Redis;

/// This process's waiters (one Redis per process).
static NOTICES: std::sync::LazyLock<Notices> = std::sync::LazyLock::new(Notices::default);

/// The keys callers of this process wait on, and the subscriber that wakes them.
#[derive(Default)]
pub(crate) struct Notices {
    watched: Mutex<HashMap<Vec<u8>, Watched>>,
    listening: AtomicBool,
}

struct Watched {
    notify: Arc<Notify>,
    watchers: usize,
}

/// A caller's interest in one key, from its first wait until it has its answer.
pub(crate) struct Watch {
    key: Vec<u8>,
    pub(crate) notify: Arc<Notify>,
}

impl Notices {
    /// Starts watching `key` (and, the first time, listening on the channel).
    pub(crate) fn watch(redis: &'static Redis, key: &str) -> Watch {
        let notices = &*NOTICES;
        if !notices.listening.swap(true, Relaxed) {
            redis.background(listen(redis));
        }
        let mut watched = notices
            .watched
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = watched
            .entry(key.as_bytes().to_vec())
            .or_insert_with(|| Watched {
                notify: Arc::new(Notify::new()),
                watchers: 0,
            });
        entry.watchers += 1;
        Watch {
            key: key.as_bytes().to_vec(),
            notify: entry.notify.clone(),
        }
    }

    /// Wakes the callers waiting on `key`.
    fn deliver(&self, key: &[u8]) {
        let watched = self.watched.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(w) = watched.get(key) {
            w.notify.notify_waiters();
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut watched = NOTICES
            .watched
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(w) = watched.get_mut(&self.key) {
            w.watchers -= 1;
            if w.watchers == 0 {
                watched.remove(&self.key);
            }
        }
    }
}

/// Subscribes and delivers messages for the life of the process; after an error, subscribes
/// again after a second (waiters poll meanwhile). On a cluster, where a `PUBLISH` reaches every
/// node, it subscribes through the next seed node each time: a failed node is not retried
/// while others are up.
async fn listen(redis: &'static Redis) {
    let channel = &redis.channel;
    for client in redis.clients.iter().cycle() {
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await.ok()?;
            pubsub.subscribe(channel).await.ok()?;
            Some(pubsub)
        };
        if let Ok(Some(mut pubsub)) = tokio::time::timeout(
            redis.config.connect_timeout + Duration::from_secs(1),
            subscribed,
        )
        .await
        {
            let mut messages = pubsub.on_message();
            while let Some(message) = messages.next().await {
                NOTICES.deliver(message.get_payload_bytes());
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
