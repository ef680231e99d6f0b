//! What a cached response is keyed by: the method, the host, the path, the query parameters
//! that matter (sorted; tracking parameters left out) and the values of the `Vary` headers.

use http::header::HeaderName;
use http::{Method, Request};
use serde::{Deserialize, Serialize};

/// The key of a response in a [`ResponseCacheLayer`](super::ResponseCacheLayer)'s cache:
/// `GET /products/42?page=2&sort=asc`, then one line per varied header
/// (`accept-language: fr`). Two requests with the same key get the same response.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestKey(String);

impl RequestKey {
    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl crate::Weigh for RequestKey {
    fn heap_bytes(&self) -> usize {
        self.0.heap_bytes()
    }
}

/// Which query parameters are part of the key.
#[derive(Clone, Debug)]
pub(super) enum Query {
    /// Every parameter but the tracking ones (`utm_*`, `gclid`, `fbclid`, …) and those named.
    AllBut(Vec<String>),
    /// Only the parameters named.
    Only(Vec<String>),
}

/// Parameters that track a visit and never change a page: Google's and Meta's click ids,
/// Urchin (Google Analytics) campaign tags, and those of Microsoft, Mailchimp, HubSpot and
/// Matomo/Piwik.
const TRACKING: &[&str] = &[
    "gclid",
    "gclsrc",
    "dclid",
    "gbraid",
    "wbraid",
    "fbclid",
    "msclkid",
    "mc_cid",
    "mc_eid",
    "_ga",
    "_gl",
    "igshid",
    "yclid",
    "twclid",
    "ttclid",
    "li_fat_id",
];
/// Prefixes of tracking parameters.
const TRACKING_PREFIXES: &[&str] = &["utm_", "_hs", "pk_", "mtm_"];

impl Query {
    /// Whether the parameter `name` is part of the key.
    fn keeps(&self, name: &str) -> bool {
        match self {
            Query::Only(named) => named.iter().any(|n| n == name),
            Query::AllBut(left_out) => {
                let lower = name.to_ascii_lowercase();
                !(TRACKING.contains(&lower.as_str())
                    || TRACKING_PREFIXES.iter().any(|p| lower.starts_with(p))
                    || left_out.iter().any(|n| n == name))
            }
        }
    }
}

/// The key of `request`: `None` for a request whose response is not cached (a method other
/// than `GET`, or an `Authorization` header: RFC 9111 §3.5).
pub(super) fn of<B>(
    request: &Request<B>,
    query: &Query,
    vary: &[HeaderName],
) -> Option<RequestKey> {
    if request.method() != Method::GET
        || request.headers().contains_key(http::header::AUTHORIZATION)
    {
        return None;
    }
    Some(key(request, query, vary))
}

/// For a write (`POST`, `PUT`, `PATCH`, `DELETE`): the key of a `GET` of its URL with its
/// `Vary` values, whose kept response the write makes old (RFC 9111 §4.4).
pub(super) fn written<B>(
    request: &Request<B>,
    query: &Query,
    vary: &[HeaderName],
) -> Option<RequestKey> {
    let unsafe_method = [Method::POST, Method::PUT, Method::PATCH, Method::DELETE];
    unsafe_method
        .contains(request.method())
        .then(|| key(request, query, vary))
}

/// `GET <host><path>[?<query>]` and a line per varied header.
fn key<B>(request: &Request<B>, query: &Query, vary: &[HeaderName]) -> RequestKey {
    let uri = request.uri();
    let host = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            let host = request.headers().get(http::header::HOST)?;
            Some(escaped(host.as_bytes()))
        })
        .unwrap_or_default();
    let mut key = format!("GET {}{}", host.to_ascii_lowercase(), uri.path());
    let mut pairs: Vec<&str> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| query.keeps(name_of(pair)))
        .collect();
    // By name; a repeated parameter keeps its order (`a=2&a=1` is not `a=1&a=2`).
    pairs.sort_by_key(|pair| name_of(pair));
    for (i, pair) in pairs.iter().enumerate() {
        key.push(if i == 0 { '?' } else { '&' });
        key.push_str(pair);
    }
    for name in vary {
        key.push('\n');
        key.push_str(name.as_str());
        key.push(':');
        for value in request.headers().get_all(name) {
            key.push(' ');
            key.push_str(&escaped(value.as_bytes()));
        }
    }
    RequestKey(key)
}

/// A query pair's name.
fn name_of(pair: &str) -> &str {
    pair.split('=').next().unwrap_or_default()
}

/// `bytes` as text: visible ASCII and spaces as they are, every other byte (and `%`) as `%XX`,
/// so two different header values never share a key.
fn escaped(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    for &byte in bytes {
        match byte {
            b' '..=b'~' if byte != b'%' => text.push(char::from(byte)),
            _ => text.push_str(&format!("%{byte:02X}")),
        }
    }
    text
}

/// A route template, `/products/{id}`, matched against paths to render tags.
#[derive(Clone, Debug)]
pub(super) struct Route(Vec<Segment>);

#[derive(Clone, Debug)]
enum Segment {
    Literal(String),
    Param(String),
}

impl Route {
    /// Reads a template: `/`-separated segments, each a literal or a `{name}`.
    pub(super) fn parse(template: &str) -> Result<Route, String> {
        template
            .trim_matches('/')
            .split('/')
            .map(|segment| match segment.strip_prefix('{') {
                Some(rest) => match rest.strip_suffix('}') {
                    Some(name) if !name.is_empty() && !name.contains(['{', '}']) => {
                        Ok(Segment::Param(name.to_owned()))
                    }
                    _ => Err(format!("`{segment}` in `{template}` is not a `{{name}}`")),
                },
                None if segment.contains(['{', '}']) => Err(format!(
                    "`{segment}` in `{template}`: a parameter is a whole segment"
                )),
                None => Ok(Segment::Literal(segment.to_owned())),
            })
            .collect::<Result<_, _>>()
            .map(Route)
    }

    /// The names of its parameters.
    pub(super) fn params(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|s| match s {
            Segment::Param(name) => Some(name.as_str()),
            Segment::Literal(_) => None,
        })
    }

    /// The parameters of `path`, if it matches.
    pub(super) fn matches<'p>(&self, path: &'p str) -> Option<Vec<(&str, &'p str)>> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        if segments.len() != self.0.len() {
            return None;
        }
        let mut params = Vec::new();
        for (pattern, segment) in self.0.iter().zip(segments) {
            match pattern {
                Segment::Literal(literal) if literal == segment => {}
                Segment::Literal(_) => return None,
                Segment::Param(name) => params.push((name.as_str(), segment)),
            }
        }
        Some(params)
    }
}

/// Renders a tag template (`product:{id}`) with a path's parameters; `None` if it names one
/// the path does not have.
pub(super) fn render(template: &str, params: &[(&str, &str)]) -> Option<String> {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}')? + open;
        let name = &rest[open + 1..close];
        let value = params.iter().find(|(n, _)| *n == name)?.1;
        out.push_str(value);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(
        uri: &str,
        query: &Query,
        vary: &[HeaderName],
        headers: &[(&str, &str)],
    ) -> Option<String> {
        let mut request = Request::get(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        of(&request.body(()).unwrap(), query, vary).map(|k| k.0)
    }

    #[test]
    fn tracking_parameters_are_left_out_and_the_rest_sorted() {
        let all = Query::AllBut(Vec::new());
        let expected = Some("GET /p?a=1&b=2".to_owned());
        assert_eq!(
            key("/p?a=2&a=1", &all, &[], &[]),
            Some("GET /p?a=2&a=1".to_owned())
        );
        assert_ne!(
            key("/p?a=2&a=1", &all, &[], &[]),
            key("/p?a=1&a=2", &all, &[], &[])
        );
        assert_eq!(
            key("http://Shop.example/p?a=1", &all, &[], &[]),
            Some("GET shop.example/p?a=1".to_owned())
        );
        assert_eq!(
            key("/p?a=1", &all, &[], &[("host", "other.example")]),
            Some("GET other.example/p?a=1".to_owned())
        );
        assert_eq!(
            key(
                "/p?b=2&utm_source=x&a=1&gclid=9&fbclid=3&UTM_Medium=m",
                &all,
                &[],
                &[]
            ),
            expected
        );
        assert_eq!(key("/p?a=1&b=2", &all, &[], &[]), expected);
        assert_eq!(key("/p", &all, &[], &[]), Some("GET /p".to_owned()));
        let only = Query::Only(vec!["page".to_owned()]);
        assert_eq!(
            key("/p?sort=x&page=2", &only, &[], &[]),
            Some("GET /p?page=2".to_owned())
        );
    }

    #[test]
    fn vary_headers_and_uncached_requests() {
        let all = Query::AllBut(Vec::new());
        let vary = [http::header::ACCEPT_LANGUAGE];
        let fr = key("/p", &all, &vary, &[("accept-language", "fr")]);
        let de = key("/p", &all, &vary, &[("accept-language", "de")]);
        assert_ne!(fr, de);
        assert_eq!(
            key("/p", &all, &vary, &[]),
            Some("GET /p\naccept-language:".to_owned())
        );
        assert_eq!(key("/p", &all, &[], &[("authorization", "Bearer x")]), None);
        let post = Request::post("/p").body(()).unwrap();
        assert_eq!(of(&post, &all, &[]), None);
        assert_eq!(
            written(&post, &all, &[]).map(|k| k.0),
            Some("GET /p".to_owned())
        );
        let get = Request::get("/p").body(()).unwrap();
        assert_eq!(written(&get, &all, &[]), None);
    }

    #[test]
    fn routes_render_tags() {
        let route = Route::parse("/shops/{shop}/products/{id}").unwrap();
        let params = route.matches("/shops/7/products/42").unwrap();
        assert_eq!(
            render("product:{id}@{shop}", &params),
            Some("product:42@7".to_owned())
        );
        assert_eq!(render("catalog", &params), Some("catalog".to_owned()));
        assert_eq!(render("x:{nope}", &params), None);
        assert!(route.matches("/shops/7/products").is_none());
        assert!(route.matches("/shops/7/items/42").is_none());
        assert!(Route::parse("/a/{b").is_err());
        assert!(Route::parse("/a/x{b}").is_err());
        assert_eq!(route.params().collect::<Vec<_>>(), ["shop", "id"]);
    }
}
