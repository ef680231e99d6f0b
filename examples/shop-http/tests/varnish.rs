//! Issue 26: a real Varnish (Debian's `varnish` and `varnish-modules`, started here on
//! loopback with `varnish/shop.vcl`) in front of the shop, which purges it by `xkey` on every
//! invalidation (`VarnishPurger`). Measured: how long after a `PUT` Varnish serves the new
//! content (100 changes; the figures go to BENCHMARKS.md), and `304`s from the shop when
//! Varnish revalidates an expired response whose content did not change (`MAIN.fetch_304`).
//!
//! Without `varnishd` the test says SKIPPED and passes, unless `CACHE_REQUIRE_VARNISH=1` (CI),
//! which makes a missing Varnish a failure.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cache_runtime::http::VarnishPurger;
use shop_http::memory;

/// `varnishd`, if installed.
fn varnishd() -> Option<PathBuf> {
    ["/usr/sbin/varnishd", "/usr/local/sbin/varnishd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// A free loopback port (below 55000 is not needed here: no cluster bus).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `varnishd` of this test, stopped (and its work directory removed) when dropped.
struct Varnish {
    child: Child,
    workdir: PathBuf,
    port: u16,
}

impl Varnish {
    /// Starts `varnishd` with the shop's VCL, its backend at `shop`; waits until it answers.
    fn start(binary: &Path, shop: u16) -> Varnish {
        let port = free_port();
        let workdir =
            std::env::temp_dir().join(format!("shop-varnish-{}-{port}", std::process::id()));
        let vcl_path =
            std::env::temp_dir().join(format!("shop-varnish-{}-{port}.vcl", std::process::id()));
        let vcl = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/varnish/shop.vcl"))
            .expect("varnish/shop.vcl");
        let vcl = vcl.replace(".port = \"8080\";", &format!(".port = \"{shop}\";"));
        // The test's one change: a request may shorten the edge's ttl (`x-edge-ttl: 1s`), to
        // see a revalidation at expiry in a second rather than a minute.
        let vcl = vcl.replace(
            "sub vcl_backend_response {",
            "import std;\nsub vcl_backend_response {\n    if (bereq.http.x-edge-ttl) {\n        \
             set beresp.ttl = std.duration(bereq.http.x-edge-ttl, beresp.ttl);\n    }",
        );
        std::fs::write(&vcl_path, vcl).unwrap();
        let child = Command::new(binary)
            .args(["-F", "-a", &format!("127.0.0.1:{port}"), "-f"])
            .arg(&vcl_path)
            .arg("-n")
            .arg(&workdir)
            .args(["-s", "malloc,32m", "-p", "default_grace=0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("varnishd starts");
        let varnish = Varnish {
            child,
            workdir,
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(answer) = request(port, "GET /healthz HTTP/1.0\r\n\r\n")
                && answer.status == 200
            {
                return varnish;
            }
            assert!(Instant::now() < deadline, "varnishd did not answer in 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A counter of `varnishstat` (`MAIN.fetch_304`).
    fn counter(&self, name: &str) -> u64 {
        let out = Command::new("varnishstat")
            .arg("-n")
            .arg(&self.workdir)
            .args(["-1", "-f", name])
            .output()
            .expect("varnishstat runs");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Varnish {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.workdir);
    }
}

/// An answer: status, headers (lower-case names) and body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `head` (an HTTP/1.0 request, so the answer ends with the connection) to `port`.
fn request(port: u16, head: &str) -> std::io::Result<Answer> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(head.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(Answer {
        status,
        headers,
        body: body.to_owned(),
    })
}

fn get(port: u16, path: &str, extra: &str) -> Answer {
    request(
        port,
        &format!("GET {path} HTTP/1.0\r\nHost: shop\r\n{extra}\r\n"),
    )
    .unwrap()
}

fn put_price(port: u16, id: u64, price: i64) {
    let body = format!("{{\"price_cents\": {price}}}");
    let answer = request(
        port,
        &format!(
            "PUT /products/{id} HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[test]
fn varnish_in_front_of_the_shop_is_purged_and_revalidates() {
    let Some(binary) = varnishd() else {
        let required = std::env::var("CACHE_REQUIRE_VARNISH").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "CACHE_REQUIRE_VARNISH=1 but varnishd is not installed"
        );
        eprintln!("SKIPPED: varnishd is not installed (apt-get install varnish varnish-modules)");
        return;
    };
    let shop = common::start_shop("varnish");
    let varnish = Varnish::start(&binary, shop);
    let purger = VarnishPurger::new(&format!("http://127.0.0.1:{}", varnish.port)).unwrap();
    let _hook = cache_runtime::on_invalidate(purger.clone());

    // Kept by Varnish; the surrogate keys stay behind it.
    let first = get(varnish.port, "/products/5", "");
    assert_eq!(first.status, 200);
    assert_eq!(first.header("x-edge"), Some("MISS"));
    let second = get(varnish.port, "/products/5", "");
    assert_eq!(second.header("x-edge"), Some("HIT"));
    assert_eq!(second.body, first.body);
    assert_eq!(second.header("xkey"), None);

    // A user's private answer is not shared: each request reaches the shop.
    let (_, users_before) = shop_http::requests();
    for _ in 0..2 {
        let user = get(varnish.port, "/users/3", "");
        assert_eq!(user.status, 200);
        assert_eq!(user.header("x-edge"), Some("MISS"));
    }
    assert_eq!(shop_http::requests().1, users_before + 2);

    // 100 changes: how long until Varnish serves each new price.
    let mut waits = Vec::new();
    for i in 0..100 {
        let price = 10_000 + i;
        let _ = get(varnish.port, "/products/5", "");
        put_price(shop, 5, price);
        let changed = Instant::now();
        let expected = format!("\"price_cents\":{price}");
        loop {
            if get(varnish.port, "/products/5", "")
                .body
                .contains(&expected)
            {
                break;
            }
            assert!(
                changed.elapsed() < Duration::from_secs(5),
                "change {i} not seen in 5 s"
            );
        }
        waits.push(changed.elapsed());
    }
    waits.sort();
    let (p50, p99) = (percentile(&waits, 0.5), percentile(&waits, 0.99));
    eprintln!(
        "FIGURES: PUT to new content at Varnish over 100 changes: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (max-age 60 s without purges); purges sent {}",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        waits[99].as_secs_f64() * 1e3,
        purger.stats().sent,
    );
    assert!(p99 < Duration::from_secs(1), "p99 {p99:?}");

    // Revalidation at expiry: the shop reloads product 6 with the same content (a new entry,
    // the same ETag),
    // so Varnish's `If-None-Match` gets a 304.
    let before = varnish.counter("MAIN.fetch_304");
    let ttl = "x-edge-ttl: 1s\r\n";
    let kept = get(varnish.port, "/products/6", ttl);
    assert_eq!(kept.status, 200);
    let etag = kept.header("etag").expect("an ETag").to_owned();
    let _ = memory::product_refresh(6);
    std::thread::sleep(Duration::from_millis(1500)); // past the edge's 1 s ttl
    let revalidated = get(varnish.port, "/products/6", ttl);
    assert_eq!(revalidated.status, 200);
    assert_eq!(revalidated.header("etag"), Some(etag.as_str()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while varnish.counter("MAIN.fetch_304") <= before {
        assert!(Instant::now() < deadline, "no 304 fetched from the shop");
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "FIGURES: MAIN.fetch_304 {} (was {before})",
        varnish.counter("MAIN.fetch_304")
    );
}
