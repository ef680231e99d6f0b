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
    pub fn start_tls(cert: &str, key: &str, ca: &str) -> Result<Server, String> {
        Self::start_listening(
            |port| {
                format!(
                    "--port 0 --tls-port {port} --tls-cert-file '{cert}' --tls-key-file '{key}' \
                     --tls-ca-cert-file '{ca}' --tls-auth-clients yes"
                )
            },
            "rediss",
        )
    }

    fn start_listening(listen: impl Fn(u16) -> String, scheme: &str) -> Result<Server, String> {
        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        let listen = listen(port);
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
        let nodes = (0..primaries * (1 + replicas))
            .map(|_| {
                Server::start_listening(
                    |port| {
                        format!(
                            "--port {port} --cluster-enabled yes --cluster-config-file nodes.conf \
                             --cluster-node-timeout 2000 --cluster-replica-validity-factor 0"
                        )
                    },
                    "redis",
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let created = Command::new("redis-cli")
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
            let mut con = redis::Client::open(node.url.as_str())
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

/// Where the Redis tests of this process talk to: `CACHE_TEST_REDIS_URL`, or a server of
/// their own. `None` (after a loud message) when there is neither; a panic instead under
/// `CACHE_REQUIRE_REDIS=1`.
pub fn url() -> Option<&'static str> {
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

/// A server of the calling test's own (one it may stop, freeze or restart), or `None` after a
/// loud message naming `what` is skipped; a panic instead under `CACHE_REQUIRE_REDIS=1`.
pub fn own_server(what: &str) -> Option<Server> {
    match Server::start() {
        Ok(server) => Some(server),
        Err(why) => {
            assert!(!required(), "CACHE_REQUIRE_REDIS=1 but no Redis: {why}");
            eprintln!("\n*** SKIPPING {what}: {why} ***\n");
            None
        }
    }
}

/// The process id of the server behind `con` (ask before freezing it).
pub fn pid(con: &mut redis::Connection) -> u32 {
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
    let _ = cache_runtime::Config::builder()
        .redis_url(url)
        .key_prefix(prefix)
        .op_timeout(Duration::from_millis(500))
        .init();
    Some(url)
}

/// A plain redis-rs connection to the test server, to look at keys as another service would.
pub fn raw(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .expect("a raw connection to the test Redis")
}
