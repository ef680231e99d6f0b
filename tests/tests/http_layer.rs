//! Issue 26: `ResponseCacheLayer`, a tower layer caching whole responses, on every backend
//! (memory always; Redis and tiered with the `redis` feature and a server): the key (tracking
//! parameters left out, named parameters, `Vary`), single-flight under concurrent requests,
//! what is never stored (other methods, `Authorization`, `Set-Cookie`, `no-store`, bodies over
//! the cap, errors), `stale_if_error`, tags from path parameters, and `304`s.

mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::Duration;

use bytes::Bytes;
use cache_runtime::http::{CacheHeaders, RequestKey, ResponseCacheLayer, StoredResponse};
use cache_runtime::{Backend, Cache, invalidate_tag};
use common::wait_until;
use http::header::{ACCEPT_LANGUAGE, IF_NONE_MATCH};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::util::BoxCloneService;
use tower::{Layer, ServiceExt, service_fn};

/// The origin service's type.
type Origins = BoxCloneService<Request<Full<Bytes>>, Response<Full<Bytes>>, Infallible>;

/// What the inner service answers for a path, and how often it was called.
#[derive(Clone)]
struct Origin {
    calls: Arc<AtomicU32>,
    status: Arc<AtomicU32>,
}

impl Origin {
    fn new() -> Origin {
        Origin {
            calls: Arc::new(AtomicU32::new(0)),
            status: Arc::new(AtomicU32::new(200)),
        }
    }

    fn calls(&self) -> u32 {
        self.calls.load(SeqCst)
    }

    /// The service: `/big/..` answers 64 KiB, `/cookie/..` sets a cookie, `/nostore/..` says
    /// `no-store`; every other path its own text with the status set; the body names the
    /// call and the `accept-language`.
    fn service(&self) -> Origins {
        let origin = self.clone();
        BoxCloneService::new(service_fn(move |request: Request<Full<Bytes>>| {
            let origin = origin.clone();
            async move {
                let call = origin.calls.fetch_add(1, SeqCst) + 1;
                let path = request.uri().path().to_owned();
                let language = request
                    .headers()
                    .get(ACCEPT_LANGUAGE)
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default();
                let mut response = Response::builder()
                    .status(origin.status.load(SeqCst) as u16)
                    .header("content-type", "text/plain");
                let body = if path.starts_with("/big/") {
                    "x".repeat(64 << 10)
                } else {
                    format!("{path} {language}")
                };
                if path.starts_with("/cookie/") {
                    response = response.header("set-cookie", "session=1");
                }
                if path.starts_with("/nostore/") {
                    response = response.header("cache-control", "no-store");
                }
                let _ = call;
                Ok(response.body(Full::new(Bytes::from(body))).unwrap())
            }
        }))
    }
}

fn pages(test: &str, backend: Backend) -> Cache<RequestKey, StoredResponse> {
    Cache::builder(format!("layer-{test}-{backend:?}"))
        .ttl(Duration::from_secs(60))
        .backend(backend)
        .build()
        .expect("valid settings")
}

/// Sends `request` through `layer` around `origin`; the status, headers and body.
async fn send(
    layer: &ResponseCacheLayer,
    origin: &Origin,
    request: Request<Full<Bytes>>,
) -> (StatusCode, http::HeaderMap, String) {
    let response = layer
        .layer(origin.service())
        .oneshot(request)
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

fn get(uri: &str) -> Request<Full<Bytes>> {
    Request::get(uri).body(Full::default()).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn the_key_leaves_out_tracking_parameters_and_keeps_the_rest() {
    let rt = runtime();
    for backend in common::cache_backends() {
        rt.block_on(async {
            let origin = Origin::new();
            let layer = ResponseCacheLayer::new(pages("query", backend));
            let (status, headers, body) = send(&layer, &origin, get("/p/1?b=2&a=1")).await;
            assert_eq!((status, body.as_str()), (StatusCode::OK, "/p/1 "));
            assert_eq!(headers["x-cache"], "MISS");
            // Tracking parameters and order do not matter.
            for uri in [
                "/p/1?a=1&b=2",
                "/p/1?utm_source=mail&a=1&gclid=7&b=2&fbclid=x",
            ] {
                let (_, headers, _) = send(&layer, &origin, get(uri)).await;
                assert_eq!(headers["x-cache"], "HIT", "{uri} {backend:?}");
            }
            assert_eq!(origin.calls(), 1, "{backend:?}");
            // Another value of a parameter that matters is another response.
            send(&layer, &origin, get("/p/1?a=2&b=2")).await;
            assert_eq!(origin.calls(), 2, "{backend:?}");
            // Only the named parameters.
            let named = ResponseCacheLayer::new(pages("named", backend)).query_params(["page"]);
            send(&named, &origin, get("/q?page=1&sort=x")).await;
            send(&named, &origin, get("/q?sort=y&page=1")).await;
            assert_eq!(origin.calls(), 3, "{backend:?}");
            send(&named, &origin, get("/q?page=2")).await;
            assert_eq!(origin.calls(), 4, "{backend:?}");
        });
    }
}

#[test]
fn vary_headers_are_part_of_the_key() {
    let rt = runtime();
    for backend in common::cache_backends() {
        rt.block_on(async {
            let origin = Origin::new();
            let layer = ResponseCacheLayer::new(pages("vary", backend))
                .headers(CacheHeaders::public().vary(ACCEPT_LANGUAGE));
            let in_ = |language: &str| {
                Request::get("/v")
                    .header(ACCEPT_LANGUAGE, language)
                    .body(Full::default())
                    .unwrap()
            };
            let (_, headers, fr) = send(&layer, &origin, in_("fr")).await;
            let (_, _, de) = send(&layer, &origin, in_("de")).await;
            let (_, again, fr_again) = send(&layer, &origin, in_("fr")).await;
            assert_eq!((fr.as_str(), de.as_str()), ("/v fr", "/v de"));
            assert_eq!(fr_again, fr);
            assert_eq!(again["x-cache"], "HIT");
            assert_eq!(headers["vary"], "accept-language");
            assert_eq!(origin.calls(), 2, "{backend:?}");
        });
    }
}

#[test]
fn concurrent_requests_for_a_cold_page_reach_the_service_once() {
    let rt = runtime();
    for backend in common::cache_backends() {
        let cache = pages("flight", backend);
        let layer = ResponseCacheLayer::new(cache);
        let calls = Arc::new(AtomicU32::new(0));
        let service = {
            let calls = Arc::clone(&calls);
            service_fn(move |_request: Request<Full<Bytes>>| {
                let calls = Arc::clone(&calls);
                async move {
                    calls.fetch_add(1, SeqCst);
                    // Hold the response until every request has missed or waits.
                    tokio::task::spawn_blocking(move || {
                        wait_until("32 requests arrived", || {
                            let s = cache.stats();
                            s.misses + s.hits >= 32
                        });
                    })
                    .await
                    .unwrap();
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"page"))))
                }
            })
        };
        let service = layer.layer(service);
        let bodies = rt.block_on(async move {
            let tasks: Vec<_> = (0..32)
                .map(|_| {
                    let service = service.clone();
                    tokio::spawn(async move {
                        let response = service.oneshot(get("/cold")).await.unwrap();
                        response.into_body().collect().await.unwrap().to_bytes()
                    })
                })
                .collect();
            let mut bodies = Vec::new();
            for task in tasks {
                bodies.push(task.await.unwrap());
            }
            bodies
        });
        assert!(bodies.iter().all(|b| b == "page"), "{backend:?}");
        assert_eq!(
            calls.load(SeqCst),
            1,
            "{backend:?}: one call for 32 requests"
        );
    }
}

#[test]
fn what_must_not_be_stored_passes_through() {
    let rt = runtime();
    for backend in common::cache_backends() {
        rt.block_on(async {
            let origin = Origin::new();
            let layer = ResponseCacheLayer::new(pages("pass", backend)).max_body(16 << 10);
            let post = || Request::post("/p/1").body(Full::default()).unwrap();
            let authorized = || {
                Request::get("/p/1")
                    .header("authorization", "Bearer x")
                    .body(Full::default())
                    .unwrap()
            };
            for request in [post, authorized] {
                send(&layer, &origin, request()).await;
                send(&layer, &origin, request()).await;
            }
            assert_eq!(
                origin.calls(),
                4,
                "{backend:?}: methods and credentials pass"
            );
            for path in ["/cookie/1", "/nostore/1", "/big/1"] {
                let before = origin.calls();
                let (status, _, body) = send(&layer, &origin, get(path)).await;
                send(&layer, &origin, get(path)).await;
                assert_eq!(status, StatusCode::OK);
                assert_eq!(
                    origin.calls(),
                    before + 2,
                    "{path} {backend:?}: never stored"
                );
                if path == "/big/1" {
                    assert_eq!(body.len(), 64 << 10, "a body over the cap streams on whole");
                }
            }
            // An error is not stored either.
            origin.status.store(503, SeqCst);
            let (status, headers, _) = send(&layer, &origin, get("/e/1")).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
            assert!(headers.get("x-cache").is_none());
            origin.status.store(200, SeqCst);
            let (status, headers, _) = send(&layer, &origin, get("/e/1")).await;
            assert_eq!(
                (status, &headers["x-cache"]),
                (
                    StatusCode::OK,
                    &"MISS".parse::<http::HeaderValue>().unwrap()
                )
            );
        });
    }
}

#[test]
fn an_expired_page_answers_in_place_of_an_error_with_stale_if_error() {
    let rt = runtime();
    for backend in common::cache_backends() {
        rt.block_on(async {
            let origin = Origin::new();
            let cache = Cache::builder(format!("layer-sie-{backend:?}"))
                .ttl(Duration::from_secs(1))
                .stale_if_error(Duration::from_secs(60))
                .backend(backend)
                .build()
                .unwrap();
            let layer = ResponseCacheLayer::new(cache);
            let (_, fresh, body) = send(&layer, &origin, get("/s/1")).await;
            assert!(
                fresh["cache-control"]
                    .to_str()
                    .unwrap()
                    .contains("stale-if-error=60")
            );
            // Past its ttl for sure (jitter only shortens it); the origin now fails.
            tokio::time::sleep(Duration::from_millis(1100)).await;
            origin.status.store(500, SeqCst);
            let (status, headers, stale) = send(&layer, &origin, get("/s/1")).await;
            assert_eq!(status, StatusCode::OK, "{backend:?}");
            assert_eq!(stale, body);
            assert_eq!(headers["x-cache"], "STALE");
            assert_eq!(
                origin.calls(),
                2,
                "{backend:?}: the origin was asked, and failed"
            );
        });
    }
}

#[test]
fn tags_from_path_parameters_invalidate_a_page() {
    let rt = runtime();
    for backend in common::cache_backends() {
        rt.block_on(async {
            let origin = Origin::new();
            let tag = format!("layer-product-{backend:?}");
            let layer = ResponseCacheLayer::new(pages("tags", backend))
                .tags(
                    "/products/{id}",
                    [format!("{tag}:{{id}}"), "layer-catalog".to_owned()],
                )
                .unwrap();
            let (_, headers, _) = send(&layer, &origin, get("/products/7")).await;
            let keys = headers["xkey"].to_str().unwrap().to_owned();
            assert_eq!(
                keys,
                format!("{tag}:7 layer-catalog @cache:layer-tags-{backend:?}")
            );
            send(&layer, &origin, get("/products/8")).await;
            assert_eq!(origin.calls(), 2);
            let _ = invalidate_tag(&format!("{tag}:7"));
            let (_, headers, _) = send(&layer, &origin, get("/products/7")).await;
            assert_eq!(headers["x-cache"], "MISS", "{backend:?}");
            let (_, headers, _) = send(&layer, &origin, get("/products/8")).await;
            assert_eq!(headers["x-cache"], "HIT", "{backend:?}");
            assert_eq!(origin.calls(), 3, "{backend:?}");
            assert!(
                ResponseCacheLayer::new(pages("bad-tags", backend))
                    .tags("/products/{id}", ["product:{sku}"])
                    .is_err()
            );
        });
    }
}

#[test]
fn a_matching_if_none_match_is_a_304_from_the_cache() {
    let rt = runtime();
    for backend in common::cache_backends() {
        rt.block_on(async {
            let origin = Origin::new();
            let layer = ResponseCacheLayer::new(pages("etag", backend));
            let (_, headers, _) = send(&layer, &origin, get("/e/2")).await;
            let etag = headers["etag"].clone();
            assert_eq!(etag, cache_runtime::http::content_etag(b"/e/2 "));
            let conditional = Request::get("/e/2")
                .header(IF_NONE_MATCH, etag.clone())
                .body(Full::default())
                .unwrap();
            let (status, headers, body) = send(&layer, &origin, conditional).await;
            assert_eq!((status, body.as_str()), (StatusCode::NOT_MODIFIED, ""));
            assert_eq!(headers["etag"], etag);
            assert!(
                headers["cache-control"]
                    .to_str()
                    .unwrap()
                    .starts_with("public, max-age=")
            );
            assert_eq!(origin.calls(), 1, "{backend:?}");
        });
    }
}

/// What a scripted service answers for a path: a status, and a header to add.
type Script = fn(&str) -> (u16, Option<(&'static str, &'static str)>);

/// A service answering each path as the test's script says.
fn scripted(calls: Arc<AtomicU32>, answer: Script) -> Origins {
    BoxCloneService::new(service_fn(move |request: Request<Full<Bytes>>| {
        let calls = Arc::clone(&calls);
        async move {
            calls.fetch_add(1, SeqCst);
            let path = request.uri().path().to_owned();
            let (status, header) = answer(&path);
            let mut response = Response::builder().status(status);
            if let Some((name, value)) = header {
                response = response.header(name, value);
            }
            // What the service saw of the client's conditions.
            let conditional = request.headers().contains_key(IF_NONE_MATCH);
            let body = format!("{path} conditional={conditional}");
            Ok(response.body(Full::new(Bytes::from(body))).unwrap())
        }
    }))
}

async fn through(
    layer: &ResponseCacheLayer,
    service: &Origins,
    request: Request<Full<Bytes>>,
) -> (StatusCode, http::HeaderMap, String) {
    let response = layer.layer(service.clone()).oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

#[test]
fn an_answer_that_may_not_be_kept_is_not_replaced_by_a_kept_one() {
    let rt = runtime();
    for backend in common::cache_backends() {
        rt.block_on(async {
            static REDIRECT: AtomicU32 = AtomicU32::new(0);
            REDIRECT.store(0, SeqCst);
            let calls = Arc::new(AtomicU32::new(0));
            let service = scripted(Arc::clone(&calls), |_| match REDIRECT.load(SeqCst) {
                0 => (200, None),
                _ => (302, Some(("location", "/elsewhere"))),
            });
            let cache = Cache::builder(format!("layer-302-{backend:?}"))
                .ttl(Duration::from_secs(1))
                .stale_if_error(Duration::from_secs(60))
                .backend(backend)
                .build()
                .unwrap();
            let layer = ResponseCacheLayer::new(cache);
            let (status, _, _) = through(&layer, &service, get("/r")).await;
            assert_eq!(status, StatusCode::OK);
            tokio::time::sleep(Duration::from_millis(1100)).await;
            // Expired; the service now redirects: that is the answer, not the kept 200.
            REDIRECT.store(1, SeqCst);
            let (status, headers, _) = through(&layer, &service, get("/r")).await;
            assert_eq!(status, StatusCode::FOUND, "{backend:?}");
            assert_eq!(headers["location"], "/elsewhere");
        });
    }
}

#[test]
fn hosts_vary_writes_and_conditions() {
    let rt = runtime();
    for backend in common::cache_backends() {
        rt.block_on(async {
            let calls = Arc::new(AtomicU32::new(0));
            let service = scripted(Arc::clone(&calls), |path| match path {
                "/varies" => (200, Some(("vary", "Accept-Encoding"))),
                _ => (200, None),
            });
            let layer = ResponseCacheLayer::new(pages("hosts", backend));
            let on = |host: &str| {
                Request::get("/h")
                    .header("host", host)
                    .body(Full::default())
                    .unwrap()
            };
            // Two hosts, two pages.
            let (_, _, a) = through(&layer, &service, on("a.example")).await;
            let (_, hit, _) = through(&layer, &service, on("a.example")).await;
            through(&layer, &service, on("b.example")).await;
            assert_eq!(hit["x-cache"], "HIT");
            assert_eq!(calls.load(SeqCst), 2, "{backend:?}: one page per host");
            assert_eq!(a, "/h conditional=false");
            // A response varying by a header the key does not hold is not kept.
            through(&layer, &service, get("/varies")).await;
            through(&layer, &service, get("/varies")).await;
            assert_eq!(calls.load(SeqCst), 4, "{backend:?}");
            // A client's condition is not passed on: the page is loaded whole and kept, and the
            // condition answered from it.
            let etag = cache_runtime::http::content_etag(b"/c conditional=false");
            let conditional = Request::get("/c")
                .header(IF_NONE_MATCH, etag.clone())
                .body(Full::default())
                .unwrap();
            let (status, _, body) = through(&layer, &service, conditional).await;
            assert_eq!(
                (status, body.as_str()),
                (StatusCode::NOT_MODIFIED, ""),
                "{backend:?}"
            );
            let (status, headers, body) = through(&layer, &service, get("/c")).await;
            assert_eq!(
                (status, body.as_str()),
                (StatusCode::OK, "/c conditional=false")
            );
            assert_eq!(headers["x-cache"], "HIT");
            // A write to the URL drops its page.
            let put = Request::put("/c").body(Full::default()).unwrap();
            through(&layer, &service, put).await;
            let (_, headers, _) = through(&layer, &service, get("/c")).await;
            assert_eq!(
                headers["x-cache"], "MISS",
                "{backend:?}: the PUT dropped it"
            );
        });
    }
}
