//! A whole response as a [`ResponseCacheLayer`](super::ResponseCacheLayer) keeps it, how one
//! is captured from a service's response (or passed through), and the body the layer answers
//! with.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use serde::{Deserialize, Serialize};

/// The error of a [`ResponseBody`]: the inner body's.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response in a [`ResponseCacheLayer`](super::ResponseCacheLayer)'s cache: status, the
/// headers that describe the content (the caching headers are made when it is served), the
/// body, and the body's content ETag, made once when it was stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    status: u16,
    headers: Vec<(String, Bytes)>,
    body: Bytes,
    etag: String,
}

impl StoredResponse {
    /// Its status.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK)
    }

    /// Its body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Its body's ETag.
    pub(super) fn etag(&self) -> Option<HeaderValue> {
        HeaderValue::from_str(&self.etag).ok()
    }

    /// Its stored headers (a header that no longer parses is left out).
    pub(super) fn header_map(&self) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(self.headers.len());
        for (name, value) in &self.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_maybe_shared(value.clone()),
            ) {
                headers.append(name, value);
            }
        }
        headers
    }
}

impl crate::Weigh for StoredResponse {
    fn heap_bytes(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(name, value)| name.capacity() + value.len() + size_of::<(String, Bytes)>())
            .sum();
        headers + self.body.len() + self.etag.capacity()
    }
}

/// Statuses a response may be stored with without explicit freshness (RFC 9110 §15.1:
/// "heuristically cacheable"); others pass through, never stored.
const CACHEABLE: &[u16] = &[200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501];

/// Headers not stored: hop-by-hop ones (RFC 9110 §7.6.1), those the layer makes when it
/// serves (caching headers, validators, surrogate keys), and the length (the server's).
const NOT_STORED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
    "cache-control",
    "age",
    "etag",
    "expires",
    "date",
    "vary",
    "x-cache",
    "surrogate-key",
    "xkey",
    "last-modified",
];

/// What became of a service's response.
pub(super) enum Captured<B> {
    /// Stored: a cacheable status, whole, within the size cap.
    Stored(StoredResponse),
    /// Passed to its caller as it is, never stored: another status, `Set-Cookie`, its own
    /// `no-store`, `private` or `no-cache`, trailers, or a body over the cap.
    Passed(Response<ResponseBody<B>>),
}

/// Reads `response` whole if it may be stored (at most `cap` bytes of body; varying by no
/// request header but those of `varied`).
pub(super) async fn capture<B>(
    response: Response<B>,
    cap: usize,
    varied: &[HeaderName],
) -> Captured<B>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (parts, body) = response.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let mut body = Box::pin(body);
    if !storable(parts.status, &parts.headers, varied) || declared.is_some_and(|n| n > cap as u64) {
        let passed = ResponseBody::passed(VecDeque::new(), body);
        return Captured::Passed(Response::from_parts(parts, passed));
    }
    let mut whole = BytesMut::new();
    loop {
        match poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
            None => break,
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) if whole.len() + data.len() <= cap => whole.extend_from_slice(&data),
                Ok(data) => {
                    let read = [whole.freeze(), data].map(Frame::data);
                    let passed = ResponseBody::passed(VecDeque::from(read), body);
                    return Captured::Passed(Response::from_parts(parts, passed));
                }
                Err(trailers) => {
                    let read = VecDeque::from([Frame::data(whole.freeze()), trailers]);
                    let passed = ResponseBody::passed(read, body);
                    return Captured::Passed(Response::from_parts(parts, passed));
                }
            },
            Some(Err(e)) => {
                let e: BoxError = e.into();
                tracing::warn!(error = %e, "cache-runtime: a response body failed while it was read to be cached");
                let mut failed = Response::new(ResponseBody::full(Bytes::new()));
                *failed.status_mut() = StatusCode::BAD_GATEWAY;
                failed
                    .headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                return Captured::Passed(failed);
            }
        }
    }
    let body = whole.freeze();
    let etag = super::content_etag(&body)
        .to_str()
        .map(str::to_owned)
        .unwrap_or_default();
    let headers = parts
        .headers
        .iter()
        .filter(|(name, _)| !NOT_STORED.contains(&name.as_str()))
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                Bytes::copy_from_slice(value.as_bytes()),
            )
        })
        .collect();
    Captured::Stored(StoredResponse {
        status: parts.status.as_u16(),
        headers,
        body,
        etag,
    })
}

/// Whether a response of `status` with `headers` may be stored: a cacheable status, no
/// `Set-Cookie`, no `Cache-Control` that forbids a shared cache to keep it, and a `Vary` that
/// names only headers of `varied` (the key's).
fn storable(status: StatusCode, headers: &HeaderMap, varied: &[HeaderName]) -> bool {
    let varies_otherwise = headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .any(|name| name == "*" || !varied.iter().any(|v| v.as_str().eq_ignore_ascii_case(name)));
    let forbidden = headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|d| {
            d.trim()
                .split('=')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase()
        })
        .any(|d| matches!(d.as_str(), "no-store" | "private" | "no-cache"));
    CACHEABLE.contains(&status.as_u16())
        && !headers.contains_key(header::SET_COOKIE)
        && !forbidden
        && !varies_otherwise
}

/// The body of a [`ResponseCacheLayer`](super::ResponseCacheLayer)'s response: a stored body,
/// or the inner service's, passed through (with what was read of it first).
pub struct ResponseBody<B> {
    kind: Kind<B>,
}

enum Kind<B> {
    Full(Option<Bytes>),
    Passed {
        read: VecDeque<Frame<Bytes>>,
        rest: Pin<Box<B>>,
    },
}

impl<B> ResponseBody<B> {
    pub(super) fn full(body: Bytes) -> Self {
        ResponseBody {
            kind: Kind::Full(Some(body)),
        }
    }

    pub(super) fn passed(read: VecDeque<Frame<Bytes>>, rest: Pin<Box<B>>) -> Self {
        ResponseBody {
            kind: Kind::Passed { read, rest },
        }
    }
}

impl<B> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            Kind::Full(_) => "stored",
            Kind::Passed { .. } => "passed",
        };
        f.debug_struct("ResponseBody").field("kind", &kind).finish()
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().kind {
            Kind::Full(body) => Poll::Ready(
                body.take()
                    .filter(|b| !b.is_empty())
                    .map(|b| Ok(Frame::data(b))),
            ),
            Kind::Passed { read, rest } => match read.pop_front() {
                Some(frame) => Poll::Ready(Some(Ok(frame))),
                None => rest
                    .as_mut()
                    .poll_frame(cx)
                    .map(|frame| frame.map(|f| f.map_err(Into::into))),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(body) => body.as_ref().is_none_or(Bytes::is_empty),
            Kind::Passed { read, rest } => read.is_empty() && rest.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(body) => SizeHint::with_exact(body.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Passed { read, rest } => {
                let read: u64 = read
                    .iter()
                    .filter_map(|f| f.data_ref())
                    .map(|d| d.len() as u64)
                    .sum();
                let inner = rest.size_hint();
                let mut hint = SizeHint::new();
                if let Some(upper) = inner.upper() {
                    hint.set_upper(upper + read);
                }
                hint.set_lower(inner.lower() + read);
                hint
            }
        }
    }
}
