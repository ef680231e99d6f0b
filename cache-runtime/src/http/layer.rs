//! [`ResponseCacheLayer`]: a tower layer that caches whole responses of a route in a
//! [`Cache`], with its single-flight, freshness phases, tags and backends.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{ETAG, HeaderMap, HeaderName};
use http::{Request, Response, StatusCode};
use http_body::Body;
use tower_layer::Layer;
use tower_service::Service;

use super::CacheHeaders;
use super::request_key::{self, Query, RequestKey, Route};
use super::stored::{BoxError, Captured, ResponseBody, StoredResponse, capture};
use crate::answer::Cached;
use crate::cache::Cache;

/// A tower [`Layer`] that caches the whole responses of the service it wraps (an axum route, a
/// hyper service) in a [`Cache<RequestKey, StoredResponse>`]: on any backend, with the cache's
/// single-flight (one request reaches the service per key at a time), `stale`,
/// `stale_if_error`, `ttl`, byte budget and tags; answered with [`CacheHeaders`]' headers
/// (`Cache-Control`, `Age`, a content `ETag` and `304`, `Vary`, surrogate keys).
///
/// - **Key** ([`RequestKey`]): the method, the host, the path, the query parameters (all but the
///   tracking ones by default: `utm_*`, `gclid`, `fbclid`, `msclkid`, …; or only those named
///   by [`query_params`](Self::query_params)), sorted, and the values of the `Vary` headers.
/// - **Cached:** `GET` requests without `Authorization`, answered with a heuristically
///   cacheable status (`200`, `203`, `204`, `300`, `301`, `308`, `404`, `405`, `410`, `414`,
///   `501`), without `Set-Cookie` or a `Cache-Control` of `no-store`, `private` or `no-cache`,
///   whose body is at most [`max_body`](Self::max_body) bytes (1 MiB by default). Anything
///   else passes through untouched (a body over the cap streams on) and is never stored.
/// - **Errors:** a server error (`5xx`) is the load's failure: with `stale_if_error` the
///   expired response answers in its place; else it passes through. A response that may not
///   be kept for another reason (a redirect that is not permanent, `Set-Cookie`, …) is this
///   caller's answer, and the next caller asks the service again.
/// - **Writes:** a successful (`2xx`, `3xx`) `POST`, `PUT`, `PATCH` or `DELETE` drops the
///   response kept for its URL (and this request's `Vary` values), as RFC 9111 §4.4 asks. It
///   is a key's invalidation: with a [`VarnishPurger`](super::VarnishPurger) installed, it
///   purges every response of this layer's cache at the edge (the edge does not know keys).
/// - **Conditions:** the service is asked for whole responses (`If-None-Match`, `Range`, … are
///   not passed on); a client's `If-None-Match` is answered `304` from what is kept.
/// - **`Vary`:** a response that varies by a request header the key does not hold (its own
///   `Vary` names one the layer's [`CacheHeaders::vary`] does not, or `*`) is not kept.
///   `Cookie` is not in the key unless named: a route whose page depends on it must say so.
/// - **Tags:** [`tags`](Self::tags) renders tags from the route's path parameters
///   (`/products/{id}` → `product:{id}`), so `invalidate_tag("product:42")` drops the
///   response here and, with a [`VarnishPurger`](super::VarnishPurger), at the edge.
///
/// ```
/// use std::time::Duration;
/// use cache_runtime::http::{CacheHeaders, ResponseCacheLayer};
/// use cache_runtime::{Backend, Cache};
///
/// let pages = Cache::builder("pages")
///     .ttl(Duration::from_secs(60))
///     .stale_if_error(Duration::from_secs(600))
///     .backend(Backend::Memory)
///     .build()
///     .expect("valid settings");
/// let layer = ResponseCacheLayer::new(pages)
///     .tags("/products/{id}", ["product:{id}", "catalog"])
///     .expect("the tags name the route's parameters")
///     .query_params(["page"])
///     .headers(CacheHeaders::public().vary(http::header::ACCEPT_LANGUAGE));
/// // axum: Router::new().route("/products/{id}", get(handler).route_layer(layer))
/// # let _ = layer;
/// ```
#[derive(Clone)]
pub struct ResponseCacheLayer {
    settings: Arc<Settings>,
}

struct Settings {
    cache: Cache<RequestKey, StoredResponse>,
    query: Query,
    route: Option<(Route, Vec<String>)>,
    max_body: usize,
    headers: CacheHeaders,
}

/// A tag template that names a parameter its route does not have, or a route that does not
/// parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError(String);

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TemplateError {}

impl ResponseCacheLayer {
    /// A layer caching in `cache` (its name, backend, `ttl`, `stale`, `stale_if_error`,
    /// `max_bytes`… are the cache's), with public headers, every non-tracking query
    /// parameter in the key, no tags and a 1 MiB body cap.
    pub fn new(cache: Cache<RequestKey, StoredResponse>) -> ResponseCacheLayer {
        ResponseCacheLayer {
            settings: Arc::new(Settings {
                cache,
                query: Query::AllBut(Vec::new()),
                route: None,
                max_body: 1 << 20,
                headers: CacheHeaders::public(),
            }),
        }
    }

    fn with(mut self, change: impl FnOnce(&mut Settings)) -> ResponseCacheLayer {
        match Arc::get_mut(&mut self.settings) {
            Some(settings) => change(settings),
            None => {
                let old = &self.settings;
                let mut settings = Settings {
                    cache: old.cache,
                    query: old.query.clone(),
                    route: old.route.clone(),
                    max_body: old.max_body,
                    headers: old.headers.clone(),
                };
                change(&mut settings);
                self.settings = Arc::new(settings);
            }
        }
        self
    }

    /// Keys by these query parameters only (others are left out of the key).
    #[must_use]
    pub fn query_params<I, S>(self, names: I) -> ResponseCacheLayer
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let names = names.into_iter().map(Into::into).collect();
        self.with(|s| s.query = Query::Only(names))
    }

    /// Leaves these query parameters out of the key, besides the tracking ones.
    #[must_use]
    pub fn ignore_params<I, S>(self, names: I) -> ResponseCacheLayer
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let names = names.into_iter().map(Into::into).collect();
        self.with(|s| s.query = Query::AllBut(names))
    }

    /// The tags of each response, rendered from the path parameters of `route`
    /// (`/products/{id}`: a `{name}` is a whole segment). A path that does not match the route
    /// is cached without tags. An error names a tag's parameter the route does not have.
    pub fn tags<I, S>(self, route: &str, tags: I) -> Result<ResponseCacheLayer, TemplateError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let parsed = Route::parse(route).map_err(TemplateError)?;
        let tags: Vec<String> = tags.into_iter().map(Into::into).collect();
        let names: Vec<(&str, &str)> = parsed.params().map(|p| (p, p)).collect();
        if let Some(bad) = tags
            .iter()
            .find(|t| request_key::render(t, &names).is_none())
        {
            return Err(TemplateError(format!(
                "the tag `{bad}` names a parameter `{route}` does not have (or a `{{` it does not close)"
            )));
        }
        Ok(self.with(|s| s.route = Some((parsed, tags))))
    }

    /// The largest body stored, in bytes (default 1 MiB); a larger response passes through.
    #[must_use]
    pub fn max_body(self, bytes: usize) -> ResponseCacheLayer {
        self.with(|s| s.max_body = bytes)
    }

    /// The headers of its responses (default [`CacheHeaders::public`]); their `Vary` headers
    /// are part of the key.
    #[must_use]
    pub fn headers(self, headers: CacheHeaders) -> ResponseCacheLayer {
        self.with(|s| s.headers = headers)
    }
}

impl fmt::Debug for ResponseCacheLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseCacheLayer")
            .field("cache", &self.settings.cache.handle().name())
            .field("query", &self.settings.query)
            .field("max_body", &self.settings.max_body)
            .field("headers", &self.settings.headers)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for ResponseCacheLayer {
    type Service = ResponseCache<S>;

    fn layer(&self, inner: S) -> ResponseCache<S> {
        ResponseCache {
            inner,
            settings: Arc::clone(&self.settings),
        }
    }
}

/// The service of a [`ResponseCacheLayer`].
#[derive(Clone)]
pub struct ResponseCache<S> {
    inner: S,
    settings: Arc<Settings>,
}

impl<S> fmt::Debug for ResponseCache<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseCache").finish_non_exhaustive()
    }
}

/// Why a load stored nothing: the service's error, or a response passed through.
enum Miss<E, B> {
    Service(E),
    Passed(Response<ResponseBody<B>>),
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for ResponseCache<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    ReqB: Send + 'static,
    ResB: Body<Data = Bytes> + Send + 'static,
    ResB::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody<ResB>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqB>) -> Self::Future {
        // The service polled ready is the one that serves; a clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let settings = Arc::clone(&self.settings);
        let Some(key) = request_key::of(&request, &settings.query, settings.headers.varied())
        else {
            // A write to a URL drops the responses of that URL kept for this request's
            // variant (RFC 9111 §4.4), once the write succeeded.
            let written =
                request_key::written(&request, &settings.query, settings.headers.varied());
            let response = inner.call(request);
            return Box::pin(async move {
                let response = response.await?;
                if let Some(key) = written
                    && (response.status().is_success() || response.status().is_redirection())
                {
                    let _ = settings.cache.invalidate_async(&key).await;
                }
                Ok(response.map(|body| ResponseBody::passed(Default::default(), Box::pin(body))))
            });
        };
        let tags = settings.tags_of(request.uri().path());
        let asked = request.headers().clone();
        // The service is asked for the whole, current response: the client's conditions are
        // answered from what is kept.
        for name in CONDITIONS {
            request.headers_mut().remove(name);
        }
        Box::pin(async move {
            let (max_body, varied) = (settings.max_body, settings.headers.varied().to_vec());
            let load = move || async move {
                match inner.call(request).await {
                    Err(e) => Err(Miss::Service(e)),
                    Ok(response) => match capture(response, max_body, &varied).await {
                        Captured::Stored(stored) => Ok(stored),
                        Captured::Passed(response) => Err(Miss::Passed(response)),
                    },
                }
            };
            match settings.cache.try_entry_tagged_async(key, tags, load).await {
                (Some(entry), None | Some(Miss::Service(_))) => Ok(settings.serve(&asked, &entry)),
                // What this call's service answered and may not be kept: a server error
                // (`5xx`) is the load's failure, and a kept response answers in its place
                // (`stale_if_error`); any other (a redirect, `Set-Cookie`, a body over the
                // cap) is the answer.
                (Some(entry), Some(Miss::Passed(response))) => {
                    match response.status().is_server_error() {
                        true => Ok(settings.serve(&asked, &entry)),
                        false => Ok(response),
                    }
                }
                (None, Some(Miss::Passed(response))) => Ok(response),
                (None, Some(Miss::Service(e))) => Err(e),
                (None, None) => Ok(unanswered()),
            }
        })
    }
}

/// The request headers of a condition or a range: not sent to the service when the layer
/// loads (it keeps whole responses; the client's conditions are answered from them).
const CONDITIONS: [HeaderName; 6] = [
    http::header::IF_NONE_MATCH,
    http::header::IF_MODIFIED_SINCE,
    http::header::IF_MATCH,
    http::header::IF_UNMODIFIED_SINCE,
    http::header::IF_RANGE,
    http::header::RANGE,
];

/// A `502` no cache keeps: a load ended with neither a value nor an error (not expected).
fn unanswered<B>() -> Response<ResponseBody<B>> {
    let mut response = Response::new(ResponseBody::full(Bytes::new()));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}

impl Settings {
    /// The tags of a response to `path`: `None` without [`ResponseCacheLayer::tags`] (the
    /// cache's own `tags` function then renders them), none when the path does not match.
    fn tags_of(&self, path: &str) -> Option<Vec<String>> {
        let (route, tags) = self.route.as_ref()?;
        let Some(params) = route.matches(path) else {
            return Some(Vec::new());
        };
        Some(
            tags.iter()
                .filter_map(|t| request_key::render(t, &params))
                .collect(),
        )
    }

    /// The response of a stored entry: its headers, the caching headers, and `304` for a
    /// matching `If-None-Match` on a `200`.
    fn serve<B>(
        &self,
        asked: &HeaderMap,
        entry: &Cached<StoredResponse>,
    ) -> Response<ResponseBody<B>> {
        let stored = entry.value();
        let mut headers = stored.header_map();
        headers.extend(self.headers.headers(entry));
        let mut status = stored.status();
        let mut body = stored.body().clone();
        if status == StatusCode::OK
            && let Some(etag) = stored.etag()
        {
            if super::if_none_match(asked, &etag) {
                status = StatusCode::NOT_MODIFIED;
                body = Bytes::new();
                headers.remove(http::header::CONTENT_TYPE);
            }
            headers.insert(ETAG, etag);
        }
        let mut response = Response::new(ResponseBody::full(body));
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        response
    }
}
