//! `shop-load`: a load generator for the shop, for this machine only (it refuses a target
//! that is not a loopback address).
//!
//! `cargo run --release -p shop-http --bin shop-load -- --addr 127.0.0.1:8080 --seconds 10`
//!
//! `--connections` workers (default 32), each on a keep-alive HTTP/1.1 connection of its own,
//! send a fixed mix until `--requests` were sent or `--seconds` passed, whichever is first:
//!
//! - 86% `GET /products/{id}`, ids drawn from a Zipf distribution (s = 1.1) over the 20,000
//!   products: rank 1 is product 1, which the database's orders also make the best seller;
//! - 8% `GET /users/{id}`, ids uniform over 1..=55,000 (about 9% of them do not exist: `404`);
//! - 2% `PUT /products/{id}` with a new price, ids drawn like the reads;
//! - 3% `GET /users/{id}/cart` and 1% `POST /users/{id}/cart/items`, users uniform over
//!   1..=100 (the carts' cache is the shop's deliberately bad candidate: an add does not
//!   invalidate it).
//!
//! With `--report`, it prints the shop's `GET /caches` (`cache_runtime::report()`) after the
//! run, each line prefixed with `caches: `.
//!
//! Every id comes from a deterministic generator (`--seed`), so two runs send the same mix.
//! It reports requests/s, p50/p99/p99.9 latency (every latency is kept and sorted at the
//! end), errors (non-2xx answers, except `404` for users, and I/O errors and timeouts) and
//! database queries/s (the server's `shop_db_queries_total`, read from `GET /metrics` before and
//! after), as a Markdown table row and as a JSON line.

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use shop_http::Lcg;
use tokio::net::TcpStream;

const USAGE: &str = "\
usage: shop-load [options]

  --addr HOST:PORT     the shop, on a loopback address (default 127.0.0.1:$PORT, else :8080)
  --connections N      concurrent keep-alive connections (default 32)
  --requests N         stop after N requests (default 1000000)
  --seconds S          stop after S seconds (default 10)
  --label TEXT         the name of this run in the report (default `run`)
  --seed N             the seed of the request mix (default 1)
  --products N         product ids are 1..=N (default 20000)
  --users N            user ids are drawn from 1..=N (default 55000; the shop has 50000)
  --product-path P     the path of a product read, `{id}` its id (default /products/{id};
                       /pages/products/{id} reads the HTML pages the response cache keeps)
  --report             print the shop's GET /caches after the run (lines `caches: ...`)";

/// How long one request may take before it counts as an error (and its connection is
/// replaced).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

struct Options {
    target: String,
    connections: u64,
    requests: u64,
    seconds: f64,
    label: String,
    seed: u64,
    products: u64,
    users: u64,
    product_path: String,
    report: bool,
}

impl Options {
    fn defaults() -> Options {
        let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
        Options {
            target: format!("127.0.0.1:{}", port.trim()),
            connections: 32,
            requests: 1_000_000,
            seconds: 10.0,
            label: "run".into(),
            seed: 1,
            products: 20_000,
            users: 55_000,
            product_path: "/products/{id}".into(),
            report: false,
        }
    }

    /// The options of the command line; `None` for `--help`.
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
        let mut options = Options::defaults();
        while let Some(arg) = args.next() {
            if arg == "-h" || arg == "--help" {
                return Ok(None);
            }
            if arg == "--report" {
                options.report = true;
                continue;
            }
            // `--flag=value` or `--flag value`.
            let inline = arg
                .split_once('=')
                .filter(|(flag, _)| flag.starts_with("--"))
                .map(|(flag, value)| (flag.to_owned(), value.to_owned()));
            let (flag, value) = match inline {
                Some(pair) => pair,
                None => {
                    let value = args
                        .next()
                        .ok_or_else(|| format!("`{arg}` needs a value"))?;
                    (arg, value)
                }
            };
            match flag.as_str() {
                "--addr" => options.target = value,
                "--connections" => options.connections = number(&flag, &value)?,
                "--requests" => options.requests = number(&flag, &value)?,
                "--seconds" => options.seconds = number(&flag, &value)?,
                "--label" => options.label = value,
                "--seed" => options.seed = number(&flag, &value)?,
                "--products" => options.products = number(&flag, &value)?,
                "--users" => options.users = number(&flag, &value)?,
                "--product-path" if value.starts_with('/') && value.contains("{id}") => {
                    options.product_path = value;
                }
                "--product-path" => {
                    return Err("--product-path must start with / and name {id}".into());
                }
                _ => return Err(format!("unknown option `{flag}`")),
            }
        }
        if !(1..=10_000).contains(&options.connections) {
            return Err("--connections must be 1 to 10000".into());
        }
        if options.requests == 0 || options.products == 0 || options.users == 0 {
            return Err("--requests, --products and --users must be at least 1".into());
        }
        if !(0.001..=86_400.0).contains(&options.seconds) {
            return Err("--seconds must be 0.001 to 86400".into());
        }
        Ok(Some(options))
    }
}

fn number<T>(flag: &str, value: &str) -> Result<T, String>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    value
        .trim()
        .replace('_', "")
        .parse()
        .map_err(|e| format!("{flag} {value}: {e}"))
}

/// The address of `target`, which must resolve to loopback addresses only.
fn loopback(target: &str) -> Result<SocketAddr, String> {
    let target = target.trim_start_matches("http://").trim_end_matches('/');
    let addresses: Vec<SocketAddr> = target
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve `{target}`: {e}"))?
        .collect();
    if let Some(outside) = addresses.iter().find(|a| !a.ip().is_loopback()) {
        return Err(format!(
            "refusing `{target}`: {outside} is not a loopback address \
             (shop-load only loads this machine: 127.0.0.0/8 or ::1)"
        ));
    }
    addresses
        .first()
        .copied()
        .ok_or_else(|| format!("`{target}` resolves to no address"))
}

/// A Zipf distribution over ranks `1..=n`: P(k) ∝ k^-s, sampled through its precomputed CDF.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: u64, s: f64) -> Zipf {
        let mut cdf = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
        let mut total = 0.0;
        for rank in 1..=n {
            total += (rank as f64).powf(-s);
            cdf.push(total);
        }
        for p in &mut cdf {
            *p /= total;
        }
        Zipf { cdf }
    }

    /// The rank (1 is the most frequent) for `u`, uniform in `[0, 1)`.
    fn sample(&self, u: f64) -> u64 {
        let index = self
            .cdf
            .partition_point(|&p| p <= u)
            .min(self.cdf.len().saturating_sub(1));
        u64::try_from(index).unwrap_or(0) + 1
    }
}

/// One request of the mix.
#[derive(Clone, Copy, Debug)]
enum Op {
    Product(u64),
    User(u64),
    Update { id: u64, price_cents: u64 },
    Cart(u64),
    AddToCart { user: u64, product: u64 },
}

/// Carts belong to users 1..=CART_USERS.
const CART_USERS: u64 = 100;

impl Op {
    fn request(
        self,
        host: &str,
        product_path: &str,
    ) -> Result<Request<Full<Bytes>>, hyper::http::Error> {
        let builder = Request::builder().header(HOST, host);
        match self {
            Op::Product(id) => builder
                .method(Method::GET)
                .uri(product_path.replace("{id}", &id.to_string()))
                .body(Full::new(Bytes::new())),
            Op::User(id) => builder
                .method(Method::GET)
                .uri(format!("/users/{id}"))
                .body(Full::new(Bytes::new())),
            Op::Update { id, price_cents } => builder
                .method(Method::PUT)
                .uri(format!("/products/{id}"))
                .header(CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(format!(
                    "{{\"price_cents\":{price_cents}}}"
                )))),
            Op::Cart(user) => builder
                .method(Method::GET)
                .uri(format!("/users/{user}/cart"))
                .body(Full::new(Bytes::new())),
            Op::AddToCart { user, product } => builder
                .method(Method::POST)
                .uri(format!("/users/{user}/cart/items"))
                .header(CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(format!(
                    "{{\"product_id\":{product},\"qty\":1}}"
                )))),
        }
    }
}

/// What every worker shares.
struct Plan {
    address: SocketAddr,
    host: String,
    deadline: Instant,
    limit: u64,
    /// Requests started, by every worker.
    started: AtomicU64,
    seed: u64,
    products: Zipf,
    users: u64,
    /// Where a product is read (`{id}` its id).
    product_path: String,
}

impl Plan {
    fn next_op(&self, rng: &mut Lcg) -> Op {
        match rng.below(100) {
            0..86 => Op::Product(self.products.sample(rng.unit())),
            86..94 => Op::User(1 + rng.below(self.users)),
            94..96 => Op::Update {
                id: self.products.sample(rng.unit()),
                price_cents: 100 + rng.below(99_900),
            },
            96..99 => Op::Cart(1 + rng.below(CART_USERS)),
            _ => Op::AddToCart {
                user: 1 + rng.below(CART_USERS),
                product: self.products.sample(rng.unit()),
            },
        }
    }
}

/// What workers saw.
#[derive(Default)]
struct Tally {
    /// The latency of every answered request, in nanoseconds.
    latencies: Vec<u64>,
    products: u64,
    users: u64,
    missing_users: u64,
    updates: u64,
    carts: u64,
    cart_adds: u64,
    /// Answers with a status the mix does not expect.
    http_errors: u64,
    /// Connections refused or broken, and requests past `REQUEST_TIMEOUT`.
    io_errors: u64,
}

impl Tally {
    fn record(&mut self, op: Op, status: StatusCode, latency: Duration) {
        self.latencies
            .push(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
        let expected = match op {
            Op::Product(_) => {
                self.products += 1;
                status.is_success()
            }
            Op::User(_) => {
                self.users += 1;
                if status == StatusCode::NOT_FOUND {
                    self.missing_users += 1;
                }
                status.is_success() || status == StatusCode::NOT_FOUND
            }
            Op::Update { .. } => {
                self.updates += 1;
                status.is_success()
            }
            Op::Cart(_) => {
                self.carts += 1;
                status.is_success()
            }
            Op::AddToCart { .. } => {
                self.cart_adds += 1;
                status.is_success()
            }
        };
        if !expected {
            self.http_errors += 1;
        }
    }

    fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.products += other.products;
        self.users += other.users;
        self.missing_users += other.missing_users;
        self.updates += other.updates;
        self.carts += other.carts;
        self.cart_adds += other.cart_adds;
        self.http_errors += other.http_errors;
        self.io_errors += other.io_errors;
    }
}

/// A keep-alive HTTP/1.1 connection to `address`.
async fn connect(address: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = TcpStream::connect(address)
        .await
        .map_err(|e| format!("connecting to {address}: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("TCP_NODELAY: {e}"))?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {address}: {e}"))?;
    // Drives the connection; ends when the sender is dropped or the server closes it.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// Sends `request` and reads the whole answer (so that the connection can carry the next).
async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<StatusCode, hyper::Error> {
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let _body = response.into_body().collect().await?;
    Ok(status)
}

async fn worker(plan: Arc<Plan>, index: u64) -> Tally {
    let mut rng = Lcg::new(
        plan.seed
            .wrapping_add(index.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
    );
    let mut tally = Tally::default();
    let mut connection: Option<SendRequest<Full<Bytes>>> = None;
    while Instant::now() < plan.deadline {
        if connection.is_none() {
            match connect(plan.address).await {
                Ok(sender) => connection = Some(sender),
                Err(_) => {
                    tally.io_errors += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            }
        }
        let Some(sender) = connection.as_mut() else {
            continue;
        };
        if plan.started.fetch_add(1, Relaxed) >= plan.limit {
            break;
        }
        let op = plan.next_op(&mut rng);
        let Ok(request) = op.request(&plan.host, &plan.product_path) else {
            tally.http_errors += 1;
            continue;
        };
        let started = Instant::now();
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, exchange(sender, request)).await;
        match answer {
            Ok(Ok(status)) => tally.record(op, status, started.elapsed()),
            Ok(Err(_)) | Err(_) => {
                tally.io_errors += 1;
                connection = None;
            }
        }
    }
    tally
}

/// The body of `GET path` (`Accept: accept`), which must answer 2xx.
async fn fetch(
    address: SocketAddr,
    host: &str,
    path: &str,
    accept: &str,
) -> Result<String, String> {
    let mut sender = connect(address).await?;
    let request = Request::get(path)
        .header(HOST, host)
        .header(hyper::header::ACCEPT, accept)
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    sender.ready().await.map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("GET {path}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("GET {path} answered {}", response.status()));
    }
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("GET {path}: {e}"))?
        .to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The server's `shop_db_queries_total`, from `GET /metrics`.
async fn db_queries(address: SocketAddr, host: &str) -> Result<u64, String> {
    fetch(address, host, "/metrics", "text/plain")
        .await?
        .lines()
        .find_map(|line| line.strip_prefix("shop_db_queries_total "))
        .and_then(|value| value.trim().parse().ok())
        .ok_or_else(|| "GET /metrics has no `shop_db_queries_total` line".to_owned())
}

/// The `p` quantile (0 to 1) of sorted nanoseconds, in milliseconds (nearest rank).
fn quantile_ms(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    sorted[index] as f64 / 1e6
}

async fn run(options: Options) -> Result<(), String> {
    let address = loopback(&options.target)?;
    let host = address.to_string();
    let before = db_queries(address, &host).await?;
    let started = Instant::now();
    let plan = Arc::new(Plan {
        address,
        host,
        deadline: started + Duration::from_secs_f64(options.seconds),
        limit: options.requests,
        started: AtomicU64::new(0),
        seed: options.seed,
        products: Zipf::new(options.products, 1.1),
        users: options.users,
        product_path: options.product_path.clone(),
    });
    let workers: Vec<_> = (0..options.connections)
        .map(|index| tokio::spawn(worker(Arc::clone(&plan), index)))
        .collect();
    let mut total = Tally::default();
    for worker in workers {
        total.merge(worker.await.map_err(|e| format!("a worker failed: {e}"))?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = db_queries(address, &plan.host).await?;

    total.latencies.sort_unstable();
    let answered = total.latencies.len();
    let requests_per_second = answered as f64 / elapsed;
    let (p50, p99, p999) = (
        quantile_ms(&total.latencies, 0.50),
        quantile_ms(&total.latencies, 0.99),
        quantile_ms(&total.latencies, 0.999),
    );
    let errors = total.http_errors + total.io_errors;
    let queries = after.saturating_sub(before);
    let queries_per_second = queries as f64 / elapsed;
    println!(
        "| {} | {answered} | {requests_per_second:.0} | {p50:.3} | {p99:.3} | {p999:.3} | \
         {errors} | {queries_per_second:.0} |",
        options.label
    );
    let json = serde_json::json!({
        "label": options.label,
        "connections": options.connections,
        "seconds": elapsed,
        "requests": answered,
        "requests_per_second": requests_per_second,
        "latency_ms": { "p50": p50, "p99": p99, "p99_9": p999 },
        "errors": errors,
        "http_errors": total.http_errors,
        "io_errors": total.io_errors,
        "db_queries": queries,
        "db_queries_per_second": queries_per_second,
        "mix": {
            "product_reads": total.products,
            "user_reads": total.users,
            "missing_users": total.missing_users,
            "updates": total.updates,
            "cart_reads": total.carts,
            "cart_adds": total.cart_adds,
        },
    });
    println!("{json}");
    if options.report {
        // Verifications still running (a sync one waits at most a millisecond in its queue).
        tokio::time::sleep(Duration::from_millis(200)).await;
        let report = fetch(address, &plan.host, "/caches", "text/plain").await?;
        for line in report.lines() {
            println!("caches: {line}");
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("shop-load: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shop-load: {e}");
            ExitCode::FAILURE
        }
    }
}
