//! Issue 26: `cache_runtime::http::CacheHeaders` on the answers of `f_entry`, judged by an RFC
//! 9111 implementation nobody here wrote (the `http-cache-semantics` crate): storable, fresh
//! and stale exactly as the headers claim; content ETags the same across reloads and
//! processes; `304` without encoding the body; surrogate keys; and the invalidation hooks.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, SystemTime};

use cache_runtime::http::{CacheHeaders, FullResponse, content_etag, no_store};
use cache_runtime::{CacheStatus, Invalidated, cached, invalidate_tag, on_invalidate};
use http::header::{HeaderValue, IF_NONE_MATCH};
use http::{HeaderMap, Request, StatusCode};
use http_cache_semantics::{CacheOptions, CachePolicy};
use serde::{Serialize, Serializer};

/// RFC 9111's view of `response` to `GET uri` by a shared cache (`shared`) or a browser's,
/// without heuristic freshness: only what the headers say.
fn policy(uri: &str, response: &FullResponse, shared: bool) -> CachePolicy {
    let request = Request::get(uri).body(()).unwrap();
    let options = CacheOptions {
        shared,
        cache_heuristic: 0.0,
        ..CacheOptions::default()
    };
    let (parts, _) = clone_head(response);
    CachePolicy::new_options(&request, &parts, SystemTime::now(), options)
}

fn clone_head(response: &FullResponse) -> (http::response::Parts, ()) {
    let mut head = http::Response::new(());
    *head.status_mut() = response.status();
    *head.headers_mut() = response.headers().clone();
    head.into_parts()
}

fn header<'a>(response: &'a FullResponse, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .map_or("", |v| v.to_str().unwrap())
}

fn conditional(etag: &HeaderValue) -> HeaderMap {
    let mut request = HeaderMap::new();
    request.insert(IF_NONE_MATCH, etag.clone());
    request
}

static PRODUCT_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 60, stale = "30s", stale_if_error = "10m", key = "{id}", tags = ["product:{id}", "catalog"], backend = "memory", name = "http-product")]
fn product(id: u64) -> String {
    PRODUCT_LOADS.fetch_add(1, SeqCst);
    format!("product {id}")
}

#[test]
fn a_public_answer_is_fresh_for_what_its_headers_claim() {
    let headers = CacheHeaders::public();
    let miss = headers.json(&HeaderMap::new(), &product_entry(1));
    let hit_entry = product_entry(1);
    assert_eq!(hit_entry.status(), CacheStatus::Hit);
    let hit = headers.json(&HeaderMap::new(), &hit_entry);
    for response in [&miss, &hit] {
        assert_eq!(response.status(), StatusCode::OK);
        let control = header(response, "cache-control");
        assert!(control.starts_with("public, max-age="), "{control}");
        assert!(control.contains("stale-while-revalidate=30"), "{control}");
        assert!(control.contains("stale-if-error=600"), "{control}");
        for shared in [true, false] {
            let judged = policy("/products/1", response, shared);
            assert!(judged.is_storable(), "{control}");
            assert!(!judged.is_stale(SystemTime::now()), "{control}");
            // Fresh for the entry's time left (its ttl is at most 60 s, jitter shortens it),
            // never more: `max-age − Age` rounds down.
            let left = judged.time_to_live(SystemTime::now());
            assert!(
                left <= hit_entry.fresh_for() + Duration::from_secs(1),
                "{left:?}"
            );
            assert!(left >= Duration::from_secs(50), "{left:?} of {control}");
        }
    }
    assert_eq!(header(&hit, "x-cache"), "HIT");
    assert_eq!(header(&miss, "etag"), header(&hit, "etag"));
}

#[test]
fn an_old_answer_is_stale_for_rfc_9111_too() {
    // An answer whose age is past its lifetime (as a `Stale` answer is): the headers must say
    // so, so that a shared cache does not serve it as fresh.
    #[cached(ttl = "1s", stale = "60s", backend = "memory", name = "http-old")]
    fn old(id: u64) -> u64 {
        id
    }
    let headers = CacheHeaders::public();
    let _ = old_entry(1);
    // Past its ttl for sure (jitter only shortens it).
    std::thread::sleep(Duration::from_millis(1100));
    let stale = old_entry(1);
    assert_eq!(stale.status(), CacheStatus::Stale);
    let response = headers.json(&HeaderMap::new(), &stale);
    let judged = policy("/old/1", &response, true);
    assert!(judged.is_storable());
    assert!(
        judged.is_stale(SystemTime::now()),
        "{:?}",
        response.headers()
    );
    assert_eq!(header(&response, "x-cache"), "STALE");
}

#[test]
fn private_answers_are_for_the_browser_alone() {
    #[cached(ttl = 300, backend = "memory", name = "http-user", tags = ["user:{id}"])]
    fn user(id: u64) -> String {
        format!("user {id}")
    }
    let response = CacheHeaders::private().json(&HeaderMap::new(), &user_entry(3));
    assert!(header(&response, "cache-control").starts_with("private, max-age="));
    assert!(
        !policy("/users/3", &response, true).is_storable(),
        "a shared cache must not keep it"
    );
    assert!(
        policy("/users/3", &response, false).is_storable(),
        "the browser may"
    );
    assert_eq!(
        header(&response, "xkey"),
        "",
        "no surrogate keys on private answers"
    );
}

#[test]
fn errors_and_uncached_answers_are_not_stored() {
    #[cached(ttl = 60, backend = "memory", name = "http-fails")]
    fn fails(id: u64) -> Result<u64, String> {
        Err(format!("no {id}"))
    }
    let entry = fails_entry(1);
    assert!(entry.value().is_err());
    let response = CacheHeaders::public().json(&HeaderMap::new(), &entry);
    assert_eq!(header(&response, "cache-control"), "no-store");
    assert_eq!(header(&response, "age"), "");
    assert!(!policy("/fails/1", &response, true).is_storable());
    let error = no_store(
        StatusCode::BAD_GATEWAY,
        HeaderValue::from_static("text/plain"),
        "x",
    );
    assert!(!policy("/x", &error, false).is_storable());
}

#[test]
fn a_null_answer_is_a_404_with_caching_headers_and_no_etag() {
    #[cached(ttl = 60, null_ttl = "20s", backend = "memory", name = "http-null")]
    fn missing(id: u64) -> Option<u64> {
        (id == 0).then_some(0)
    }
    let _ = missing_entry(5);
    let entry = missing_entry(5);
    assert_eq!(entry.status(), CacheStatus::NullHit);
    let json = HeaderValue::from_static("application/json");
    let response = CacheHeaders::public().respond(
        &HeaderMap::new(),
        &entry,
        StatusCode::NOT_FOUND,
        json,
        || Ok::<_, std::convert::Infallible>("{}"),
    );
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(header(&response, "etag"), "");
    let judged = policy("/missing/5", &response, true);
    assert!(judged.is_storable());
    assert!(judged.time_to_live(SystemTime::now()) <= Duration::from_secs(20));
}

#[test]
fn the_etag_is_the_contents_across_reloads() {
    #[cached(ttl = 60, backend = "memory", name = "http-reload")]
    fn price(id: u64) -> u64 {
        u64::from(PRICE.load(SeqCst)) + id
    }
    static PRICE: AtomicU32 = AtomicU32::new(100);
    let headers = CacheHeaders::public();
    let first = headers.json(&HeaderMap::new(), &price_entry(1));
    let version = price_entry(1).version();
    // Reloaded with the same content: another entry (another version), the same ETag.
    let _ = price_invalidate(1);
    let again_entry = price_entry(1);
    assert_ne!(again_entry.version(), version, "a new entry");
    let again = headers.json(&HeaderMap::new(), &again_entry);
    assert_eq!(header(&first, "etag"), header(&again, "etag"));
    // A revalidation at expiry with the old ETag gets a 304.
    let etag = first.headers()["etag"].clone();
    let revalidated = headers.json(&conditional(&etag), &price_entry(1));
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
    // A real change: another ETag, and a 200 for the old one.
    PRICE.store(200, SeqCst);
    let _ = price_invalidate(1);
    let changed = headers.json(&conditional(&etag), &price_entry(1));
    assert_eq!(changed.status(), StatusCode::OK);
    assert_ne!(header(&changed, "etag"), etag.to_str().unwrap());
    assert_eq!(changed.headers()["etag"], content_etag(b"201"));
}

/// The ETag of `product(77)`'s JSON: what the child process must find too.
const CROSS_PROCESS_ENV: &str = "CACHE_TEST_HTTP_ETAG";

#[test]
fn the_etag_is_the_same_in_another_process() {
    let etag = CacheHeaders::public()
        .json(&HeaderMap::new(), &product_entry(77))
        .headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    let mut child = tests::child::test("etag_in_a_child_process");
    child.env(CROSS_PROCESS_ENV, &etag);
    tests::child::passes(child);
}

/// Run by [`the_etag_is_the_same_in_another_process`] in a child process (and a no-op
/// otherwise).
#[test]
fn etag_in_a_child_process() {
    let Ok(expected) = std::env::var(CROSS_PROCESS_ENV) else {
        return;
    };
    let response = CacheHeaders::public().json(&HeaderMap::new(), &product_entry(77));
    assert_eq!(header(&response, "etag"), expected);
}

/// A value that counts how often it is serialized.
#[derive(Clone)]
struct Counted(u64);

static SERIALIZED: AtomicU32 = AtomicU32::new(0);

impl Serialize for Counted {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SERIALIZED.fetch_add(1, SeqCst);
        serializer.serialize_u64(self.0)
    }
}

#[test]
fn a_304_does_not_encode_the_body_again() {
    #[cached(ttl = 60, backend = "memory", name = "http-counted")]
    fn counted(id: u64) -> Counted {
        Counted(id)
    }
    let headers = CacheHeaders::public();
    let first = headers.json(&HeaderMap::new(), &counted_entry(9));
    assert_eq!(SERIALIZED.load(SeqCst), 1);
    let etag = first.headers()["etag"].clone();
    for i in 0..4 {
        let again = headers.json(&conditional(&etag), &counted_entry(9));
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()["etag"], etag);
        assert!(again.headers().contains_key("cache-control"));
        // The first conditional request of an entry encodes it once to learn its ETag; the
        // next ones are answered from what was learnt.
        assert_eq!(SERIALIZED.load(SeqCst), 2, "after conditional request {i}");
    }
    // A request without the ETag gets the body.
    let whole = headers.json(&HeaderMap::new(), &counted_entry(9));
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(SERIALIZED.load(SeqCst), 3);
}

#[test]
fn surrogate_keys_carry_the_tags_and_the_cache() {
    let response = CacheHeaders::public().json(&HeaderMap::new(), &product_entry(5));
    assert_eq!(
        header(&response, "xkey"),
        "product:5 catalog @cache:http-product"
    );
    assert_eq!(
        header(&response, "surrogate-key"),
        header(&response, "xkey")
    );
    // On a hit too (the tags are rendered for `f_entry`'s hits).
    let hit = product_entry(5);
    assert_eq!(hit.status(), CacheStatus::Hit);
    assert_eq!(hit.tags(), ["product:5", "catalog"]);
    let only_xkey = CacheHeaders::public()
        .surrogate_keys([http::HeaderName::from_static("xkey")])
        .vary(http::header::ACCEPT_LANGUAGE)
        .x_cache(false);
    let response = only_xkey.json(&HeaderMap::new(), &hit);
    assert_eq!(header(&response, "surrogate-key"), "");
    assert_eq!(header(&response, "vary"), "accept-language");
    assert_eq!(header(&response, "x-cache"), "");
    assert_eq!(cache_runtime::http::surrogate_key("a b,c%"), "a%20b%2Cc%25");
}

#[test]
fn hooks_hear_of_tags_keys_and_clears() {
    #[cached(ttl = 60, backend = "memory", name = "http-hooked")]
    fn hooked(id: u64) -> u64 {
        id
    }
    static HEARD: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let hook = on_invalidate(|what: Invalidated<'_>| {
        let mut heard = HEARD.lock().unwrap();
        match what {
            Invalidated::Tags(tags) if tags.iter().any(|t| t.starts_with("hooked:")) => {
                heard.push(format!("tags {}", tags.join(" ")));
            }
            Invalidated::Key {
                cache: "http-hooked",
                ..
            } => heard.push("key".into()),
            Invalidated::Cache {
                cache: "http-hooked",
                ..
            } => heard.push("clear".into()),
            _ => {}
        }
    });
    // A hook that panics changes nothing.
    let panicking = on_invalidate(|what: Invalidated<'_>| {
        if matches!(what, Invalidated::Key { cache, .. } if cache == "http-hooked") {
            panic!("a broken hook");
        }
    });
    hooked(1);
    // (With the `redis` feature the tags go to Redis too: done or pending, the hooks hear.)
    let _ = invalidate_tag("hooked:1");
    let _ = cache_runtime::invalidate_tags(["hooked:2", "hooked:3"]);
    assert!(hooked_invalidate(1).is_done());
    assert!(hooked_cache().clear().is_done());
    hook.remove();
    panicking.remove();
    let _ = invalidate_tag("hooked:4");
    assert_eq!(
        *HEARD.lock().unwrap(),
        ["tags hooked:1", "tags hooked:2 hooked:3", "key", "clear"]
    );
}

#[test]
fn a_load_an_invalidation_cut_off_is_not_for_keeping() {
    // The load reads the old value, then the value changes and its tag (or its key) is
    // invalidated before the load ends: the caller gets the old value, which nothing keeps,
    // so no cache in front may keep it either (`no-store`).
    #[cached(ttl = 60, key = "{id}", tags = ["cut:{id}"], backend = "memory", name = "http-cut")]
    fn cut(id: u64) -> u64 {
        match id {
            1 => {
                let _ = invalidate_tag("cut:1");
            }
            _ => {
                let _ = cut_invalidate(id);
            }
        }
        id
    }
    let headers = CacheHeaders::public();
    for id in [1, 2] {
        let entry = cut_entry(id);
        assert_eq!(entry.status(), CacheStatus::Miss);
        assert_eq!(entry.version(), None, "{id}: not kept");
        let response = headers.json(&HeaderMap::new(), &entry);
        assert_eq!(header(&response, "cache-control"), "no-store", "{id}");
        assert!(!policy("/cut", &response, true).is_storable());
    }
    // An uncut load is kept, and says so.
    #[cached(ttl = 60, key = "{id}", tags = ["uncut:{id}"], backend = "memory", name = "http-uncut")]
    fn uncut(id: u64) -> u64 {
        id
    }
    let response = headers.json(&HeaderMap::new(), &uncut_entry(1));
    assert!(header(&response, "cache-control").starts_with("public, max-age="));
}
