//! The shop over HTTP: requests sent to its router with `tower::ServiceExt::oneshot`, in memory
//! mode, on a small database made once for this file.
//!
//! The tests of this file run at the same time in one process and share its caches, so each
//! uses ids of its own (products 11, 21, 31, 32, 41, 51–55, 61; users 12, 77, 99 999; its own
//! category). The database query counter is process-wide too: the one test that checks it
//! takes [`GATE`] for writing, every other test takes it for reading.

use std::sync::LazyLock;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt as _;
use shop_http::db::{self, DataSize};
use shop_http::{AppState, Mode, db_queries, memory, router};
use tokio::sync::RwLock;
use tower::ServiceExt as _;

/// The shop on a database of a few hundred rows, in the temp directory (one per test process:
/// nextest runs each test in its own; the files of finished ones are removed first).
static STATE: LazyLock<AppState> = LazyLock::new(|| {
    remove_finished_processes_databases();
    let path = std::env::temp_dir().join(format!("shop-http-tests-{}.db", std::process::id()));
    db::create_database(&path, DataSize::SMALL).expect("the test database");
    // The recorder of the binary (`main.rs`), so that `/metrics` shows the caches' figures.
    let prometheus = shop_http::install_prometheus().expect("the only recorder of this process");
    AppState::new(path, Mode::Memory)
        .expect("the shop's state")
        .with_prometheus(prometheus)
});

/// Removes the test databases of test processes that have ended (Linux: a process is alive
/// while `/proc/<pid>` exists; elsewhere nothing is removed).
fn remove_finished_processes_databases() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("shop-http-tests-"))
            .and_then(|n| n.strip_suffix(".db"))
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Read by every test; written by the one that counts database queries.
static GATE: RwLock<()> = RwLock::const_new(());

/// Entries live `ttl × (1 − u)`, `u` below the default `jitter` of 0.1: the most a
/// `max-age` may say for a `ttl` (in seconds) is the `ttl`.
fn longest_max_age(ttl: u64) -> u64 {
    ttl
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    fn etag(&self) -> String {
        let tag = self.header("etag").expect("an ETag").to_owned();
        assert!(
            tag.len() == 34
                && tag.starts_with('"')
                && tag.ends_with('"')
                && tag[1..33].chars().all(|c| c.is_ascii_hexdigit()),
            "an ETag is 32 hex digits in quotes (the content's XXH3-128): {tag}"
        );
        tag
    }
}

/// The value of `name=<seconds>` in a `Cache-Control` header.
fn directive(cache_control: &str, name: &str) -> Option<u64> {
    cache_control
        .split(',')
        .map(str::trim)
        .find_map(|d| d.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
}

async fn send(request: Request<Body>) -> Answer {
    let response = router(STATE.clone())
        .oneshot(request)
        .await
        .expect("the router never fails");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("the body").to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

async fn get(uri: &str) -> Answer {
    send(Request::get(uri).body(Body::empty()).expect("a request")).await
}

async fn get_if_none_match(uri: &str, etags: &str) -> Answer {
    let request = Request::get(uri)
        .header("if-none-match", etags)
        .body(Body::empty())
        .expect("a request");
    send(request).await
}

async fn put(uri: &str, body: &str) -> Answer {
    let request = Request::put(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .expect("a request");
    send(request).await
}

#[tokio::test]
async fn a_product_is_public_with_stale_while_revalidate() {
    let _gate = GATE.read().await;
    let answer = get("/products/11").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let control = answer.header("cache-control").expect("Cache-Control");
    assert!(control.starts_with("public, max-age="), "{control}");
    let max_age = directive(control, "max-age").expect("max-age");
    assert!(max_age > 0 && max_age <= longest_max_age(60), "{control}");
    assert_eq!(
        directive(control, "stale-while-revalidate"),
        Some(30),
        "{control}"
    );
    let age: u64 = answer.header("age").expect("Age").parse().expect("seconds");
    assert!(age <= 1, "just loaded: {age}");
    answer.etag();
    assert_eq!(answer.header("x-cache"), Some("MISS"));
    let product = answer.json();
    assert_eq!(product["id"], 11);
    assert!(product["price_cents"].is_i64(), "{product}");
    assert!(product["category"].is_string(), "{product}");
}

#[tokio::test]
async fn a_user_is_private() {
    let _gate = GATE.read().await;
    let answer = get("/users/12").await;
    assert_eq!(answer.status, StatusCode::OK);
    let control = answer.header("cache-control").expect("Cache-Control");
    assert!(control.starts_with("private, max-age="), "{control}");
    let max_age = directive(control, "max-age").expect("max-age");
    assert!(max_age > 0 && max_age <= longest_max_age(300), "{control}");
    assert_eq!(
        directive(control, "stale-while-revalidate"),
        None,
        "{control}"
    );
    assert!(answer.header("age").is_some());
    answer.etag();
    assert_eq!(answer.json()["email"], "user12@example.com");
}

#[tokio::test]
async fn a_categorys_best_sellers_are_public() {
    let _gate = GATE.read().await;
    let answer = get("/categories/garden/top").await;
    assert_eq!(answer.status, StatusCode::OK);
    let control = answer.header("cache-control").expect("Cache-Control");
    assert!(control.starts_with("public, max-age="), "{control}");
    let max_age = directive(control, "max-age").expect("max-age");
    assert!(max_age <= longest_max_age(120), "{control}");
    assert_eq!(
        directive(control, "stale-while-revalidate"),
        Some(60),
        "{control}"
    );
    answer.etag();
    let top = answer.json();
    let top = top.as_array().expect("a list");
    assert!(top.len() <= 10);
    let units: Vec<i64> = top
        .iter()
        .map(|p| p["units_sold"].as_i64().expect("units"))
        .collect();
    assert!(
        units.windows(2).all(|w| w[0] >= w[1]),
        "best first: {units:?}"
    );

    assert_eq!(
        get("/categories/no-such-thing/top").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_matching_if_none_match_is_a_304_without_a_body() {
    let _gate = GATE.read().await;
    let first = get("/products/21").await;
    assert_eq!(first.status, StatusCode::OK);
    let etag = first.etag();

    let again = get_if_none_match("/products/21", &etag).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty(), "a 304 has no body");
    assert_eq!(again.etag(), etag);
    assert_eq!(again.header("x-cache"), Some("HIT"));
    let control = again.header("cache-control").expect("Cache-Control");
    assert!(control.starts_with("public, max-age="), "{control}");
    assert!(again.header("age").is_some());

    // A list, and a weak validator, match too.
    let listed = format!("\"0000000000000000\", W/{etag}");
    let again = get_if_none_match("/products/21", &listed).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);

    // Another tag does not: the full answer.
    let other = get_if_none_match("/products/21", "\"0000000000000000\"").await;
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(other.json()["id"], 21);
}

#[tokio::test]
async fn a_missing_user_is_a_404_then_a_null_hit_without_a_query() {
    // Nothing else queries the database meanwhile.
    let _gate = GATE.write().await;
    let before = db_queries();
    let first = get("/users/99999").await;
    assert_eq!(first.status, StatusCode::NOT_FOUND);
    assert_eq!(first.header("x-cache"), Some("MISS"));
    assert_eq!(db_queries() - before, 1, "the miss queried once");
    assert_eq!(first.json()["id"], 99_999);

    let before = db_queries();
    let second = get("/users/99999").await;
    assert_eq!(second.status, StatusCode::NOT_FOUND);
    assert_eq!(second.header("x-cache"), Some("NULL-HIT"));
    assert_eq!(db_queries(), before, "a null hit does not query");
    let control = second.header("cache-control").expect("Cache-Control");
    assert!(control.starts_with("private, max-age="), "{control}");
    assert_eq!(second.header("etag"), None, "no validator for a 404");
}

#[tokio::test]
async fn an_update_invalidates_the_product_and_changes_its_etag() {
    let _gate = GATE.read().await;
    let before = get("/products/31").await;
    assert_eq!(before.status, StatusCode::OK);
    let old_etag = before.etag();
    let old_price = before.json()["price_cents"].as_i64().expect("a price");
    assert_eq!(get("/products/31").await.header("x-cache"), Some("HIT"));

    let new_price = old_price + 101;
    let updated = put("/products/31", &format!("{{\"price_cents\": {new_price}}}")).await;
    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(updated.json()["price_cents"], new_price);
    assert_eq!(updated.header("cache-control"), Some("no-store"));

    let after = get("/products/31").await;
    assert_eq!(after.status, StatusCode::OK);
    assert_eq!(
        after.header("x-cache"),
        Some("MISS"),
        "invalidated on write"
    );
    assert_eq!(after.json()["price_cents"], new_price);
    assert_ne!(after.etag(), old_etag);

    // The old validator no longer matches: the new representation.
    let revalidated = get_if_none_match("/products/31", &old_etag).await;
    assert_eq!(revalidated.status, StatusCode::OK);
    assert_eq!(revalidated.json()["price_cents"], new_price);
}

#[tokio::test]
async fn bad_updates_are_refused() {
    let _gate = GATE.read().await;
    for body in [
        "",
        "  ",
        "{",
        "{}",
        "{\"price_cents\": -1}",
        "{\"colour\": \"red\"}",
    ] {
        let answer = put("/products/32", body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "body {body:?}");
        assert!(answer.json()["error"].is_string());
    }
    let missing = put("/products/99999", "{\"name\": \"Nothing\"}").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_miss_then_a_hit() {
    let _gate = GATE.read().await;
    let first = get("/products/41").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.header("x-cache"), Some("MISS"));
    let second = get("/products/41").await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.header("x-cache"), Some("HIT"));
    assert_eq!(second.body, first.body);
    assert_eq!(second.etag(), first.etag());
    assert!(second.header("age").is_some());
}

#[tokio::test]
async fn missing_products_and_bad_ids() {
    let _gate = GATE.read().await;
    let missing = get("/products/99999").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.header("etag"), None);
    assert_eq!(
        get("/products/not-a-number").await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn warming_loads_then_skips() {
    let _gate = GATE.read().await;
    let state = STATE.clone();
    assert_eq!(state.mode(), Mode::Memory);
    let warmed = tokio::task::spawn_blocking(|| memory::product_warm(51..=55))
        .await
        .expect("warming ran");
    assert_eq!(
        (warmed.loaded, warmed.skipped, warmed.failed),
        (5, 0, 0),
        "five products loaded"
    );
    for id in 51..=55 {
        let answer = get(&format!("/products/{id}")).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.header("x-cache"), Some("HIT"), "product {id}");
    }
    let again = tokio::task::spawn_blocking(|| memory::product_warm(51..=55))
        .await
        .expect("warming ran");
    assert_eq!(
        (again.loaded, again.skipped, again.failed),
        (0, 5, 0),
        "already fresh: skipped"
    );
}

#[tokio::test]
async fn metrics_and_health() {
    let _gate = GATE.read().await;
    // A product read makes its cache (caches are made at their first call).
    assert_eq!(get("/products/1").await.status, StatusCode::OK);
    let metrics = get("/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(
        metrics
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
    );
    let text = String::from_utf8(metrics.body.to_vec()).expect("text");
    assert!(
        text.lines().any(|line| line
            .strip_prefix("shop_db_queries_total ")
            .is_some_and(|n| n.parse::<u64>().is_ok())),
        "{text}"
    );
    // Issue 25: the byte budgets and what they hold, per cache.
    for gauge in ["cache_memory_bytes{", "cache_memory_max_bytes{"] {
        assert!(
            text.lines()
                .any(|line| line.starts_with(gauge) && line.contains("memory.product")),
            "{gauge}: {text}"
        );
    }
    let health = get("/healthz").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(&health.body[..], b"ok");
}

/// Issue 27: `/metrics` passes `promtool check metrics` (Debian's `prometheus` package) with no
/// problem, every family has its `HELP`, and load durations are histograms. Without promtool
/// the test says SKIPPED and passes, unless `CACHE_REQUIRE_PROMTOOL=1` (CI).
#[tokio::test]
async fn metrics_pass_promtool() {
    let _shared = GATE.read().await;
    for uri in [
        "/products/61",
        "/products/61",
        "/users/62",
        "/categories/tea/top",
    ] {
        assert!(
            get(uri).await.status.is_success() || get(uri).await.status == StatusCode::NOT_FOUND
        );
    }
    let text = String::from_utf8(get("/metrics").await.body.to_vec()).expect("text");
    for family in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let name = family.split(' ').next().unwrap_or_default();
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} has no HELP:\n{text}"
        );
    }
    assert!(
        text.contains("# TYPE cache_load_duration_seconds histogram"),
        "{text}"
    );
    assert!(text.contains("cache_gets_total{"), "{text}");
    let promtool = std::path::Path::new("/usr/bin/promtool");
    if !promtool.exists() {
        let required = std::env::var("CACHE_REQUIRE_PROMTOOL").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "CACHE_REQUIRE_PROMTOOL=1 but promtool is not installed"
        );
        eprintln!("SKIPPED: promtool is not installed (apt-get install prometheus)");
        return;
    }
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(text.as_bytes())
            .expect("the scrape to promtool");
    }
    let out = child.wait_with_output().expect("promtool ends");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool:\n{said}\n{text}"
    );
}

async fn post_cart_item(user: u64, product: u64) -> Answer {
    let request = Request::post(format!("/users/{user}/cart/items"))
        .header("content-type", "application/json")
        .body(Body::from(format!(
            "{{\"product_id\":{product},\"qty\":1}}"
        )))
        .expect("a request");
    send(request).await
}

/// Issue 27: the carts' cache, which an add does not invalidate (the shop's deliberately bad
/// candidate), is flagged by `GET /caches` from its verified hits; the products' is not.
#[tokio::test]
async fn caches_flag_the_cart_that_adds_do_not_invalidate() {
    let _gate = GATE.read().await;
    let user = 77;
    assert_eq!(post_cart_item(user, 1).await.status, StatusCode::NO_CONTENT);
    assert_eq!(
        get(&format!("/users/{user}/cart")).await.json()[0]["product_id"],
        1
    );
    for product in 2..=30 {
        assert_eq!(
            post_cart_item(user, product).await.status,
            StatusCode::NO_CONTENT
        );
        for _ in 0..10 {
            let cart = get(&format!("/users/{user}/cart")).await;
            assert_eq!(cart.status, StatusCode::OK);
        }
        get("/products/61").await;
    }
    // The verifications run off the callers' path: wait for them.
    let cart = memory::cart_cache();
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while cart.stats().verified + cart.stats().verify_skipped < 50 {
        assert!(std::time::Instant::now() < give_up, "{:?}", cart.stats());
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let request = Request::get("/caches")
        .header("accept", "application/json")
        .body(Body::empty())
        .expect("a request");
    let report = send(request).await.json();
    let row = |name: &str| {
        report["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no row {name} in {report}"))
    };
    let cart_row = row("memory.cart");
    assert_eq!(cart_row["verdict"]["kind"], "stale", "{cart_row}");
    let reason = cart_row["verdict"]["reason"].as_str().expect("a reason");
    assert!(reason.contains("invalidate on write"), "{reason}");
    assert!(
        cart_row["mismatched"].as_u64().expect("a count") >= 20,
        "{cart_row}"
    );
    let products = row("memory.product");
    assert_ne!(products["verdict"]["kind"], "stale", "{products}");
    let html = get("/caches").await;
    assert!(
        html.header("content-type")
            .unwrap_or("")
            .starts_with("text/html")
    );
    let page = String::from_utf8_lossy(&html.body);
    assert!(
        page.contains("memory.cart") && page.contains("stale"),
        "{page}"
    );
}
