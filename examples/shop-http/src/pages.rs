//! The product pages (`GET /pages/products/{id}`, HTML): rendered by a handler that knows
//! nothing of caching, cached whole by cache-runtime's `ResponseCacheLayer`, one per cache
//! mode. Tagged `product:{id}` like the product's JSON, so an update drops both, here and,
//! with `SHOP_VARNISH`, at the edge.

use std::sync::OnceLock;
use std::time::Duration;

use cache_runtime::http::ResponseCacheLayer;
use cache_runtime::{Backend, Cache};

use crate::Mode;

/// The layer of `mode`'s backend (made once per mode: a cache name is registered once);
/// `None` in mode `none`.
pub(crate) fn layer(mode: Mode) -> Option<ResponseCacheLayer> {
    static MEMORY: OnceLock<ResponseCacheLayer> = OnceLock::new();
    #[cfg(feature = "redis")]
    static REDIS: OnceLock<ResponseCacheLayer> = OnceLock::new();
    #[cfg(feature = "redis")]
    static TIERED: OnceLock<ResponseCacheLayer> = OnceLock::new();
    let (slot, backend, name) = match mode {
        Mode::Uncached => return None,
        Mode::Memory => (&MEMORY, Backend::Memory, "memory.pages"),
        #[cfg(feature = "redis")]
        Mode::Redis => (&REDIS, Backend::Redis, "redis.pages"),
        #[cfg(feature = "redis")]
        Mode::Tiered => (&TIERED, Backend::Tiered, "tiered.pages"),
    };
    Some(slot.get_or_init(|| new_layer(backend, name)).clone())
}

/// Fresh for 60 s, then stale for 30 s while one request revalidates, and for 10 min in place
/// of a failing render (`stale-if-error`); at most 4 MiB in process; pages over 256 KiB are
/// not kept.
fn new_layer(backend: Backend, name: &str) -> ResponseCacheLayer {
    let cache = Cache::builder(name)
        .ttl(Duration::from_secs(60))
        .stale(Duration::from_secs(30))
        .stale_if_error(Duration::from_secs(600))
        .max_bytes(4 << 20)
        .backend(backend)
        .build()
        .expect("the pages' cache settings are valid");
    ResponseCacheLayer::new(cache)
        .max_body(256 << 10)
        .tags("/pages/products/{id}", ["product:{id}"])
        .expect("the tag names the route's parameter")
}
