//! A small web shop on axum and SQLite, cached with `#[cached]` end to end.
//!
//! - [`db`] creates the database (20,000 products in 40 categories, 50,000 users, 300,000
//!   orders, deterministic) and counts the queries that reach it ([`db_queries`]).
//! - Three cached functions (`product`, `user`, `top_in_category`) are defined once per
//!   backend by a `macro_rules!`: [`memory`], and with the `redis` feature `redis` and
//!   `tiered`. The [`Mode`], chosen at start-up, picks the module the handlers call (or the
//!   functions' `_uncached` twins, for `none`).
//! - [`router`] serves `GET /products/{id}`, `GET /users/{id}`, `GET /categories/{c}/top`,
//!   `PUT /products/{id}`, `GET /metrics` and `GET /healthz`, with HTTP caching headers taken
//!   from the cache entry by cache-runtime's `CacheHeaders` (`Cache-Control`, `Age`, a content
//!   `ETag`, surrogate keys, `X-Cache`) and `304 Not Modified` on a matching `If-None-Match`;
//!   and `GET /pages/products/{id}` (HTML), cached whole by a `ResponseCacheLayer`.
//!
//! The binary (`src/main.rs`) wires them up; `src/bin/load.rs` is the load generator.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use serde::{Deserialize, Serialize};

mod caches;
mod cart;
pub mod db;
mod http;
mod pages;

pub use db::queries as db_queries;
pub use http::{requests, router};

/// The error of the set-up functions.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Installs the process's Prometheus recorder, with cache-runtime's load durations as
/// Prometheus histograms (`cache_load_duration_seconds`, buckets `DURATION_BUCKETS`); its
/// handle renders `GET /metrics`.
pub fn install_prometheus() -> Result<PrometheusHandle, BoxError> {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Suffix("_seconds".into()),
            cache_runtime::DURATION_BUCKETS,
        )?
        .install_recorder()
        .map_err(|e| format!("installing the Prometheus recorder: {e}"))?;
    Ok(handle)
}

/// A product, as `GET /products/{id}` shows it. `Weigh`: the product cache is bounded by
/// bytes (`max_bytes`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, cache_runtime::Weigh)]
pub struct Product {
    /// Its id, from 1.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// One of [`db::CATEGORIES`].
    pub category: String,
    /// Its price, in cents.
    pub price_cents: i64,
}

/// One line of a user's cart (`GET /users/{id}/cart`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartItem {
    /// The product's id.
    pub product_id: u64,
    /// How many.
    pub qty: i64,
}

/// A user's profile, as `GET /users/{id}` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Their id, from 1.
    pub id: u64,
    /// Their name.
    pub name: String,
    /// Their email address.
    pub email: String,
    /// When they signed up, in seconds since the Unix epoch.
    pub created: i64,
    /// How many orders they placed.
    pub orders: i64,
}

/// One line of a category's best sellers (`GET /categories/{c}/top`). `Weigh`: the best
/// sellers' cache is bounded by bytes (`max_bytes`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, cache_runtime::Weigh)]
pub struct TopProduct {
    /// The product's id.
    pub id: u64,
    /// The product's name.
    pub name: String,
    /// The product's price, in cents.
    pub price_cents: i64,
    /// Units sold, over every order.
    pub units_sold: i64,
}

/// Defines the shop's cached functions in a module of their own for one backend. The backend
/// is an argument of the attribute, so each backend needs its own copy of the functions; and
/// two caches must not share a name, so each copy names its caches (`"memory.product"`, …).
macro_rules! cached_functions {
    (
        $(#[$attr:meta])*
        $module:ident, backend = $backend:tt,
        names = [$product:tt, $user:tt, $top:tt, $cart:tt] $(,)?
    ) => {
        $(#[$attr])*
        pub mod $module {
            use crate::{CartItem, Product, TopProduct, User, cart, db};

            /// One product (`None`: no such id). Fresh for 60 s, then answered stale for up
            /// to 30 s while one revalidation runs, and for up to 10 min in place of a failing
            /// query (`stale-if-error`); tagged `product:{id}` for updates. In
            /// process at most 8 MiB (`cache_memory_bytes` on `/metrics`) and 25,000 entries.
            /// One hit in 100 is verified (`GET /caches`: invalidated on every write, none
            /// differs).
            #[::cache_runtime::cached(
                ttl = "60s",
                stale = "30s",
                key = "{id}",
                tags = ["product:{id}"],
                verify = 0.01,
                stale_if_error = "10m",
                max_entries = 25_000,
                max_bytes = "8MiB",
                backend = $backend,
                name = $product
            )]
            pub fn product(id: u64) -> Result<Option<Product>, String> {
                db::product(id)
            }

            /// One user's profile (`None`: no such user, cached as a null for a minute, so
            /// that a missing user does not reach the database on every request).
            #[::cache_runtime::cached(
                ttl = "300s",
                null_ttl = "60s",
                key = "{id}",
                max_entries = 60_000,
                backend = $backend,
                name = $user
            )]
            pub fn user(id: u64) -> Result<Option<User>, String> {
                db::user(id)
            }

            /// A category's ten best sellers: an aggregate over its orders. Fresh for 2 min,
            /// then answered stale for up to 1 min while one revalidation runs; tagged
            /// `category:{category}`, which a price change of any of its products drops.
            #[::cache_runtime::cached(
                ttl = "120s",
                stale = "60s",
                key = "{category}",
                tags = ["category:{category}"],
                max_entries = 1_000,
                max_bytes = "2MiB",
                backend = $backend,
                name = $top
            )]
            pub fn top_in_category(category: String) -> Result<Vec<TopProduct>, String> {
                db::top_in_category(&category)
            }

            /// A user's cart: **a deliberately bad candidate** (issue 27). `POST
            /// /users/{id}/cart/items` changes it and does not invalidate this cache, so for
            /// up to a minute a hit serves a cart without its latest items. `verify` re-loads
            /// one hit in five off the caller's path and counts those that differ; `GET
            /// /caches` flags the cache ("changes faster than it lives").
            #[::cache_runtime::cached(
                ttl = "60s",
                key = "{user}",
                verify = 0.2,
                max_entries = 10_000,
                backend = $backend,
                name = $cart
            )]
            pub fn cart(user: u64) -> Result<Vec<CartItem>, String> {
                cart::items(user)
            }
        }
    };
}

cached_functions!(
    /// The cached functions on the in-process store (`backend = "memory"`): mode `memory`.
    /// Mode `none` calls their `_uncached` twins.
    memory,
    backend = "memory",
    names = ["memory.product", "memory.user", "memory.top", "memory.cart"],
);

cached_functions!(
    /// The cached functions on Redis (`backend = "redis"`): mode `redis`.
    #[cfg(feature = "redis")]
    redis,
    backend = "redis",
    names = ["redis.product", "redis.user", "redis.top", "redis.cart"],
);

cached_functions!(
    /// The cached functions on Redis with an in-process L1 (`backend = "tiered"`): mode
    /// `tiered`.
    #[cfg(feature = "redis")]
    tiered,
    backend = "tiered",
    names = ["tiered.product", "tiered.user", "tiered.top", "tiered.cart"],
);

/// Which caches the handlers use, chosen at start-up (`SHOP_CACHE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `none`: no cache; every read queries SQLite (the functions' `_uncached` twins).
    Uncached,
    /// `memory`: the in-process store.
    Memory,
    /// `redis`: Redis (feature `redis`).
    #[cfg(feature = "redis")]
    Redis,
    /// `tiered`: Redis with an in-process L1 (feature `redis`).
    #[cfg(feature = "redis")]
    Tiered,
}

impl Mode {
    /// The mode's name, as `SHOP_CACHE` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Uncached => "none",
            Mode::Memory => "memory",
            #[cfg(feature = "redis")]
            Mode::Redis => "redis",
            #[cfg(feature = "redis")]
            Mode::Tiered => "tiered",
        }
    }

    /// The mode `SHOP_CACHE` names (`none`, `memory`, `redis`, `tiered`). Without it: `tiered`
    /// when `CACHE_REDIS_URL` is set and this build has the `redis` feature, else `memory`.
    pub fn from_env() -> Result<Mode, String> {
        match std::env::var("SHOP_CACHE") {
            Ok(name) if !name.trim().is_empty() => name.parse(),
            _ => Ok(Mode::default_for_env()),
        }
    }

    #[cfg(feature = "redis")]
    fn default_for_env() -> Mode {
        match std::env::var("CACHE_REDIS_URL") {
            Ok(url) if !url.trim().is_empty() => Mode::Tiered,
            _ => Mode::Memory,
        }
    }

    #[cfg(not(feature = "redis"))]
    fn default_for_env() -> Mode {
        Mode::Memory
    }
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(name: &str) -> Result<Mode, String> {
        match name.trim() {
            "none" => Ok(Mode::Uncached),
            "memory" => Ok(Mode::Memory),
            #[cfg(feature = "redis")]
            "redis" => Ok(Mode::Redis),
            #[cfg(feature = "redis")]
            "tiered" => Ok(Mode::Tiered),
            #[cfg(not(feature = "redis"))]
            "redis" | "tiered" => Err(format!(
                "cache mode `{}` needs the `redis` feature: \
                 cargo run -p shop-http --features redis",
                name.trim()
            )),
            other => Err(format!(
                "unknown cache mode `{other}`: expected none, memory, redis or tiered"
            )),
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the handlers share: the database, the cache mode, and the Prometheus recorder's
/// handle (if one is installed) for `GET /metrics`.
#[derive(Clone, Debug)]
pub struct AppState {
    database: Arc<Path>,
    mode: Mode,
    prometheus: Option<PrometheusHandle>,
}

impl AppState {
    /// The state of a shop on the database at `database` (made by [`db::create_database`] or
    /// [`db::open_or_create`]) with the caches of `mode`. The cached functions take no
    /// database argument, so a process serves one database: a second state on another path
    /// is an error.
    pub fn new(database: impl Into<PathBuf>, mode: Mode) -> Result<AppState, BoxError> {
        let database: PathBuf = database.into();
        db::use_database(&database)?;
        Ok(AppState {
            database: Arc::from(database),
            mode,
            prometheus: None,
        })
    }

    /// Serves `GET /metrics` from this recorder (without one it shows only
    /// `shop_db_queries_total`).
    #[must_use]
    pub fn with_prometheus(mut self, handle: PrometheusHandle) -> AppState {
        self.prometheus = Some(handle);
        self
    }

    /// The database.
    pub fn database(&self) -> &Path {
        &self.database
    }

    /// The cache mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub(crate) fn prometheus(&self) -> Option<&PrometheusHandle> {
        self.prometheus.as_ref()
    }
}

/// Loads the `limit` best-selling products into the caches of `mode` (one query for their
/// ids, then `product_warm`, which skips the ones already fresh). Blocking: call it from a
/// thread that may block (`tokio::task::spawn_blocking`). `None` in mode `none`.
pub fn warm_best_sellers(mode: Mode, limit: u32) -> Result<Option<cache_runtime::Warmed>, String> {
    if mode == Mode::Uncached {
        return Ok(None);
    }
    let ids = db::top_seller_ids(limit)?;
    // In tenths, each logged with a progress bar.
    let tenth = ids.len().div_ceil(10).max(1);
    let mut total = cache_runtime::Warmed::default();
    let mut done = 0;
    for chunk in ids.chunks(tenth) {
        let warmed = match mode {
            Mode::Uncached | Mode::Memory => memory::product_warm(chunk.iter().copied()),
            #[cfg(feature = "redis")]
            Mode::Redis => redis::product_warm(chunk.iter().copied()),
            #[cfg(feature = "redis")]
            Mode::Tiered => tiered::product_warm(chunk.iter().copied()),
        };
        total.loaded += warmed.loaded;
        total.skipped += warmed.skipped;
        total.failed += warmed.failed;
        done += chunk.len();
        tracing::info!(progress = %progress_bar(done, ids.len()), "warming the best sellers");
    }
    Ok(Some(total))
}

/// `[######----] 120/200`.
fn progress_bar(done: usize, of: usize) -> String {
    let filled = (done * 20).checked_div(of).unwrap_or(20);
    format!(
        "[{}{}] {done}/{of}",
        "#".repeat(filled),
        "-".repeat(20 - filled)
    )
}

/// A 64-bit linear congruential generator (Knuth's MMIX constants): deterministic, tiny, and
/// good enough for test data and load mixes (it is not a statistical-quality generator; the
/// methods below use only its high bits).
#[derive(Clone, Debug)]
pub struct Lcg(u64);

impl Lcg {
    /// A generator starting from `seed`; the same seed gives the same sequence.
    pub fn new(seed: u64) -> Lcg {
        Lcg(seed)
    }

    /// The next state (its low bits are weak: prefer [`below`](Lcg::below) and
    /// [`unit`](Lcg::unit)).
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0
    }

    /// A number in `0..n` (`0` when `n` is 0), from the high 32 bits; `n` at most 2³².
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() >> 32) * n.min(1 << 32)) >> 32
    }

    /// An index into a slice of `len` elements (`len` > 0).
    pub fn index(&mut self, len: usize) -> usize {
        let n = u64::try_from(len).unwrap_or(u64::MAX);
        usize::try_from(self.below(n)).unwrap_or_default()
    }

    /// A number in `[0, 1)`, from the high 53 bits.
    pub fn unit(&mut self) -> f64 {
        const SCALE: f64 = 1.0 / (1u64 << 53) as f64;
        (self.next_u64() >> 11) as f64 * SCALE
    }
}
