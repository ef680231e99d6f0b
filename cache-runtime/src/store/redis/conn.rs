//! The connection to Redis and where its I/O runs.
//!
//! Redis I/O belongs to a small tokio runtime owned by this crate (one worker thread, started at
//! the first Redis call), on one connection ([`Conn`]): a server's multiplexed
//! `ConnectionManager` or Redis Cluster's async connection, both of which reconnect by
//! themselves. Sync cached functions hand an operation to that runtime and block on its answer,
//! so they work from plain threads and from inside any tokio runtime without deadlocking it.
//! Async ones poll the operation on their own task with that runtime as the tokio context, so
//! the connection's tasks and timers never live on the caller's runtime. Every operation runs under a deadline (`op_timeout`)
//! that also bounds the wait for a reconnect. Connecting is lazy: nothing blocks or fails at
//! start-up when Redis is absent.

use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{
    AtomicBool, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::SeqCst,
};
use std::time::Duration;

use redis::aio::ConnectionManager;

use crate::breaker::Breaker;
use crate::config::{self, Config};

/// A failed operation: the store's error, with Redis's meaning of each variant: `Failed`,
/// Redis failed or timed out (counts towards the circuit breaker; an outage, logged once);
/// `Refused`, Redis answered and refused this one command (`WRONGTYPE`, `OOM`, a script
/// error, a reply of another shape); `Unavailable`, not tried (the circuit breaker is open, or
/// the settings name no usable Redis); `Data`, the data is at fault.
pub(crate) use crate::store::StoreError;

/// The connection every operation uses: one server's multiplexed connection (which
/// reconnects by itself), or Redis Cluster's (which follows the slots and reconnects its
/// nodes). One type for both: the operations are written once.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
    /// A connection of its own (the invalidation log's reader), without reconnection.
    Plain(redis::aio::MultiplexedConnection),
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
            Conn::Plain(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Plain(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
            Conn::Plain(c) => c.get_db(),
        }
    }
}

pub(crate) struct Redis {
    runtime: tokio::runtime::Runtime,
    connection: Conn,
    /// One client per node the settings name (one for a single server; the seed nodes of a
    /// cluster), for the pub/sub connection of publish notifications (`notify.rs`), which
    /// moves to the next node when its node fails.
    pub(crate) clients: Vec<redis::Client>,
    outage: Outage,
    /// `{prefix}cache-runtime:published`.
    pub(crate) channel: String,
    pub(crate) config: &'static Config,
    pub(crate) breaker: Breaker,
}

static REDIS: OnceLock<Result<Redis, String>> = OnceLock::new();

/// What TLS files become: redis-rs's certificates, or (without the `tls` feature) nothing
/// that can exist.
#[cfg(feature = "tls")]
type Certs = redis::TlsCertificates;
#[cfg(not(feature = "tls"))]
type Certs = std::convert::Infallible;

/// The TLS files of the settings, read (`None` without any).
fn tls_certs(config: &Config) -> Result<Option<Certs>, String> {
    let tls = &config.tls;
    if tls.ca.is_none() && tls.cert.is_none() {
        return Ok(None);
    }
    #[cfg(feature = "tls")]
    {
        let read = |what: &str, path: &std::path::Path| {
            std::fs::read(path).map_err(|e| format!("cannot read the TLS {what} {path:?}: {e}"))
        };
        let root_cert = tls.ca.as_deref().map(|p| read("CA", p)).transpose()?;
        let client_tls = match (&tls.cert, &tls.key) {
            (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
                client_cert: read("client certificate", cert)?,
                client_key: read("client key", key)?,
            }),
            _ => None,
        };
        Ok(Some(redis::TlsCertificates {
            client_tls,
            root_cert,
        }))
    }
    #[cfg(not(feature = "tls"))]
    Err("TLS files are given, but this build has no `tls` feature".to_owned())
}

/// A client of `url` (a single server, or one node of a cluster) with the settings' TLS files
/// (without the `tls` feature redis-rs refuses a `rediss://` URL).
fn client(config: &Config, url: &str) -> Result<redis::Client, String> {
    let bad_url = |e: redis::RedisError| {
        format!(
            "bad Redis URL {}: {}",
            config::redact_url(url),
            scrub(config, &e)
        )
    };
    match tls_certs(config)? {
        None => redis::Client::open(url).map_err(bad_url),
        #[cfg(feature = "tls")]
        Some(certs) => redis::Client::build_with_tls(url, certs).map_err(bad_url),
        #[cfg(not(feature = "tls"))]
        Some(never) => match never {},
    }
}

/// The clients of every node the settings name: the server, or each seed node of a cluster.
fn clients(config: &Config) -> Result<Vec<redis::Client>, String> {
    match config.cluster.is_empty() {
        true => Ok(vec![client(config, &config.redis_url)?]),
        false => config
            .cluster
            .iter()
            .map(|url| client(config, url))
            .collect(),
    }
}

/// A Redis Cluster client of the settings' seed nodes, with their TLS files, answering within
/// `response_timeout` if given.
fn cluster_client(
    config: &Config,
    response_timeout: Option<Duration>,
) -> Result<redis::cluster::ClusterClient, String> {
    let mut builder =
        redis::cluster::ClusterClient::builder(config.cluster.iter().map(String::as_str))
            .connection_timeout(config.connect_timeout)
            .retries(2);
    if let Some(timeout) = response_timeout {
        builder = builder.response_timeout(timeout);
    }
    #[cfg(feature = "tls")]
    if let Some(certs) = tls_certs(config)? {
        builder = builder.certs(certs);
    }
    builder.build().map_err(|e| {
        format!(
            "cannot set up the Redis Cluster client: {}",
            scrub(config, &e)
        )
    })
}

/// The Redis Cluster connection of the settings' seed nodes, connecting in the background
/// (the first operation waits for it, under its deadline).
fn cluster(config: &Config) -> Result<redis::cluster_async::ClusterConnection, String> {
    let client = cluster_client(config, None)?;
    let settings =
        redis::cluster::ClusterConfig::new().set_connection_timeout(config.connect_timeout);
    Ok(client.get_pending_async_connection_with_config(settings))
}

impl Redis {
    /// The process's Redis connection, set up (not connected) on first use. Settings that name
    /// no usable Redis (a URL that does not parse, a bad environment) are an outage for the
    /// life of the process: logged once, here, and every call answers through the fallback.
    pub(crate) fn get() -> Result<&'static Redis, StoreError> {
        REDIS
            .get_or_init(|| {
                Redis::new(config::current()).inspect_err(|why| {
                    tracing::error!(
                        error = %why,
                        "cache-runtime: Redis cannot be used; every cached call is answered by \
                         the in-process fallback"
                    );
                })
            })
            .as_ref()
            .map_err(|_| StoreError::Unavailable)
    }

    /// How many times the breaker closed after being open; 0 before the first use (never
    /// starts the connection).
    pub(crate) fn recoveries() -> u64 {
        match REDIS.get() {
            Some(Ok(redis)) => redis.breaker.recoveries(),
            _ => 0,
        }
    }

    /// Whether calls skip Redis now: the circuit breaker is open, or the settings name no
    /// usable Redis. `false` before the first use.
    pub(crate) fn is_skipped() -> bool {
        match REDIS.get() {
            None => false,
            Some(Ok(redis)) => redis.breaker.is_open(),
            Some(Err(_)) => true,
        }
    }

    fn new(config: &'static Config) -> Result<Redis, String> {
        if let Some(why) = &config.unusable {
            return Err(why.clone());
        }
        // The client first: it needs no runtime, and a runtime must not be dropped on an error
        // path, which may run inside the caller's async runtime.
        // rustls picks its provider by itself only when the build holds exactly one; a program
        // that also compiles another (aws-lc-rs) would panic in redis-rs's TLS set-up. With a
        // `rediss://` URL, ours (ring) becomes the process default unless the program
        // installed one first.
        #[cfg(feature = "tls")]
        if config.redis_url.starts_with("rediss://")
            && rustls::crypto::CryptoProvider::get_default().is_none()
        {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let clients = clients(config)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("cache-runtime-redis")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the Redis I/O runtime: {e}"))?;
        let manager = redis::aio::ConnectionManagerConfig::new()
            // No response timeout of its own: the deadline around every operation bounds it (and
            // the reconnect waits it would not cover), with one timer per operation, not two.
            .set_response_timeout(None)
            .set_connection_timeout(Some(config.connect_timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let connection = {
            let _guard = runtime.enter();
            if config.cluster.is_empty() {
                clients[0]
                    .get_connection_manager_lazy(manager)
                    .map(Conn::Single)
                    .map_err(|e| {
                        format!("cannot set up the Redis connection: {}", scrub(config, &e))
                    })
            } else {
                cluster(config).map(Conn::Cluster)
            }
        };
        let connection = match connection {
            Ok(connection) => connection,
            Err(why) => {
                // Dropping a runtime blocks, which panics inside an async runtime.
                runtime.shutdown_background();
                return Err(why);
            }
        };
        let breaker = Breaker::new(config.breaker_threshold, config.breaker_cooldown);
        Ok(Redis {
            runtime,
            connection,
            clients,
            outage: Outage::default(),
            channel: format!("{}cache-runtime:published", config.key_prefix),
            config,
            breaker,
        })
    }

    /// A handle to the connection, for one operation.
    pub(crate) fn connection(&self) -> Conn {
        self.connection.clone()
    }

    /// A connection of its own, for a reader that blocks (`XREAD BLOCK`): to the server, or to
    /// the cluster (a cluster connection of its own), answering within `response_timeout`.
    pub(crate) async fn own_connection(
        &self,
        response_timeout: Duration,
    ) -> redis::RedisResult<Conn> {
        if self.config.cluster.is_empty() {
            let config = redis::AsyncConnectionConfig::new()
                .set_response_timeout(Some(response_timeout))
                .set_connection_timeout(Some(self.config.connect_timeout));
            let con = self.clients[0]
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            return Ok(Conn::Plain(con));
        }
        let client = cluster_client(self.config, Some(response_timeout)).map_err(|why| {
            redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, "cluster", why))
        })?;
        Ok(Conn::Cluster(client.get_async_connection().await?))
    }

    /// Whether this is Redis Cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.connection, Conn::Cluster(_))
    }

    /// `cmd` on the cluster node at `host:port` (Redis Cluster only: `SCAN` of one primary),
    /// bounded by the operation deadline.
    pub(crate) async fn query_node<T: redis::FromRedisValue>(
        &self,
        cmd: redis::Cmd,
        host: &str,
        port: u16,
    ) -> Result<T, StoreError> {
        let Conn::Cluster(mut conn) = self.connection() else {
            return Err(StoreError::Failed("not a Redis Cluster".into()));
        };
        let route = redis::cluster_routing::RoutingInfo::SingleNode(
            redis::cluster_routing::SingleNodeRoutingInfo::ByAddress {
                host: host.to_owned(),
                port,
            },
        );
        let answer = self
            .deadline(async move { conn.route_command(cmd, route).await })
            .await?;
        redis::from_redis_value(answer)
            .map_err(|e| StoreError::Refused(format!("unexpected reply: {e}")))
    }

    /// Runs `op` on the Redis runtime under the operation deadline and blocks until it ends.
    /// Skips at once (no latency) while the circuit breaker is open.
    pub(crate) fn block<T: Send + 'static>(
        &'static self,
        op: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        if !self.breaker.allow() {
            return Err(StoreError::Unavailable);
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            let _ = tx.send(op.await);
        });
        let result = rx
            .recv()
            .unwrap_or_else(|_| Err(StoreError::Failed("the Redis runtime stopped".into())));
        self.record(&result);
        result
    }

    /// Runs `op` on the Redis runtime without waiting for it (a lease released from a `Drop`),
    /// unless the circuit breaker is open.
    pub(crate) fn spawn(
        &'static self,
        op: impl Future<Output = Result<(), StoreError>> + Send + 'static,
    ) {
        if !self.breaker.is_open() {
            self.runtime.spawn(async move {
                let _ = op.await;
            });
        }
    }

    /// Runs `op` (an operation that went through [`Redis::run`]) on the Redis runtime, and
    /// blocks the calling thread until it is done: what a sync caller does.
    pub(crate) fn wait<T: Send + 'static>(
        &self,
        op: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            let _ = tx.send(op.await);
        });
        rx.recv()
            .unwrap_or_else(|_| Err(StoreError::Failed("the Redis runtime stopped".into())))
    }

    /// Runs a task of the library (the notification listener) on the Redis runtime.
    pub(crate) fn background(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.runtime.spawn(task);
    }

    /// Runs `task` on the Redis runtime, whoever waits for it (a caller cancelled while it
    /// waits does not stop it).
    pub(crate) fn task<T: Send + 'static>(
        &self,
        task: impl Future<Output = T> + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        self.runtime.spawn(task)
    }

    /// Feeds an operation's outcome to the circuit breaker, and logs an outage once.
    fn record<T>(&self, result: &Result<T, StoreError>) {
        match result {
            // Redis answered (a refusal of one command is the cache's own failure).
            Ok(_) | Err(StoreError::Data(_) | StoreError::Refused(_)) => {
                self.breaker.success();
                self.outage.success(self.config.breaker_cooldown);
            }
            Err(StoreError::Failed(why)) => {
                let opened = self.breaker.failure();
                self.outage
                    .failure(why, opened, self.config.breaker_cooldown);
            }
            Err(StoreError::Unavailable) => {}
        }
    }

    /// Whether Redis is failing now (an outage was logged and has not ended): a cache's own
    /// failures are then counted, not logged again.
    pub(crate) fn in_outage() -> bool {
        matches!(REDIS.get(), Some(Ok(redis)) if redis.outage.failing.load(Relaxed))
    }

    /// Runs `op` for an async caller, without blocking its executor or handing it to another
    /// thread. Skips at once (no latency) while the circuit breaker is open.
    pub(crate) async fn run<T: Send + 'static>(
        &'static self,
        op: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        if !self.breaker.allow() {
            return Err(StoreError::Unavailable);
        }
        // Polled here, on the caller's task (no hand-over to another thread), but with the Redis
        // runtime as the tokio context: whatever it starts (redis-rs's reconnect task, a
        // connection's driver, its timers) belongs to the Redis runtime, never to the caller's
        // runtime, which may stop, or may not be tokio at all.
        let handle = self.runtime.handle();
        let mut op = std::pin::pin!(op);
        let result = std::future::poll_fn(|cx| {
            let _context = handle.enter();
            op.as_mut().poll(cx)
        })
        .await;
        self.record(&result);
        result
    }

    /// `query` on the connection, bounded by the operation deadline.
    pub(crate) async fn query<T: redis::FromRedisValue>(
        &self,
        cmd: redis::Cmd,
    ) -> Result<T, StoreError> {
        let mut conn = self.connection();
        self.deadline(async move { cmd.query_async::<T>(&mut conn).await })
            .await
    }

    /// A pipeline on the connection (one round trip), bounded by the operation deadline.
    pub(crate) async fn pipeline<T: redis::FromRedisValue>(
        &self,
        pipe: redis::Pipeline,
    ) -> Result<T, StoreError> {
        let mut conn = self.connection();
        self.deadline(async move { pipe.query_async::<T>(&mut conn).await })
            .await
    }

    /// A script invocation on the connection, bounded by the operation deadline.
    pub(crate) async fn eval<T: redis::FromRedisValue>(
        &self,
        script: &'static redis::Script,
        keys: &[&str],
        args: &[&[u8]],
    ) -> Result<T, StoreError> {
        let mut invocation = script.prepare_invoke();
        for k in keys {
            invocation.key(*k);
        }
        for a in args {
            invocation.arg(*a);
        }
        let mut conn = self.connection();
        self.deadline(async move { invocation.invoke_async::<T>(&mut conn).await })
            .await
    }

    async fn deadline<T>(
        &self,
        op: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.config.op_timeout, op).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) if is_refusal(&e) => Err(StoreError::Refused(scrub(self.config, &e))),
            Ok(Err(e)) => Err(StoreError::Failed(scrub(self.config, &e))),
            Err(_) => Err(StoreError::Failed(format!(
                "Redis did not answer within {:?}",
                self.config.op_timeout
            ))),
        }
    }
}

/// The text of a redis-rs error, with the password (if any) removed.
fn scrub(config: &Config, error: &redis::RedisError) -> String {
    config
        .passwords()
        .fold(error.to_string(), |text, p| text.replace(p, "***"))
}

/// What is logged of an outage: its first failure (`WARN`), the circuit breaker's first opening
/// (`INFO`), and its end (`INFO`, with the count of failed operations); everything between at
/// `DEBUG` (and counted in each cache's `store_errors`). An outage ends once operations have
/// succeeded for a breaker cooldown with no failure among them: a cluster with one primary
/// down, whose other primaries answer between the failures, is one outage, not one per probe.
#[derive(Default)]
struct Outage {
    failing: AtomicBool,
    breaker_opened: AtomicBool,
    failures: AtomicU64,
    /// Since when (real clock, ms) operations have succeeded with no failure; 0 after one.
    calm_since_ms: AtomicU64,
}

impl Outage {
    fn failure(&self, why: &str, opened: bool, cooldown: Duration) {
        self.failures.fetch_add(1, SeqCst);
        self.calm_since_ms.store(0, SeqCst);
        if !self.failing.swap(true, SeqCst) {
            tracing::warn!(
                error = %why,
                "cache-runtime: Redis failed; cached calls go on without it until it answers \
                 again (failures are counted in store_errors, and logged at debug until then)"
            );
        } else {
            tracing::debug!(error = %why, "cache-runtime: Redis failed again");
        }
        if opened {
            match self.breaker_opened.swap(true, SeqCst) {
                false => tracing::info!(
                    ?cooldown,
                    "cache-runtime: circuit breaker open; calls skip Redis and use the \
                     in-process fallback, with a probe every cooldown"
                ),
                true => tracing::debug!("cache-runtime: a probe failed; circuit breaker open"),
            }
        }
    }

    /// After a successful operation: one load while Redis is healthy.
    fn success(&self, cooldown: Duration) {
        if !self.failing.load(Acquire) {
            return;
        }
        let now = crate::clock::now_ms().max(1);
        let calm_since = self.calm_since_ms.load(SeqCst);
        if calm_since == 0 {
            let _ = self.calm_since_ms.compare_exchange(0, now, SeqCst, SeqCst);
            return;
        }
        let cooldown_ms = u64::try_from(cooldown.as_millis()).unwrap_or(u64::MAX);
        if now >= calm_since.saturating_add(cooldown_ms) && self.failing.swap(false, SeqCst) {
            let failed_operations = self.failures.swap(0, SeqCst);
            match self.breaker_opened.swap(false, SeqCst) {
                true => tracing::info!(
                    failed_operations,
                    "cache-runtime: Redis answers again; circuit breaker closed"
                ),
                false => tracing::info!(failed_operations, "cache-runtime: Redis answers again"),
            }
        }
    }
}

/// Whether Redis answered and refused this one command because of the command or the key
/// (`WRONGTYPE`, `OOM`, a script's `ERR`, `NOSCRIPT`, `EXECABORT`, `CROSSSLOT`, a reply of
/// another type): the cache's own failure, logged per cache. Anything else (the connection, a
/// timeout, the credentials or rights, a server loading, busy or without its primary, an
/// unknown error) is an outage, logged once.
fn is_refusal(error: &redis::RedisError) -> bool {
    use redis::{ErrorKind as Kind, ServerErrorKind as Server};
    !error.is_io_error()
        && !error.is_timeout()
        && !error.is_connection_dropped()
        && !error.is_connection_refusal()
        && (matches!(
            error.kind(),
            Kind::UnexpectedReturnType
                | Kind::Server(
                    Server::ResponseError
                        | Server::ExecAbort
                        | Server::NoScript
                        | Server::CrossSlot
                )
        ) || matches!(error.code(), Some("WRONGTYPE" | "OOM")))
}
