//! HTTP caching on `http`/tower types (feature `http`): what reaches the browser and the edge.
//!
//! | piece | what it does |
//! |---|---|
//! | [`CacheHeaders`] | the caching headers of a response made from a [`Cached`](crate::Cached) answer (`f_entry`, `Cache::entry_or_load`): `Cache-Control` with `max-age`, `stale-while-revalidate` and `stale-if-error`, `Age`, a content `ETag` and `304`, `Vary`, surrogate keys |
//! | [`ResponseCacheLayer`] | a tower layer that caches whole responses of a route in a [`Cache`](crate::Cache), keyed by method, host, path, query (tracking parameters left out) and `Vary` headers |
//! | [`VarnishPurger`] | an [`InvalidationHook`](crate::InvalidationHook) that purges Varnish by `xkey` on every `invalidate_tag`, `clear` and `f_invalidate` |
//! | [`content_etag`], [`if_none_match`], [`surrogate_key`], [`no_store`] | the pieces, for hand-made responses |
//!
//! Responses are `http::Response<http_body_util::Full<Bytes>>` (the layer's:
//! [`ResponseBody`]), which axum handlers return as they are.

mod etag;
mod headers;
mod layer;
mod purge;
mod purge_request;
mod request_key;
mod stored;
mod surrogate;

pub use etag::{content_etag, if_none_match};
pub use headers::{CacheHeaders, FullResponse, no_store};
pub use layer::{ResponseCache, ResponseCacheLayer, TemplateError};
pub use purge::{PurgeStats, PurgerBuilder, PurgerError, VarnishPurger};
pub use request_key::RequestKey;
pub use stored::{BoxError, ResponseBody, StoredResponse};
pub use surrogate::{cache_surrogate_key, surrogate_key};
