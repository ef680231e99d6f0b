//! The HTTP handlers, and the caching headers they derive from a cache entry.

use std::fmt::Write as _;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header::{AGE, CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cache_runtime::{CacheStatus, Cached};
use serde::{Deserialize, Serialize};
use tokio::task::spawn_blocking;

use crate::{AppState, Mode, Product, TopProduct, User, db, memory};
#[cfg(feature = "redis")]
use crate::{redis, tiered};

/// The shop's routes, on `state`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/products/{id}", get(get_product).put(put_product))
        .route("/users/{id}", get(get_user))
        .route("/categories/{category}/top", get(get_top))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(state)
}

/// What a cache answered, besides the value: what the caching headers are made of.
#[derive(Clone, Copy, Debug)]
struct Entry {
    /// `X-Cache`.
    status: &'static str,
    age: Duration,
    /// The entry's whole freshness lifetime: `max-age`, sent with `Age` (an HTTP cache keeps
    /// a response fresh while `max-age > Age`, RFC 9111 §4.2).
    lifetime: Duration,
    stale_while_revalidate: Duration,
    version: Option<u64>,
}

/// A value, and the entry it came from (`None` in mode `none`).
struct Lookup<R> {
    entry: Option<Entry>,
    value: R,
}

impl<R> Lookup<R> {
    fn cached(cached: Cached<R>) -> Lookup<R> {
        let entry = Entry {
            status: x_cache(cached.status()),
            age: cached.age(),
            lifetime: cached.lifetime(),
            stale_while_revalidate: cached.stale_while_revalidate(),
            version: cached.version(),
        };
        Lookup {
            entry: Some(entry),
            value: cached.into_inner(),
        }
    }

    fn uncached(value: R) -> Lookup<R> {
        Lookup { entry: None, value }
    }
}

fn x_cache(status: CacheStatus) -> &'static str {
    match status {
        CacheStatus::Hit => "HIT",
        CacheStatus::Stale => "STALE",
        CacheStatus::NullHit => "NULL-HIT",
        // `Miss`, and whatever a later version adds.
        _ => "MISS",
    }
}

/// Calls `$entry` (the cached function's `_entry` twin) of the mode's module, or `$uncached`
/// in mode `none`, and wraps the result in a [`Lookup`]. Blocking.
macro_rules! by_mode {
    ($mode:expr, $entry:ident, $uncached:ident, $($arg:expr),+) => {
        match $mode {
            Mode::Uncached => Lookup::uncached(memory::$uncached($($arg),+)),
            Mode::Memory => Lookup::cached(memory::$entry($($arg),+)),
            #[cfg(feature = "redis")]
            Mode::Redis => Lookup::cached(redis::$entry($($arg),+)),
            #[cfg(feature = "redis")]
            Mode::Tiered => Lookup::cached(tiered::$entry($($arg),+)),
        }
    };
}

/// Who may keep a response: any cache (`public`), or only the user's own client (`private`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Audience {
    Public,
    Private,
}

/// The `ETag` of an entry's version: 16 hex digits, quoted (a strong validator).
fn etag(version: u64) -> String {
    format!("\"{version:016x}\"")
}

/// The caching headers of an answer: `Cache-Control`, `Age`, `ETag` (when the entry has a
/// version and `with_etag`), and `X-Cache`. In mode `none`: `no-store` and `X-Cache: BYPASS`.
fn cache_headers(entry: Option<&Entry>, audience: Audience, with_etag: bool) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let Some(entry) = entry else {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert("x-cache", HeaderValue::from_static("BYPASS"));
        return headers;
    };
    let scope = match audience {
        Audience::Public => "public",
        Audience::Private => "private",
    };
    let mut control = format!("{scope}, max-age={}", entry.lifetime.as_secs());
    if !entry.stale_while_revalidate.is_zero() {
        let _ = write!(
            control,
            ", stale-while-revalidate={}",
            entry.stale_while_revalidate.as_secs()
        );
    }
    // Text formatted here: ASCII letters, digits and punctuation, always a valid value.
    if let Ok(control) = HeaderValue::from_str(&control) {
        headers.insert(CACHE_CONTROL, control);
    }
    headers.insert(AGE, HeaderValue::from(entry.age.as_secs()));
    if with_etag
        && let Some(version) = entry.version
        && let Ok(value) = HeaderValue::from_str(&etag(version))
    {
        headers.insert(ETAG, value);
    }
    headers.insert("x-cache", HeaderValue::from_static(entry.status));
    headers
}

/// Whether the request's `If-None-Match` matches `etag` (weak comparison, as RFC 9110 asks
/// for this header: a `W/` prefix is ignored; `*` matches any current representation).
fn none_match(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let Ok(etag) = etag.to_str() else {
        return false;
    };
    request
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// A JSON answer: `value` serialized with serde_json, with `headers`.
fn json(status: StatusCode, mut headers: HeaderMap, value: &impl Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            (status, headers, Body::from(body)).into_response()
        }
        Err(e) => failure(&format!("serializing the answer: {e}")),
    }
}

/// A JSON error, not to be stored by anyone.
fn error(status: StatusCode, message: &str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    json(status, headers, &ErrorBody { error: message })
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

/// A found value: `304` when the request's `If-None-Match` matches the entry's `ETag` (the
/// value is not serialized), else `200` with the value as JSON; both with the caching headers.
fn found<T: Serialize>(
    entry: Option<Entry>,
    audience: Audience,
    request: &HeaderMap,
    value: &T,
) -> Response {
    let headers = cache_headers(entry.as_ref(), audience, true);
    if let Some(etag) = headers.get(ETAG)
        && none_match(request, etag)
    {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    json(StatusCode::OK, headers, value)
}

/// The answer to a lookup by id: the value, a `404` (a cached null carries the caching
/// headers, without an `ETag`), or a `500` for an error (never cached).
fn by_id<T: Serialize>(
    lookup: Lookup<Result<Option<T>, String>>,
    audience: Audience,
    request: &HeaderMap,
    what: &str,
    id: u64,
) -> Response {
    match lookup.value {
        Ok(Some(value)) => found(lookup.entry, audience, request, &value),
        Ok(None) => {
            let headers = cache_headers(lookup.entry.as_ref(), audience, false);
            let message = format!("no {what} with this id");
            json(
                StatusCode::NOT_FOUND,
                headers,
                &NotFound {
                    error: &message,
                    id,
                },
            )
        }
        Err(e) => failure(&e),
    }
}

/// `GET /products/{id}`: shared caches may keep it (`public`), with `stale-while-revalidate`.
async fn get_product(
    State(state): State<AppState>,
    Path(id): Path<u64>,
    request: HeaderMap,
) -> Response {
    let mode = state.mode();
    let lookup: Lookup<Result<Option<Product>, String>> =
        match spawn_blocking(move || by_mode!(mode, product_entry, product_uncached, id)).await {
            Ok(lookup) => lookup,
            Err(e) => return failure(&format!("the product lookup failed: {e}")),
        };
    by_id(lookup, Audience::Public, &request, "product", id)
}

/// `GET /users/{id}`: only the user's own client may keep it (`private`); a missing user is a
/// `404`, cached as a null.
async fn get_user(
    State(state): State<AppState>,
    Path(id): Path<u64>,
    request: HeaderMap,
) -> Response {
    let mode = state.mode();
    let lookup: Lookup<Result<Option<User>, String>> =
        match spawn_blocking(move || by_mode!(mode, user_entry, user_uncached, id)).await {
            Ok(lookup) => lookup,
            Err(e) => return failure(&format!("the user lookup failed: {e}")),
        };
    by_id(lookup, Audience::Private, &request, "user", id)
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
    match lookup.value {
        Ok(top) => found(lookup.entry, Audience::Public, &request, &top),
        Err(e) => failure(&e),
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
            let mut headers = HeaderMap::new();
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            json(StatusCode::OK, headers, &product)
        }
        Ok(Ok(None)) => error(StatusCode::NOT_FOUND, "no product with this id"),
        Ok(Err(e)) => failure(&e),
        Err(e) => failure(&format!("the update failed: {e}")),
    }
}

/// `GET /metrics`: every cache's figures (exported now, not 5 s ago) in Prometheus' text
/// format, and `shop_db_queries`.
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
        "# HELP shop_db_queries Queries that reached the shop's SQLite database.\n\
         # TYPE shop_db_queries counter\n\
         shop_db_queries {}",
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
