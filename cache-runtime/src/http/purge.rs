//! [`VarnishPurger`]: every invalidation of this process purged from Varnish by surrogate key
//! (`PURGE /` with the request header `xkey: <keys>`, the convention of vmod_xkey's
//! documentation), from a queue: coalesced, rate-limited, retried, counted, never failing or
//! slowing the invalidation.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::purge_request::{self, Target};
use super::surrogate;
use crate::invalidation::{Invalidated, InvalidationHook};

/// Purges the Varnish servers it names of the responses an invalidation made old, by the
/// surrogate keys [`CacheHeaders`](super::CacheHeaders) puts in each response's `xkey`
/// header. Install it with [`on_invalidate`](crate::on_invalidate), or call
/// [`purge`](Self::purge) yourself.
///
/// - **Purged:** `invalidate_tag(s)` purges the tags' keys; `clear()` (and `clear_all`) and
///   a key's invalidation (`f_invalidate`) purge the cache's key, so every response of that
///   cache (the edge does not know the cache's keys: tag what you purge one by one).
/// - **Never in the way:** an invalidation only adds keys to a queue per server; a thread per
///   server sends them (a server that is down delays no other).
///   Keys that come while a purge is under way go together in the next one (at most
///   `max_keys_per_request` keys each), and at most `max_per_second` requests are sent per
///   server.
/// - **Retried:** a purge that fails (no connection, a timeout, a `5xx`) is sent again after
///   100 ms, 200 ms, 400 ms… (at most 5 s) up to `attempts` times; then its keys are dropped,
///   counted ([`PurgeStats::failed`]) and logged (once a minute at most).
/// - **Batches:** at most `max_keys_per_request` keys and a 4 KiB header per request; a key
///   that cannot go in a header (empty, a space, a comma, a control character) is dropped and
///   counted ([`PurgeStats::dropped`]).
/// - **Lifetime:** make one per process (clones share it): its threads live as long as the
///   process, even after every clone is dropped.
/// - **The VCL:** see the README's "HTTP and the edge": `xkey.purge(req.http.xkey)` on
///   `PURGE`, allowed from the application's hosts only.
///
/// ```no_run
/// use cache_runtime::http::VarnishPurger;
///
/// let purger = VarnishPurger::new("http://127.0.0.1:6081").expect("a valid URL");
/// let _hook = cache_runtime::on_invalidate(purger.clone());
/// let _ = cache_runtime::invalidate_tag("product:42"); // PURGE / with `xkey: product:42`
/// ```
#[derive(Clone)]
pub struct VarnishPurger {
    /// One per server, each with its queue and thread.
    servers: Arc<[Arc<Server>]>,
    counts: Arc<Counts>,
}

/// The settings of a [`VarnishPurger`], from [`VarnishPurger::builder`].
#[derive(Clone, Debug)]
pub struct PurgerBuilder {
    urls: Vec<String>,
    header: String,
    max_per_second: u32,
    max_keys_per_request: usize,
    attempts: u32,
    timeout: Duration,
}

/// What a [`VarnishPurger`] did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PurgeStats {
    /// Purge requests a server answered with `2xx`.
    pub sent: u64,
    /// Keys purged (counted once per request that carried them, per server).
    pub keys: u64,
    /// Requests sent again after a failure.
    pub retries: u64,
    /// Requests given up after every attempt failed (their keys dropped).
    pub failed: u64,
    /// Keys dropped before any request: a full queue (100,000 keys a server), or a key that
    /// cannot go in a header.
    pub dropped: u64,
    /// Keys waiting in the queues now (a key counts once per server).
    pub pending: u64,
}

/// The purger's error: a URL it cannot use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgerError(String);

impl fmt::Display for PurgerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PurgerError {}

/// One server's queue and worker.
struct Server {
    target: Target,
    settings: PurgerBuilder,
    queue: Mutex<Queue>,
    /// Signalled when keys are queued, and when the queue is empty and nothing is in flight.
    changed: Condvar,
    counts: Arc<Counts>,
}

/// What every server's worker counts.
#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    keys: AtomicU64,
    retries: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    /// When the last failure was logged.
    logged: Mutex<Option<Instant>>,
}

#[derive(Default)]
struct Queue {
    keys: BTreeSet<String>,
    /// A purge is under way (its keys already out of `keys`).
    busy: bool,
}

/// The most keys a server's queue holds; more are dropped, counted as failed.
const MAX_QUEUED: usize = 100_000;

/// The longest `xkey` header a request carries (Varnish's default `http_req_hdr_len` is 8 KiB).
const MAX_HEADER_BYTES: usize = 4096;

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Whether `key` can go in a space-separated header: visible ASCII but `,`, not empty.
fn is_token(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_graphic() && b != b',')
}

impl VarnishPurger {
    /// A purger of the Varnish at `url` (`http://host:port`), with the default settings.
    pub fn new(url: &str) -> Result<VarnishPurger, PurgerError> {
        VarnishPurger::builder().url(url).build()
    }

    /// The settings of a purger: its servers, header, rate and retries.
    pub fn builder() -> PurgerBuilder {
        PurgerBuilder {
            urls: Vec::new(),
            header: "xkey".to_owned(),
            max_per_second: 100,
            max_keys_per_request: 256,
            attempts: 5,
            timeout: Duration::from_secs(2),
        }
    }

    /// Queues `keys` (surrogate keys, as [`surrogate_key`](super::surrogate_key) makes them)
    /// to purge from every server.
    pub fn purge<I, S>(&self, keys: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let (keys, bad): (Vec<String>, Vec<String>) =
            keys.into_iter().map(Into::into).partition(|k| is_token(k));
        let mut full = 0;
        for server in self.servers.iter() {
            let mut queue = server.lock();
            for key in &keys {
                match queue.keys.len() < MAX_QUEUED {
                    true => {
                        queue.keys.insert(key.clone());
                    }
                    false => full += 1,
                }
            }
            drop(queue);
            server.changed.notify_all();
        }
        let bad = bad.len() as u64;
        if full + bad > 0 {
            self.counts.dropped.fetch_add(full + bad, Ordering::Relaxed);
            tracing::warn!(
                full,
                bad,
                "cache-runtime: purge keys dropped (a queue is full, or a key is empty or has \
                 a space, comma or control character: make keys with `http::surrogate_key`)"
            );
        }
    }

    /// What it did so far.
    pub fn stats(&self) -> PurgeStats {
        let counts = &self.counts;
        PurgeStats {
            sent: counts.sent.load(Ordering::Relaxed),
            keys: counts.keys.load(Ordering::Relaxed),
            retries: counts.retries.load(Ordering::Relaxed),
            failed: counts.failed.load(Ordering::Relaxed),
            dropped: counts.dropped.load(Ordering::Relaxed),
            pending: self
                .servers
                .iter()
                .map(|s| s.lock().keys.len() as u64)
                .sum(),
        }
    }

    /// Waits until every key queued so far was sent to every server (or given up), at most
    /// `timeout`; whether every queue is empty and idle. For tests and orderly shutdowns.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        self.servers.iter().all(|server| server.idle_by(deadline))
    }
}

impl InvalidationHook for VarnishPurger {
    fn invalidated(&self, what: Invalidated<'_>) {
        self.purge(surrogate::purged(what));
    }
}

impl fmt::Debug for VarnishPurger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VarnishPurger")
            .field(
                "servers",
                &self
                    .servers
                    .iter()
                    .map(|s| s.target.to_string())
                    .collect::<Vec<_>>(),
            )
            .field("stats", &self.stats())
            .finish()
    }
}

impl PurgerBuilder {
    /// Adds a Varnish server, `http://host:port` (a path is ignored: the request is `PURGE /`).
    #[must_use]
    pub fn url(mut self, url: &str) -> PurgerBuilder {
        self.urls.push(url.to_owned());
        self
    }

    /// The request header that carries the keys (default `xkey`).
    #[must_use]
    pub fn header(mut self, name: &str) -> PurgerBuilder {
        self.header = name.to_owned();
        self
    }

    /// The most purge requests per second to each server (default 100; at least 1).
    #[must_use]
    pub fn max_per_second(mut self, rate: u32) -> PurgerBuilder {
        self.max_per_second = rate.max(1);
        self
    }

    /// The most keys one request carries (default 256; at least 1).
    #[must_use]
    pub fn max_keys_per_request(mut self, keys: usize) -> PurgerBuilder {
        self.max_keys_per_request = keys.max(1);
        self
    }

    /// How many times a request is sent before its keys are dropped (default 5; at least 1).
    #[must_use]
    pub fn attempts(mut self, attempts: u32) -> PurgerBuilder {
        self.attempts = attempts.max(1);
        self
    }

    /// How long one attempt may take, connection included (default 2 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> PurgerBuilder {
        self.timeout = timeout;
        self
    }

    /// The purger, its thread started. An error names a URL it cannot use (not `http://`,
    /// no host, a bad port, a header name that is not a token) or the lack of any.
    pub fn build(self) -> Result<VarnishPurger, PurgerError> {
        if self.urls.is_empty() {
            return Err(PurgerError("no Varnish URL given".to_owned()));
        }
        if http::HeaderName::from_bytes(self.header.as_bytes()).is_err() {
            return Err(PurgerError(format!(
                "`{}` is not a header name",
                self.header
            )));
        }
        let targets = self
            .urls
            .iter()
            .map(|url| Target::parse(url).map_err(PurgerError))
            .collect::<Result<Vec<_>, _>>()?;
        let counts = Arc::new(Counts::default());
        let mut servers = Vec::with_capacity(targets.len());
        for target in targets {
            let server = Arc::new(Server {
                target,
                settings: self.clone(),
                queue: Mutex::new(Queue::default()),
                changed: Condvar::new(),
                counts: Arc::clone(&counts),
            });
            let worker = Arc::clone(&server);
            std::thread::Builder::new()
                .name("cache-runtime-purge".to_owned())
                .spawn(move || worker.run())
                .map_err(|e| PurgerError(format!("starting a purge thread: {e}")))?;
            servers.push(server);
        }
        Ok(VarnishPurger {
            servers: servers.into(),
            counts,
        })
    }
}

impl Server {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The server's purge thread: takes the keys queued, sends them, and again, at the rate
    /// allowed.
    fn run(&self) {
        let interval = Duration::from_secs(1) / self.settings.max_per_second;
        let mut last: Option<Instant> = None;
        loop {
            let batch = self.next_batch();
            if let Some(at) = last {
                std::thread::sleep(interval.saturating_sub(at.elapsed()));
            }
            last = Some(Instant::now());
            self.send(&batch);
            let mut queue = self.lock();
            queue.busy = false;
            drop(queue);
            self.changed.notify_all();
        }
    }

    /// Waits for keys; takes up to `max_keys_per_request` of them, marking the queue busy.
    fn next_batch(&self) -> Vec<String> {
        let mut queue = self.lock();
        while queue.keys.is_empty() {
            queue = self
                .changed
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
        }
        queue.busy = true;
        let mut batch = Vec::new();
        let mut bytes = 0;
        while batch.len() < self.settings.max_keys_per_request {
            let Some(key) = queue.keys.first() else {
                break;
            };
            // One key at least, however long; then within the header's limit.
            if !batch.is_empty() && bytes + 1 + key.len() > MAX_HEADER_BYTES {
                break;
            }
            bytes += 1 + key.len();
            if let Some(key) = queue.keys.pop_first() {
                batch.push(key);
            }
        }
        batch
    }

    /// Sends `keys` to the server, retried with a doubling backoff; counted.
    fn send(&self, keys: &[String]) {
        let target = &self.target;
        let header = (self.settings.header.as_str(), keys.join(" "));
        let mut backoff = Duration::from_millis(100);
        for attempt in 1..=self.settings.attempts {
            match purge_request::send(target, &header, self.settings.timeout) {
                Ok(()) => {
                    self.counts.sent.fetch_add(1, Ordering::Relaxed);
                    self.counts
                        .keys
                        .fetch_add(keys.len() as u64, Ordering::Relaxed);
                    #[cfg(feature = "metrics")]
                    metrics::counter!("cache.purge.sent.total").increment(1);
                    return;
                }
                Err(e) if attempt < self.settings.attempts && e.retry => {
                    self.counts.retries.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(e) => {
                    self.counts.failed.fetch_add(1, Ordering::Relaxed);
                    #[cfg(feature = "metrics")]
                    metrics::counter!("cache.purge.failed.total").increment(1);
                    self.log_failure(target, keys.len(), &e.message);
                    return;
                }
            }
        }
    }

    /// Logs a purge given up, once a minute at most (for every server together).
    fn log_failure(&self, target: &Target, keys: usize, why: &str) {
        {
            let mut logged = self
                .counts
                .logged
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if logged.is_some_and(|at| at.elapsed() < Duration::from_secs(60)) {
                return;
            }
            *logged = Some(Instant::now());
        }
        tracing::warn!(
            server = %target,
            keys,
            error = why,
            "cache-runtime: a purge failed after every attempt; its keys were dropped (logged once a minute)"
        );
    }

    /// Waits until the queue is empty and idle, at most until `deadline`.
    fn idle_by(&self, deadline: Instant) -> bool {
        let mut queue = self.lock();
        while queue.busy || !queue.keys.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            queue = self
                .changed
                .wait_timeout(queue, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}
