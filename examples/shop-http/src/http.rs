//! The HTTP handlers. The caching headers come from cache-runtime's `http` module
//! (`CacheHeaders`): `Cache-Control`, `Age`, a content `ETag` and `304`, surrogate keys.

use std::fmt::Write as _;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cache_runtime::Cached;
use cache_runtime::http::{CacheHeaders, no_store};
use serde::{Deserialize, Serialize};
use tokio::task::spawn_blocking;

use crate::{AppState, Mode, Product, TopProduct, User, db, memory, pages};
#[cfg(feature = "redis")]
use crate::{redis, tiered};

/// The shop's routes, on `state`.
pub fn router(state: AppState) -> Router {
    let page = get(get_product_page);
    let page = match pages::layer(state.mode()) {
        Some(layer) => page.route_layer(layer),
        None => page,
    };
    Router::new()
        .route("/products/{id}", get(get_product).put(put_product))
        .route("/pages/products/{id}", page)
        .route("/users/{id}", get(get_user))
        .route("/users/{id}/cart", get(crate::cart::get_cart))
        .route("/users/{id}/cart/items", post(crate::cart::post_cart_item))
        .route("/caches", get(crate::caches::get_caches))
        .route("/categories/{category}/top", get(get_top))
        .route("/browser", get(browser_page))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(state)
}

/// Requests that reached the shop, by kind: `GET /products/{id}`, `GET /users/{id}` (what a
/// cache in front, the browser's or Varnish, did not answer).
static PRODUCT_REQUESTS: AtomicU64 = AtomicU64::new(0);
static USER_REQUESTS: AtomicU64 = AtomicU64::new(0);

/// How many `GET /products/{id}` and `GET /users/{id}` requests reached the shop, in this
/// process.
pub fn requests() -> (u64, u64) {
    (PRODUCT_REQUESTS.load(Relaxed), USER_REQUESTS.load(Relaxed))
}

/// `GET /browser`: a page whose script fetches product 5 twice and user 3 twice and writes
/// what it got: the browser test's page (the second fetches come from the browser's cache).
async fn browser_page() -> Response {
    const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>shop-http in a browser</title></head>
<body><pre id="out">running</pre>
<script>
(async () => {
  const lines = [];
  for (const path of ["/products/5", "/products/5", "/users/3", "/users/3"]) {
    const answer = await fetch(path);
    const body = await answer.json();
    lines.push(path + " " + answer.status + " " + (body.id ?? "-"));
  }
  document.getElementById("out").textContent = "done\n" + lines.join("\n");
})().catch((e) => { document.getElementById("out").textContent = "failed " + e; });
</script></body></html>
"#;
    let html = HeaderValue::from_static("text/html; charset=utf-8");
    no_store(StatusCode::OK, html, PAGE).into_response()
}

/// The headers of each representation: products and best sellers may be kept by any cache
/// (a CDN, Varnish) and carry their tags as surrogate keys; a user only by their browser.
static PRODUCT: LazyLock<CacheHeaders> = LazyLock::new(CacheHeaders::public);
static TOP: LazyLock<CacheHeaders> = LazyLock::new(CacheHeaders::public);
static USER: LazyLock<CacheHeaders> = LazyLock::new(CacheHeaders::private);

/// A value, from its cache (with how it was answered) or, in mode `none`, from SQLite.
enum Lookup<R> {
    Cached(Cached<R>),
    Uncached(R),
}

/// Calls `$entry` (the cached function's `_entry` twin) of the mode's module, or `$uncached`
/// in mode `none`, and wraps the result in a [`Lookup`]. Blocking.
macro_rules! by_mode {
    ($mode:expr, $entry:ident, $uncached:ident, $($arg:expr),+) => {
        match $mode {
            Mode::Uncached => Lookup::Uncached(memory::$uncached($($arg),+)),
            Mode::Memory => Lookup::Cached(memory::$entry($($arg),+)),
            #[cfg(feature = "redis")]
            Mode::Redis => Lookup::Cached(redis::$entry($($arg),+)),
            #[cfg(feature = "redis")]
            Mode::Tiered => Lookup::Cached(tiered::$entry($($arg),+)),
        }
    };
}

/// `application/json`.
fn json_type() -> HeaderValue {
    HeaderValue::from_static("application/json")
}

/// An answer of mode `none`: `value` as JSON, `no-store`, `X-Cache: BYPASS`.
fn bypass(status: StatusCode, value: &impl Serialize) -> Response {
    let mut response = no_store(
        status,
        json_type(),
        serde_json::to_vec(value).unwrap_or_default(),
    );
    response
        .headers_mut()
        .insert("x-cache", HeaderValue::from_static("BYPASS"));
    response.into_response()
}

/// A JSON error, not to be stored by anyone.
fn error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::to_vec(&ErrorBody { error: message }).unwrap_or_default();
    no_store(status, json_type(), body).into_response()
}

/// A `500`, logged.
fn failure(message: &str) -> Response {
    tracing::error!(error = message, "request failed");
    error(StatusCode::INTERNAL_SERVER_ERROR, message)
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

#[derive(Serialize)]
struct NotFound<'a, I> {
    error: &'a str,
    id: I,
}

/// The answer to a lookup by id: the value (`304` for a matching `If-None-Match`), a `404`
/// (a cached null carries the caching headers, without an `ETag`), or a `500` for an error
/// (never cached).
fn by_id<T: Serialize>(
    lookup: Lookup<Result<Option<T>, String>>,
    headers: &CacheHeaders,
    request: &HeaderMap,
    what: &str,
    id: u64,
) -> Response {
    let message = format!("no {what} with this id");
    let missing = NotFound {
        error: &message,
        id,
    };
    match lookup {
        Lookup::Uncached(Ok(Some(value))) => bypass(StatusCode::OK, &value),
        Lookup::Uncached(Ok(None)) => bypass(StatusCode::NOT_FOUND, &missing),
        Lookup::Cached(entry) => match entry.value() {
            Ok(Some(value)) => headers.json_of(request, &entry, value).into_response(),
            Ok(None) => headers
                .respond(request, &entry, StatusCode::NOT_FOUND, json_type(), || {
                    serde_json::to_vec(&missing)
                })
                .into_response(),
            Err(e) => failure(e),
        },
        Lookup::Uncached(Err(e)) => failure(&e),
    }
}

/// `GET /products/{id}`: shared caches may keep it (`public`), with `stale-while-revalidate`.
async fn get_product(
    State(state): State<AppState>,
    Path(id): Path<u64>,
    request: HeaderMap,
) -> Response {
    PRODUCT_REQUESTS.fetch_add(1, Relaxed);
    let mode = state.mode();
    let lookup: Lookup<Result<Option<Product>, String>> =
        match spawn_blocking(move || by_mode!(mode, product_entry, product_uncached, id)).await {
            Ok(lookup) => lookup,
            Err(e) => return failure(&format!("the product lookup failed: {e}")),
        };
    by_id(lookup, &PRODUCT, &request, "product", id)
}

/// `GET /pages/products/{id}`: a product's HTML page, rendered from SQLite on every call; the
/// route's `ResponseCacheLayer` caches it (mode `none`: `no-store`).
async fn get_product_page(State(state): State<AppState>, Path(id): Path<u64>) -> Response {
    let product = match spawn_blocking(move || memory::product_uncached(id)).await {
        Ok(Ok(product)) => product,
        Ok(Err(e)) => return failure(&e),
        Err(e) => return failure(&format!("the product lookup failed: {e}")),
    };
    let (status, body) = match product {
        Some(p) => (StatusCode::OK, product_page(&p)),
        None => (
            StatusCode::NOT_FOUND,
            "<!doctype html><title>Not found</title><p>No such product.</p>\n".to_owned(),
        ),
    };
    let html = HeaderValue::from_static("text/html; charset=utf-8");
    match state.mode() {
        Mode::Uncached => no_store(status, html, body).into_response(),
        _ => (status, [(CONTENT_TYPE, html)], body).into_response(),
    }
}

/// A product's page.
fn product_page(p: &Product) -> String {
    let name = escape(&p.name);
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{name}</title></head>\n\
         <body><h1>{name}</h1><p class=\"category\">{category}</p>\
         <p class=\"price\">{dollars}.{cents:02}</p></body></html>\n",
        category = escape(&p.category),
        dollars = p.price_cents / 100,
        cents = p.price_cents % 100,
    )
}

/// `text` with HTML's special characters escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `GET /users/{id}`: only the user's own client may keep it (`private`); a missing user is a
/// `404`, cached as a null.
async fn get_user(
    State(state): State<AppState>,
    Path(id): Path<u64>,
    request: HeaderMap,
) -> Response {
    USER_REQUESTS.fetch_add(1, Relaxed);
    let mode = state.mode();
    let lookup: Lookup<Result<Option<User>, String>> =
        match spawn_blocking(move || by_mode!(mode, user_entry, user_uncached, id)).await {
            Ok(lookup) => lookup,
            Err(e) => return failure(&format!("the user lookup failed: {e}")),
        };
    by_id(lookup, &USER, &request, "user", id)
}

/// `GET /categories/{category}/top`: a category's ten best sellers (`404` for a category the
/// shop does not have, before any cache is touched).
async fn get_top(
    State(state): State<AppState>,
    Path(category): Path<String>,
    request: HeaderMap,
) -> Response {
    if !db::CATEGORIES.contains(&category.as_str()) {
        return error(StatusCode::NOT_FOUND, "no such category");
    }
    let mode = state.mode();
    let lookup: Lookup<Result<Vec<TopProduct>, String>> = match spawn_blocking(move || {
        by_mode!(
            mode,
            top_in_category_entry,
            top_in_category_uncached,
            category
        )
    })
    .await
    {
        Ok(lookup) => lookup,
        Err(e) => return failure(&format!("the best sellers' lookup failed: {e}")),
    };
    match lookup {
        Lookup::Uncached(Ok(top)) => bypass(StatusCode::OK, &top),
        Lookup::Cached(entry) => match entry.value() {
            Ok(top) => TOP.json_of(&request, &entry, top).into_response(),
            Err(e) => failure(e),
        },
        Lookup::Uncached(Err(e)) => failure(&e),
    }
}

/// The body of `PUT /products/{id}`: what to change (at least one of the two).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductChange {
    name: Option<String>,
    price_cents: Option<i64>,
}

impl ProductChange {
    /// Parses and checks a request body; the message of a `400` otherwise.
    fn parse(body: &[u8]) -> Result<ProductChange, String> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(
                "empty body: send JSON such as {\"name\": \"…\", \"price_cents\": 1234}".into(),
            );
        }
        let change: ProductChange =
            serde_json::from_slice(body).map_err(|e| format!("bad JSON: {e}"))?;
        if change.name.is_none() && change.price_cents.is_none() {
            return Err("nothing to change: give `name`, `price_cents` or both".into());
        }
        if let Some(name) = &change.name
            && (name.trim().is_empty() || name.len() > 200)
        {
            return Err("`name` must be 1 to 200 bytes of text".into());
        }
        if change.price_cents.is_some_and(|p| p < 0) {
            return Err("`price_cents` must not be negative".into());
        }
        Ok(change)
    }
}

/// Drops what a product's change makes wrong: its own entries and its category's best
/// sellers, in every function and, on Redis, in every process (one round trip). Blocking.
fn invalidate_product(mode: Mode, product: &Product) {
    if mode == Mode::Uncached {
        return;
    }
    let tags = [
        format!("product:{}", product.id),
        format!("category:{}", product.category),
    ];
    let done = cache_runtime::invalidate_tags(&tags);
    if done.is_pending() {
        // Done in this process; kept and replayed when Redis answers again.
        tracing::warn!(
            product = product.id,
            "Redis unreachable: the invalidation is pending"
        );
    }
}

/// `PUT /products/{id}` with `{"name": "…", "price_cents": 1234}` (either may be left out):
/// updates SQLite, then invalidates the product's tags; `200` with the product as it is now.
async fn put_product(State(state): State<AppState>, Path(id): Path<u64>, body: Bytes) -> Response {
    let change = match ProductChange::parse(&body) {
        Ok(change) => change,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let mode = state.mode();
    let updated = spawn_blocking(move || {
        let updated = db::update_product(id, change.name.as_deref(), change.price_cents)?;
        if let Some(product) = &updated {
            invalidate_product(mode, product);
        }
        Ok::<_, String>(updated)
    })
    .await;
    match updated {
        Ok(Ok(Some(product))) => {
            tracing::debug!(
                product = id,
                price_cents = product.price_cents,
                "product updated"
            );
            let body = serde_json::to_vec(&product).unwrap_or_default();
            no_store(StatusCode::OK, json_type(), body).into_response()
        }
        Ok(Ok(None)) => error(StatusCode::NOT_FOUND, "no product with this id"),
        Ok(Err(e)) => failure(&e),
        Err(e) => failure(&format!("the update failed: {e}")),
    }
}

/// `GET /metrics`: every cache's figures (exported now, not 5 s ago) in Prometheus' text
/// format, and `shop_db_queries_total`.
async fn metrics(State(state): State<AppState>) -> Response {
    cache_runtime::export_metrics();
    let mut text = state
        .prometheus()
        .map(|prometheus| prometheus.render())
        .unwrap_or_default();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    let _ = writeln!(
        text,
        "# HELP shop_db_queries_total Queries that reached the shop's SQLite database.\n\
         # TYPE shop_db_queries_total counter\n\
         shop_db_queries_total {}",
        db::queries()
    );
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            ),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        text,
    )
        .into_response()
}

/// `GET /healthz`.
async fn healthz() -> &'static str {
    "ok"
}
