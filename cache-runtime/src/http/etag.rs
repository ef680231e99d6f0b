//! Content ETags: a strong validator made from the bytes of a response's body, so the same
//! bytes have the same ETag in every process, every build and across reloads (RFC 9110 §8.8.3).

use http::HeaderMap;
use http::header::{HeaderValue, IF_NONE_MATCH};

/// The strong `ETag` of a body: its 128-bit XXH3 hash (xxHash's XXH3, seed 0), as 32 lowercase
/// hex digits in quotes. Equal bytes give equal ETags anywhere; a changed body changes it
/// (a collision is a 2⁻¹²⁸ chance per pair of bodies).
///
/// ```
/// use cache_runtime::http::content_etag;
///
/// let etag = content_etag(br#"{"id":1}"#);
/// assert_eq!(etag, content_etag(br#"{"id":1}"#));
/// assert_ne!(etag, content_etag(br#"{"id":2}"#));
/// assert_eq!(etag.len(), 34);
/// ```
pub fn content_etag(body: &[u8]) -> HeaderValue {
    let hash = xxhash_rust::xxh3::xxh3_128(body);
    let text = format!("\"{hash:032x}\"");
    // Quotes and hex digits: always a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

/// Whether the request's `If-None-Match` matches `etag`: the weak comparison RFC 9110 §13.1.2
/// asks of this header (a `W/` prefix is ignored on either side), and `*` matches any current
/// representation. Several headers and comma-separated lists are read.
///
/// ```
/// use cache_runtime::http::{content_etag, if_none_match};
/// use http::{HeaderMap, HeaderValue, header::IF_NONE_MATCH};
///
/// let etag = content_etag(b"body");
/// let mut request = HeaderMap::new();
/// request.insert(IF_NONE_MATCH, HeaderValue::from_str(&format!("\"x\", W/{}", etag.to_str().unwrap())).unwrap());
/// assert!(if_none_match(&request, &etag));
/// assert!(!if_none_match(&HeaderMap::new(), &etag));
/// ```
pub fn if_none_match(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let Ok(etag) = etag.to_str() else {
        return false;
    };
    let etag = opaque(etag);
    request
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || opaque(tag) == etag)
}

/// An entity tag without its weakness indicator.
fn opaque(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

/// The ETags of the entries a [`CacheHeaders`](super::CacheHeaders) has answered, by entry
/// version: a conditional request for an entry seen before is answered `304` without encoding
/// its body again. A version names one stored entry (its value does not change), so a memo
/// is never wrong; it is bounded and forgets the least used.
#[derive(Debug)]
pub(super) struct Memo(quick_cache::sync::Cache<u64, HeaderValue>);

/// How many entries' ETags a memo keeps.
const MEMO_ENTRIES: usize = 4096;

impl Memo {
    pub(super) fn new() -> Memo {
        Memo(quick_cache::sync::Cache::new(MEMO_ENTRIES))
    }

    pub(super) fn get(&self, version: u64) -> Option<HeaderValue> {
        self.0.get(&version)
    }

    pub(super) fn insert(&self, version: u64, etag: HeaderValue) {
        self.0.insert(version, etag);
    }
}
