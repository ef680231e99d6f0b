//! [`CacheHeaders`]: the caching headers of a response made from a cached result, and its
//! `304 Not Modified`.

use std::fmt::{self, Write as _};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{AGE, CACHE_CONTROL, CONTENT_TYPE, ETAG, HeaderName, HeaderValue, VARY};
use http::{HeaderMap, Response, StatusCode};
use http_body_util::Full;

use super::etag::{self, Memo};
use super::surrogate;
use crate::answer::{CacheStatus, Cached};

/// The response type of this module: a whole body.
pub type FullResponse = Response<Full<Bytes>>;

/// Who may keep a response (RFC 9111 §5.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// Any cache, a CDN's or Varnish's included.
    Public,
    /// Only the user's own client (the browser); shared caches must not.
    Private,
}

/// How the responses of one representation (a route's JSON, say) tell clients and caches in
/// front how long they may keep it, made from the [`Cached`] answer of `f_entry` or of a
/// [`Cache`](crate::Cache)'s `entry_or_load`:
///
/// - `Cache-Control`: `public` or `private`, `max-age` = the entry's whole lifetime (sent with
///   `Age`, as RFC 9111 §4.2.3 counts age), `stale-while-revalidate` from `stale` and
///   `stale-if-error` from `stale_if_error` (RFC 5861); `no-store` when nothing is cached (an
///   error, a result that was not stored);
/// - `Age`: the entry's age in whole seconds, rounded up (so `max-age − Age` never claims more
///   freshness than the entry has);
/// - `ETag`: a strong validator of the body's bytes ([`content_etag`](super::content_etag)):
///   the same content has the same ETag in every process and after a reload, so a revalidation
///   at expiry gets a `304`;
/// - `304 Not Modified` for a matching `If-None-Match`, without encoding the body when this
///   value answered a conditional request for that entry before (the ETags of 4,096 entries
///   are kept, by version and the values of the `Vary` headers);
/// - `Vary` as configured; `Surrogate-Key` and `xkey` (configurable) with the entry's rendered
///   tags and its cache's token, which [`VarnishPurger`](super::VarnishPurger) purges on
///   `invalidate_tag`, `clear` and `f_invalidate`;
/// - `X-Cache`: `HIT`, `STALE`, `NULL-HIT` or `MISS` (off with [`x_cache(false)`](Self::x_cache)).
///
/// Keep one per representation, in a `static` or your state: the ETags it remembers are those
/// of the bodies it encoded.
///
/// ```
/// use cache_runtime::http::CacheHeaders;
/// use cache_runtime::cached;
/// use http::{HeaderMap, StatusCode};
///
/// #[cached(ttl = 60, stale = "30s", tags = ["product:{id}"], backend = "memory")]
/// fn product(id: u64) -> String {
///     format!("product {id}")
/// }
///
/// let headers = CacheHeaders::public();
/// let first = headers.json(&HeaderMap::new(), &product_entry(7));
/// assert_eq!(first.status(), StatusCode::OK);
/// let control = first.headers()["cache-control"].to_str().unwrap();
/// assert!(control.starts_with("public, max-age="), "{control}");
/// assert!(control.ends_with(", stale-while-revalidate=30"), "{control}");
/// assert!(first.headers()["xkey"].to_str().unwrap().starts_with("product:7 @cache:"));
///
/// // A revalidation with the ETag: `304`, no body.
/// let mut request = HeaderMap::new();
/// request.insert("if-none-match", first.headers()["etag"].clone());
/// assert_eq!(headers.json(&request, &product_entry(7)).status(), StatusCode::NOT_MODIFIED);
/// ```
#[derive(Clone)]
pub struct CacheHeaders {
    scope: Scope,
    vary: Vec<HeaderName>,
    surrogate: Vec<HeaderName>,
    x_cache: bool,
    etags: Arc<Memo>,
}

impl fmt::Debug for CacheHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheHeaders")
            .field("scope", &self.scope)
            .field("vary", &self.vary)
            .field("surrogate", &self.surrogate)
            .field("x_cache", &self.x_cache)
            .finish_non_exhaustive()
    }
}

/// The `X-Cache` header.
const X_CACHE: HeaderName = HeaderName::from_static("x-cache");
/// Fastly's surrogate keys.
const SURROGATE_KEY: HeaderName = HeaderName::from_static("surrogate-key");
/// Varnish vmod_xkey's.
const XKEY: HeaderName = HeaderName::from_static("xkey");

impl CacheHeaders {
    /// Responses any cache may keep (`Cache-Control: public`): what every user sees alike.
    pub fn public() -> CacheHeaders {
        CacheHeaders::new(Scope::Public)
    }

    /// Responses only the user's own client may keep (`Cache-Control: private`): a user's
    /// own data. No surrogate keys are sent (no shared cache keeps them).
    pub fn private() -> CacheHeaders {
        CacheHeaders::new(Scope::Private).surrogate_keys([])
    }

    fn new(scope: Scope) -> CacheHeaders {
        CacheHeaders {
            scope,
            vary: Vec::new(),
            surrogate: vec![SURROGATE_KEY, XKEY],
            x_cache: true,
            etags: Arc::new(Memo::new()),
        }
    }

    /// Adds a request header the response varies by (`Vary`), e.g. `accept-language`.
    #[must_use]
    pub fn vary(mut self, header: HeaderName) -> CacheHeaders {
        if !self.vary.contains(&header) {
            self.vary.push(header);
        }
        self
    }

    /// The headers that carry the surrogate keys (default: `Surrogate-Key` and `xkey`; none
    /// for an empty list).
    #[must_use]
    pub fn surrogate_keys(mut self, headers: impl IntoIterator<Item = HeaderName>) -> CacheHeaders {
        self.surrogate = headers.into_iter().collect();
        self
    }

    /// Whether responses carry `X-Cache` (default: yes).
    #[must_use]
    pub fn x_cache(mut self, on: bool) -> CacheHeaders {
        self.x_cache = on;
        self
    }

    /// The headers `Vary` names.
    pub(crate) fn varied(&self) -> &[HeaderName] {
        &self.vary
    }

    /// `200` with `entry`'s value as JSON (`serde_json`), or `304` for a matching
    /// `If-None-Match`; with the caching headers. A value that does not serialize is a `500`
    /// with `no-store`, logged.
    pub fn json<T: serde::Serialize>(
        &self,
        request: &HeaderMap,
        entry: &Cached<T>,
    ) -> FullResponse {
        self.json_of(request, entry, entry.value())
    }

    /// [`json`](Self::json) of `body`, a value made from `entry`'s alone (an `Ok(Some(p))`'s
    /// `p`, say): its headers are `entry`'s.
    pub fn json_of<R, T: serde::Serialize + ?Sized>(
        &self,
        request: &HeaderMap,
        entry: &Cached<R>,
        body: &T,
    ) -> FullResponse {
        let json = HeaderValue::from_static("application/json");
        self.respond(request, entry, StatusCode::OK, json, || {
            serde_json::to_vec(body)
        })
    }

    /// The answer to a lookup that may find nothing or fail (`Result<Option<T>, E>`, the
    /// usual shape of a cached query): `Ok(Some(v))` is [`json_of`](Self::json_of) `v`;
    /// `Ok(None)` a `404` with the caching headers (a cached null is kept by caches in front
    /// for its `null_ttl`) and the body `{"error":"not found"}`; `Err(e)` a `500` with
    /// `no-store` and `{"error":"<e>"}`, logged.
    ///
    /// ```
    /// use cache_runtime::cached;
    /// use cache_runtime::http::CacheHeaders;
    /// use http::{HeaderMap, StatusCode};
    ///
    /// #[cached(ttl = 60, null_ttl = 10, backend = "memory")]
    /// fn product(id: u64) -> Result<Option<String>, String> {
    ///     match id {
    ///         0 => Err("the database is down".into()),
    ///         1..=99 => Ok(Some(format!("product {id}"))),
    ///         _ => Ok(None),
    ///     }
    /// }
    ///
    /// let headers = CacheHeaders::public();
    /// let request = HeaderMap::new();
    /// assert_eq!(headers.json_lookup(&request, &product_entry(7)).status(), StatusCode::OK);
    /// let missing = headers.json_lookup(&request, &product_entry(500));
    /// assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    /// assert!(missing.headers()["cache-control"].to_str().unwrap().contains("max-age="));
    /// let failed = headers.json_lookup(&request, &product_entry(0));
    /// assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
    /// assert_eq!(failed.headers()["cache-control"], "no-store");
    /// ```
    pub fn json_lookup<T, E>(
        &self,
        request: &HeaderMap,
        entry: &Cached<Result<Option<T>, E>>,
    ) -> FullResponse
    where
        T: serde::Serialize,
        E: fmt::Display,
    {
        let json = || HeaderValue::from_static("application/json");
        match entry.value() {
            Ok(Some(value)) => self.json_of(request, entry, value),
            Ok(None) => self.respond(request, entry, StatusCode::NOT_FOUND, json(), || {
                Ok::<_, std::convert::Infallible>(&br#"{"error":"not found"}"#[..])
            }),
            Err(e) => {
                let message = e.to_string();
                tracing::error!(error = %message, "cache-runtime: a cached lookup failed");
                let body = serde_json::to_vec(&serde_json::json!({ "error": message }))
                    .unwrap_or_default();
                no_store(StatusCode::INTERNAL_SERVER_ERROR, json(), body)
            }
        }
    }

    /// A response of `status` with the body `encode` makes, and `entry`'s caching headers
    /// (the `ETag` and `304` only for a `200`): `encode` runs unless a `304` answers. An error
    /// of `encode` is a `500` with `no-store`, logged.
    pub fn respond<R, B, E>(
        &self,
        request: &HeaderMap,
        entry: &Cached<R>,
        status: StatusCode,
        content_type: HeaderValue,
        encode: impl FnOnce() -> Result<B, E>,
    ) -> FullResponse
    where
        B: Into<Bytes>,
        E: fmt::Display,
    {
        let mut headers = self.headers(entry);
        let validated = status == StatusCode::OK && headers.contains_key(CACHE_CONTROL);
        // For a conditional request, the ETag of this entry's body if this value encoded it
        // before (hashing a body costs less than a lookup: others hash it again).
        let conditional = request.contains_key(http::header::IF_NONE_MATCH);
        let version = entry
            .version()
            .filter(|_| validated && conditional)
            .map(|v| self.memo_key(v, request));
        let remembered = version.and_then(|v| self.etags.get(v));
        if let Some(etag) = &remembered
            && etag::if_none_match(request, etag)
        {
            headers.insert(ETAG, etag.clone());
            return not_modified(headers);
        }
        let body: Bytes = match encode() {
            Ok(body) => body.into(),
            Err(e) => {
                tracing::error!(error = %e, "cache-runtime: encoding a cached response failed");
                return no_store(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                    "the response could not be encoded",
                );
            }
        };
        if validated {
            let etag = match (remembered, version) {
                (Some(etag), _) => etag,
                (None, version) => {
                    let etag = etag::content_etag(&body);
                    if let Some(version) = version {
                        self.etags.insert(version, etag.clone());
                    }
                    etag
                }
            };
            let matched = etag::if_none_match(request, &etag);
            headers.insert(ETAG, etag);
            if matched {
                return not_modified(headers);
            }
        }
        headers.insert(CONTENT_TYPE, content_type);
        with_headers(status, headers, body)
    }

    /// What the ETag of a body is remembered by: the entry's version and, with `Vary`, the
    /// request's values of the varied headers (another variant is another body).
    fn memo_key(&self, version: u64, request: &HeaderMap) -> u64 {
        if self.vary.is_empty() {
            return version;
        }
        let mut bytes = version.to_le_bytes().to_vec();
        for name in &self.vary {
            for value in request.get_all(name) {
                bytes.extend_from_slice(value.as_bytes());
                bytes.push(0);
            }
            bytes.push(b'\n');
        }
        xxhash_rust::xxh3::xxh3_64(&bytes)
    }

    /// The caching headers of `entry`, without `ETag` (made from the body): `Cache-Control`,
    /// `Age`, `Vary`, the surrogate keys and `X-Cache`. `Cache-Control: no-store` (and no
    /// `Age`) when no stored entry answered.
    pub fn headers<R>(&self, entry: &Cached<R>) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(8);
        if let Some(value) = vary(&self.vary) {
            headers.insert(VARY, value);
        }
        if self.x_cache {
            headers.insert(X_CACHE, HeaderValue::from_static(x_cache(entry.status())));
        }
        let stored = entry.version().is_some() && !entry.lifetime().is_zero();
        if !stored {
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            return headers;
        }
        if let Some(control) = self.cache_control(entry) {
            headers.insert(CACHE_CONTROL, control);
        }
        headers.insert(AGE, HeaderValue::from(whole_seconds_up(entry.age())));
        if let Some(keys) =
            surrogate::header_value(entry.tags().iter().map(String::as_str), entry.cache_name())
        {
            for name in &self.surrogate {
                headers.insert(name.clone(), keys.clone());
            }
        }
        headers
    }

    /// `Cache-Control` of a stored entry.
    fn cache_control<R>(&self, entry: &Cached<R>) -> Option<HeaderValue> {
        let scope = match self.scope {
            Scope::Public => "public",
            Scope::Private => "private",
        };
        let mut control = format!("{scope}, max-age={}", entry.lifetime().as_secs());
        let windows = [
            ("stale-while-revalidate", entry.stale_while_revalidate()),
            ("stale-if-error", entry.stale_if_error()),
        ];
        for (directive, window) in windows {
            if window.as_secs() > 0 {
                let _ = write!(control, ", {directive}={}", window.as_secs());
            }
        }
        HeaderValue::from_str(&control).ok()
    }
}

/// `X-Cache` of a status.
fn x_cache(status: CacheStatus) -> &'static str {
    match status {
        CacheStatus::Hit => "HIT",
        CacheStatus::Stale => "STALE",
        CacheStatus::NullHit => "NULL-HIT",
        _ => "MISS",
    }
}

/// `d` in whole seconds, rounded up.
fn whole_seconds_up(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// `Vary` of `names`, comma-separated; `None` for none.
fn vary(names: &[HeaderName]) -> Option<HeaderValue> {
    if names.is_empty() {
        return None;
    }
    let list: Vec<&str> = names.iter().map(HeaderName::as_str).collect();
    HeaderValue::from_str(&list.join(", ")).ok()
}

/// A `304 Not Modified` with `headers` (RFC 9110 §15.4.5: the validators and caching headers
/// a `200` would carry), without a body.
fn not_modified(headers: HeaderMap) -> FullResponse {
    with_headers(StatusCode::NOT_MODIFIED, headers, Bytes::new())
}

fn with_headers(status: StatusCode, headers: HeaderMap, body: Bytes) -> FullResponse {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// A response no cache may keep (`Cache-Control: no-store`): an error, a write's answer.
///
/// ```
/// use cache_runtime::http::no_store;
/// use http::{HeaderValue, StatusCode};
///
/// let response = no_store(StatusCode::BAD_GATEWAY, HeaderValue::from_static("text/plain"), "down");
/// assert_eq!(response.headers()["cache-control"], "no-store");
/// ```
pub fn no_store(
    status: StatusCode,
    content_type: HeaderValue,
    body: impl Into<Bytes>,
) -> FullResponse {
    let mut headers = HeaderMap::new();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(CONTENT_TYPE, content_type);
    with_headers(status, headers, body.into())
}
