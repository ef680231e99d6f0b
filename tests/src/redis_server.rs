//! A private `redis-server` for the Redis tests.
//!
//! The harness starts its own server on a free loopback port (from `redis-server` on `PATH`),
//! watched by a small shell loop that stops that server, and only that one, when the test
//! process ends. `CACHE_TEST_REDIS_URL` points the tests at an existing server instead. Where
//! neither is possible the tests say so loudly and skip, unless `CACHE_REQUIRE_REDIS=1`, where
//! they fail.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// A Redis server the tests may use.
pub struct Server {
    /// `redis://127.0.0.1:<port>`.
    pub url: String,
    /// The port, for restarts of a server of our own.
    pub port: u16,
    /// How it listens (`--port <port>`, or TLS settings), for restarts.
    listen: String,
    watcher: Mutex<Option<Child>>,
}

fn required() -> bool {
    std::env::var("CACHE_REQUIRE_REDIS").is_ok_and(|v| v == "1")
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until something accepts connections on `port`.
fn wait_for(port: u16, patience: Duration) -> bool {
    let give_up = Instant::now() + patience;
    while Instant::now() < give_up {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

impl Server {
    /// Starts `redis-server` on a free loopback port, stopped when this process ends.
    pub fn start() -> Result<Server, String> {
        Self::start_listening(|port| format!("--port {port}"), "redis")
    }

    /// Starts `redis-server` with TLS only on a free loopback port (`rediss://`), with the
    /// server certificate and key and the CA that client certificates must chain to (mutual
    /// TLS: a client without one is refused).
    pub fn start_tls(certs: &crate::certs::Certs) -> Result<Server, String> {
        Self::start_listening(
            |port| format!("--port 0 --tls-port {port} {}", certs.server_args()),
            "rediss",
        )
    }

    fn start_listening(listen: impl Fn(u16) -> String, scheme: &str) -> Result<Server, String> {
        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        let listen = listen(port);
        // A cluster node's state file from an earlier server on this port would make it join
        // that old cluster.
        let dir = std::env::temp_dir().join(format!("cache-runtime-redis-{port}"));
        let _ = std::fs::remove_file(dir.join("nodes.conf"));
        let watcher = Self::spawn(port, &listen)?;
        let server = Server {
            url: format!("{scheme}://127.0.0.1:{port}"),
            port,
            listen,
            watcher: Mutex::new(Some(watcher)),
        };
        if wait_for(port, Duration::from_secs(10)) {
            Ok(server)
        } else {
            Err(format!("redis-server did not start on port {port}"))
        }
    }

    /// The server, under a shell loop that kills it when the test process (our pid) is gone.
    fn spawn(port: u16, listen: &str) -> Result<Child, String> {
        let dir = std::env::temp_dir().join(format!("cache-runtime-redis-{port}"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {dir:?}: {e}"))?;
        let script = format!(
            "redis-server {listen} --bind 127.0.0.1 --save '' --appendonly no \
             --dir '{dir}' --loglevel warning & srv=$!; \
             trap 'kill $srv 2>/dev/null' EXIT TERM INT; \
             while kill -0 {pid} 2>/dev/null && kill -0 $srv 2>/dev/null; do sleep 0.2; done",
            dir = dir.display(),
            pid = std::process::id(),
        );
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run sh: {e}"))
    }

    /// Stops the server (kills the watcher, which stops the server it started).
    pub fn stop(&self) {
        let mut watcher = self.watcher.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut child) = watcher.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
        let give_up = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again on the same port.
    pub fn restart(&self) -> Result<(), String> {
        self.stop();
        let child = Self::spawn(self.port, &self.listen)?;
        *self.watcher.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
        if wait_for(self.port, Duration::from_secs(10)) {
            Ok(())
        } else {
            Err("redis-server did not restart".into())
        }
    }
}

/// A local Redis Cluster of primaries (no replicas), each a [`Server`] of this process.
pub struct Cluster {
    /// The nodes, one per primary.
    pub nodes: Vec<Server>,
}

impl Cluster {
    /// Starts `primaries` cluster-enabled servers and joins them with `redis-cli --cluster
    /// create`; returns once every node says `cluster_state:ok`.
    pub fn start(primaries: usize) -> Result<Cluster, String> {
        Self::start_with_replicas(primaries, 0)
    }

    /// [`Cluster::start`] with `replicas` replicas per primary (the first `primaries` nodes are
    /// the primaries), failing over after 2 s (`--cluster-node-timeout 2000`, any replica may
    /// be promoted: `--cluster-replica-validity-factor 0`).
    pub fn start_with_replicas(primaries: usize, replicas: usize) -> Result<Cluster, String> {
        // A free port can be taken by another test process between our look and the server's
        // bind (then `create` finds a node of another cluster): try again on other ports.
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start(primaries, replicas, None) {
                Ok(cluster) => return Ok(cluster),
                Err(why) => last = why,
            }
        }
        Err(last)
    }

    /// A cluster of `primaries` that speaks only TLS (clients and the cluster bus), requiring
    /// client certificates signed by `certs`' CA.
    pub fn start_tls(primaries: usize, certs: &crate::certs::Certs) -> Result<Cluster, String> {
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start(primaries, 0, Some(certs)) {
                Ok(cluster) => return Ok(cluster),
                Err(why) => last = why,
            }
        }
        Err(last)
    }

    fn try_start(
        primaries: usize,
        replicas: usize,
        tls: Option<&crate::certs::Certs>,
    ) -> Result<Cluster, String> {
        let cluster = "--cluster-enabled yes --cluster-config-file nodes.conf \
                       --cluster-node-timeout 2000 --cluster-replica-validity-factor 0";
        let nodes = (0..primaries * (1 + replicas))
            .map(|_| match tls {
                None => Server::start_listening(|port| format!("--port {port} {cluster}"), "redis"),
                Some(c) => Server::start_listening(
                    |port| {
                        let tls = c.server_args();
                        format!("--port 0 --tls-port {port} --tls-cluster yes {tls} {cluster}")
                    },
                    "rediss",
                ),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        // Bounded: `create` waits for the nodes to meet, for ever if they cannot.
        let mut cli = Command::new("timeout");
        cli.arg("60").arg("redis-cli");
        if let Some(c) = tls {
            cli.arg("--tls")
                .arg("--cacert")
                .arg(&c.ca)
                .arg("--cert")
                .arg(&c.client_cert)
                .arg("--key")
                .arg(&c.client_key);
        }
        let created = cli
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .arg("--cluster-replicas")
            .arg(replicas.to_string())
            .arg("--cluster-yes")
            .output()
            .map_err(|e| format!("cannot run redis-cli: {e}"))?;
        if !created.status.success() {
            return Err(format!(
                "redis-cli --cluster create failed: {}",
                String::from_utf8_lossy(&created.stdout)
            ));
        }
        let give_up = Instant::now() + Duration::from_secs(30);
        for node in &nodes {
            let client = match tls {
                None => redis::Client::open(node.url.as_str()),
                Some(c) => redis::Client::build_with_tls(node.url.as_str(), c.redis_certs()),
            };
            let mut con = client
                .and_then(|c| c.get_connection())
                .map_err(|e| e.to_string())?;
            loop {
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query(&mut con)
                    .map_err(|e| e.to_string())?;
                if info.contains("cluster_state:ok") {
                    break;
                }
                if Instant::now() > give_up {
                    return Err("the cluster never reached cluster_state:ok".into());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(Cluster { nodes })
    }

    /// The nodes' URLs.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.url.clone()).collect()
    }
}

/// Whether the tests that use [`setup`] run against a Redis Cluster of their own
/// (`CACHE_TEST_REDIS_CLUSTER=1`; `.ci/run` runs a part of the suite so).
pub fn cluster_mode() -> bool {
    std::env::var("CACHE_TEST_REDIS_CLUSTER").is_ok_and(|v| v == "1")
}

/// The cluster of this process in cluster mode: 3 primaries, started at the first use.
fn cluster() -> Option<&'static [String]> {
    static CLUSTER: LazyLock<Option<Vec<String>>> = LazyLock::new(|| {
        if let Ok(nodes) = std::env::var(CLUSTER_NODES) {
            return Some(nodes.split(' ').map(str::to_owned).collect());
        }
        start_cluster()
    });
    CLUSTER.as_deref()
}

/// Set for a child process of a test: the nodes of the parent's cluster.
const CLUSTER_NODES: &str = "CACHE_TEST_REDIS_CLUSTER_NODES";

/// What a child process of a test needs in its environment to use the same Redis as this
/// process: the server's URL, or in cluster mode the cluster's nodes.
pub fn child_env() -> Vec<(&'static str, String)> {
    let mut env = Vec::new();
    if let Some(url) = url() {
        env.push(("CACHE_TEST_REDIS_URL", url.to_owned()));
    }
    if cluster_mode()
        && let Some(nodes) = cluster()
    {
        env.push((CLUSTER_NODES, nodes.join(" ")));
    }
    env
}

fn start_cluster() -> Option<Vec<String>> {
    match Cluster::start(3) {
        Ok(cluster) => {
            let urls = cluster.urls();
            std::mem::forget(cluster); // lives as long as the process; its watchers stop it
            Some(urls)
        }
        Err(why) => {
            assert!(
                !required(),
                "CACHE_REQUIRE_REDIS=1 but no Redis Cluster: {why}"
            );
            eprintln!("\n*** SKIPPING the Redis tests: {why} ***\n");
            None
        }
    }
}

/// Where the Redis tests of this process talk to: `CACHE_TEST_REDIS_URL`, or a server of
/// their own (in [`cluster_mode`], the first node of a cluster of their own). `None` (after a loud message) when there is neither; a panic instead under
/// `CACHE_REQUIRE_REDIS=1`.
pub fn url() -> Option<&'static str> {
    if cluster_mode() {
        return cluster()?.first().map(String::as_str);
    }
    static URL: LazyLock<Option<String>> = LazyLock::new(|| {
        if let Ok(url) = std::env::var("CACHE_TEST_REDIS_URL") {
            return Some(url);
        }
        match Server::start() {
            Ok(server) => {
                let url = server.url.clone();
                std::mem::forget(server); // lives as long as the process; its watcher stops it
                Some(url)
            }
            Err(why) => {
                assert!(!required(), "CACHE_REQUIRE_REDIS=1 but no Redis: {why}");
                eprintln!("\n*** SKIPPING the Redis tests: {why} (install redis-server) ***\n");
                None
            }
        }
    });
    URL.as_deref()
}

/// What a worker process of a test sets as `CACHE_REDIS_URL` to reach this process's Redis
/// through the environment, as a deployment would: the server's URL, or in [`cluster_mode`] the
/// cluster's nodes in one URL (`redis://h:p1,h:p2,h:p3`, the short form of the README).
pub fn library_url() -> Option<String> {
    if cluster_mode() {
        return Some(listed(cluster()?));
    }
    url().map(str::to_owned)
}

/// The URL of every server this process's tests use: the server, or each node of the
/// cluster in [`cluster_mode`] (for commands about one server's clients, such as `CLIENT`).
pub fn servers() -> Vec<String> {
    match cluster() {
        Some(nodes) if cluster_mode() => nodes.to_vec(),
        _ => url().map(str::to_owned).into_iter().collect(),
    }
}

/// A server of the calling test's own (one it may stop, freeze or restart), or `None` after a
/// loud message naming `what` is skipped; a panic instead under `CACHE_REQUIRE_REDIS=1`.
pub fn own_server(what: &str) -> Option<Server> {
    or_skip(what, Server::start())
}

/// What a test started (a server, a cluster, certificates), or `None` after a loud message
/// naming `what` is skipped; a panic instead under `CACHE_REQUIRE_REDIS=1`.
pub fn or_skip<T>(what: &str, started: Result<T, String>) -> Option<T> {
    match started {
        Ok(it) => Some(it),
        Err(why) => {
            assert!(!required(), "CACHE_REQUIRE_REDIS=1 but no Redis: {why}");
            eprintln!("\n*** SKIPPING {what}: {why} ***\n");
            None
        }
    }
}

/// The process id of the server behind `con` (ask before freezing it).
pub fn pid(con: &mut dyn redis::ConnectionLike) -> u32 {
    let info: String = redis::cmd("INFO").arg("server").query(con).expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|p| p.trim().parse().ok())
        .expect("process_id")
}

/// Sends `signal` (`"-STOP"`, `"-CONT"`) to the server process `pid`.
pub fn signal(pid: u32, signal: &str) {
    let sent = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status();
    assert!(sent.is_ok_and(|s| s.success()), "kill {signal} {pid}");
}

/// Points cache-runtime at the test server, with a key prefix of its own; `None` to skip.
pub fn setup(prefix: &str) -> Option<&'static str> {
    let url = url()?;
    let builder = match cluster() {
        Some(nodes) if cluster_mode() => cache_runtime::Config::builder().cluster_nodes(nodes),
        _ => cache_runtime::Config::builder().redis_url(url),
    };
    let _ = builder
        .key_prefix(prefix)
        .op_timeout(Duration::from_millis(500))
        .init();
    Some(url)
}

/// A raw connection: to one server, or (in [`cluster_mode`], to a node of the cluster) to the
/// whole cluster, following its slots.
pub enum Raw {
    /// One server.
    Single(redis::Connection),
    /// The cluster of this process.
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl redis::ConnectionLike for Raw {
    fn req_packed_command(&mut self, cmd: &[u8]) -> redis::RedisResult<redis::Value> {
        match self {
            Raw::Single(c) => c.req_packed_command(cmd),
            Raw::Cluster(c) => c.req_packed_command(cmd),
        }
    }
    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> redis::RedisResult<Vec<redis::Value>> {
        match self {
            Raw::Single(c) => c.req_packed_commands(cmd, offset, count),
            Raw::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }
    fn req_command(&mut self, cmd: &redis::Cmd) -> redis::RedisResult<redis::Value> {
        match self {
            Raw::Single(c) => c.req_command(cmd),
            Raw::Cluster(c) => c.req_command(cmd),
        }
    }
    fn get_db(&self) -> i64 {
        match self {
            Raw::Single(c) => c.get_db(),
            Raw::Cluster(c) => c.get_db(),
        }
    }
    fn check_connection(&mut self) -> bool {
        match self {
            Raw::Single(c) => c.check_connection(),
            Raw::Cluster(c) => c.check_connection(),
        }
    }
    fn is_open(&self) -> bool {
        match self {
            Raw::Single(c) => c.is_open(),
            Raw::Cluster(c) => c.is_open(),
        }
    }
}

/// A plain redis-rs connection to a cluster of `nodes`, following its slots.
pub fn raw_cluster<S: AsRef<str>>(nodes: &[S]) -> Raw {
    let con = redis::cluster::ClusterClient::new(nodes.iter().map(AsRef::as_ref))
        .and_then(|c| c.get_connection())
        .expect("a raw connection to the cluster");
    Raw::Cluster(Box::new(con))
}

/// The nodes of a cluster in one URL, as `CACHE_REDIS_URL` takes them: the first node whole,
/// the others as `host:port` (`redis://h:p1,h:p2,h:p3`, the short form of the README).
pub fn listed<S: AsRef<str>>(nodes: &[S]) -> String {
    let mut nodes = nodes.iter().map(AsRef::as_ref);
    let first = nodes.next().unwrap_or_default();
    std::iter::once(first)
        .chain(nodes.map(|n| n.split_once("://").map_or(n, |(_, rest)| rest)))
        .collect::<Vec<_>>()
        .join(",")
}

/// A plain redis-rs connection to the test server, to look at keys as another service would.
pub fn raw(url: &str) -> Raw {
    if cluster_mode()
        && let Some(nodes) = cluster()
        && nodes.iter().any(|n| n == url)
    {
        return raw_cluster(nodes);
    }
    let con = redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .expect("a raw connection to the test Redis");
    Raw::Single(con)
}

/// Redis of a test's own: a 3-primary cluster with `on_cluster`, else a single server; the
/// servers (alive while this value is) and their URLs. `None` (after [`or_skip`]'s message)
/// when none can be started.
pub struct Own {
    _server: Option<Server>,
    _cluster: Option<Cluster>,
    /// The URL of each node (one for a single server).
    pub urls: Vec<String>,
}

impl Own {
    /// Starts them; `what` names the test for the skip message.
    pub fn start(what: &str, on_cluster: bool) -> Option<Own> {
        if on_cluster {
            let cluster = or_skip(what, Cluster::start(3))?;
            let urls = cluster.urls();
            return Some(Own {
                _server: None,
                _cluster: Some(cluster),
                urls,
            });
        }
        let server = own_server(what)?;
        let urls = vec![server.url.clone()];
        Some(Own {
            _server: Some(server),
            _cluster: None,
            urls,
        })
    }
}

/// Calls per command, from `INFO commandstats` (the commands scripts run are counted too).
pub fn commands(con: &mut Raw) -> std::collections::BTreeMap<String, u64> {
    let info: String = redis::cmd("INFO").arg("commandstats").query(con).unwrap();
    info.lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.split(',').find_map(|f| f.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .collect()
}

/// What ran between two readings of [`commands`], without the readings' own `INFO`.
pub fn command_delta(
    before: &std::collections::BTreeMap<String, u64>,
    after: &std::collections::BTreeMap<String, u64>,
) -> std::collections::BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(k, v)| {
            let d = v - before.get(k).copied().unwrap_or(0);
            (d > 0 && k != "info").then(|| (k.clone(), d))
        })
        .collect()
}
