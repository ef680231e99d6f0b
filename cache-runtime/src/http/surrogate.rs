//! Surrogate keys: the tokens an HTTP response carries (`Surrogate-Key`, Varnish's `xkey`) so
//! that the cache in front of the application can drop it by tag, as Fastly's surrogate keys
//! and Varnish's vmod_xkey do. A response's tokens are its entry's rendered tags and its
//! cache's token; an invalidation purges the same tokens.

use std::fmt::Write as _;

use http::HeaderValue;

use crate::invalidation::Invalidated;

/// The token of a rendered tag: the tag itself, with the bytes a space-separated header list
/// cannot carry written as `%XX` (space, `,`, `%`, controls and non-ASCII), so `product:42`
/// stays `product:42` and `tea & cakes` becomes `tea%20&%20cakes`.
///
/// ```
/// use cache_runtime::http::surrogate_key;
///
/// assert_eq!(surrogate_key("product:42"), "product:42");
/// assert_eq!(surrogate_key("tea, cakes"), "tea%2C%20cakes");
/// ```
pub fn surrogate_key(tag: &str) -> String {
    let mut token = String::with_capacity(tag.len());
    push_key(&mut token, tag);
    token
}

/// Appends `tag`'s token to `out`.
fn push_key(out: &mut String, tag: &str) {
    for byte in tag.bytes() {
        match byte {
            b'!'..=b'~' if byte != b',' && byte != b'%' => out.push(char::from(byte)),
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
}

/// The token every response of the cache named `cache` carries: what `clear` and a key's
/// invalidation purge (the edge does not know the cache's keys, so a key's invalidation purges
/// every response of its cache; purge one response with a tag instead).
///
/// ```
/// use cache_runtime::http::cache_surrogate_key;
///
/// assert_eq!(cache_surrogate_key("products"), "@cache:products");
/// ```
pub fn cache_surrogate_key(cache: &str) -> String {
    surrogate_key(&format!("@cache:{cache}"))
}

/// The tokens of an entry: its tags' and its cache's, space-separated; `None` without any.
pub(super) fn header_value<'a>(
    tags: impl IntoIterator<Item = &'a str>,
    cache: &str,
) -> Option<HeaderValue> {
    let mut value = String::with_capacity(64);
    for tag in tags {
        push_key(&mut value, tag);
        value.push(' ');
    }
    if !cache.is_empty() {
        push_key(&mut value, "@cache:");
        push_key(&mut value, cache);
    }
    let value = value.trim_end();
    // Visible ASCII and spaces only: always a valid header value.
    (!value.is_empty())
        .then(|| HeaderValue::from_str(value).ok())
        .flatten()
}

/// The tokens an invalidation purges.
pub(crate) fn purged(what: Invalidated<'_>) -> Vec<String> {
    match what {
        Invalidated::Tags(tags) => tags.iter().map(|tag| surrogate_key(tag)).collect(),
        Invalidated::Key { cache } | Invalidated::Cache { cache } => {
            vec![cache_surrogate_key(cache)]
        }
    }
}
