//! [`CacheBuilder`]: the settings of a [`Cache`], the attribute's arguments as methods.

use std::fmt;
use std::time::Duration;

use crate::engine::{Init, TtlFn};
use crate::policy::{Codec, Compression, DEFAULT_COMPRESS_MIN, Lock, Policy};
use crate::weigh::{Weigh, Weigher};

use super::{Cache, Opened};

/// Where a [`Cache`]'s entries live (the attribute's `backend`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// In process (quick_cache): the default without the `redis` feature.
    Memory,
    /// In Redis, shared by every process of the service: the default with the `redis`
    /// feature.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    Redis,
    /// In Redis, with an in-process L1 in front of it, kept right by Redis's invalidations.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    Tiered,
}

impl Backend {
    /// The build's default, as for `#[cached]`: Redis with the `redis` feature, else memory.
    pub const fn default_for_build() -> Backend {
        #[cfg(feature = "redis")]
        return Backend::Redis;
        #[cfg(not(feature = "redis"))]
        return Backend::Memory;
    }
}

impl Default for Backend {
    fn default() -> Self {
        Backend::default_for_build()
    }
}

/// Why [`CacheBuilder::build`] refused its settings: the same combinations `#[cached]`
/// refuses at compile time.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// `jitter` is not a number in `0.0..=1.0`.
    Jitter,
    /// `early_refresh` is not a finite number at or above zero.
    EarlyRefresh,
    /// `max_entries` is zero.
    MaxEntries,
    /// `max_bytes` is zero.
    MaxBytes,
    /// `stale`, `stale_if_error`, `load_timeout` or `early_refresh` without an expiry (`ttl`
    /// or `ttl_fn`): they act around an entry's expiry.
    PhaseWithoutTtl(&'static str),
    /// `load_timeout` without `stale` or `stale_if_error`: it answers a slow load with a value
    /// kept past its expiry, and none is kept.
    LoadTimeoutWithoutKept,
    /// `l1_ttl` without `Backend::Tiered`.
    L1TtlWithoutTiered,
    /// `Lock::Distributed`, a `codec` or `compress` on `Backend::Memory`: they concern Redis.
    RedisSettingOnMemory(&'static str),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Jitter => f.write_str("`jitter` must be a number in 0.0..=1.0"),
            BuildError::EarlyRefresh => {
                f.write_str("`early_refresh` must be a finite number at or above zero")
            }
            BuildError::MaxEntries => f.write_str("`max_entries` must be at least 1"),
            BuildError::MaxBytes => f.write_str("`max_bytes` must be at least 1"),
            BuildError::PhaseWithoutTtl(what) => write!(
                f,
                "`{what}` acts around an entry's expiry, and this cache's entries never \
                 expire: set `ttl` (or `ttl_fn`)"
            ),
            BuildError::LoadTimeoutWithoutKept => f.write_str(
                "`load_timeout` answers a slow load with a value kept past its expiry, and \
                 this cache keeps none: set `stale_if_error` (or `stale`)",
            ),
            BuildError::L1TtlWithoutTiered => f.write_str(
                "`l1_ttl` is the life of the in-process copies of `Backend::Tiered`: choose \
                 that backend, or leave `l1_ttl` out",
            ),
            BuildError::RedisSettingOnMemory(what) => write!(
                f,
                "`{what}` concerns Redis, and this cache is in process (`Backend::Memory`)"
            ),
        }
    }
}

impl std::error::Error for BuildError {}

/// Opens the engine of a cache on a backend (chosen by the builder's types: `lib.rs`).
pub(crate) type Open<K, V> = fn(Backend, Init<K, V>) -> Opened<K, V>;

/// The settings of a [`Cache`]: start with [`Cache::builder`], end with
/// [`CacheBuilder::build`]. Each method is the attribute argument of the same name, with the
/// same default.
#[must_use = "a builder does nothing until `build()`"]
pub struct CacheBuilder<K: 'static, V: 'static> {
    name: String,
    ttl: Option<Duration>,
    pub(crate) null_ttl: Option<Duration>,
    jitter: f64,
    /// `None`: the default (10,000 without `max_bytes`, no count bound with it).
    max_entries: Option<u64>,
    max_bytes: Option<(u64, Weigher<K, V>)>,
    compress: Option<Compression>,
    compress_min: u64,
    backend: Backend,
    lock: Option<Lock>,
    lock_timeout: Duration,
    codec: Option<Codec>,
    stale: Duration,
    stale_if_error: Duration,
    load_timeout: Option<Duration>,
    early_refresh: f64,
    l1_ttl: Option<Duration>,
    tags: Option<fn(&K) -> Vec<String>>,
    ttl_fn: Option<TtlFn<V>>,
    pub(crate) open: Open<K, V>,
}

/// The attribute's defaults (the macro's `store.rs`).
const DEFAULT_NULL_TTL: Duration = Duration::from_secs(300);
const DEFAULT_JITTER: f64 = 0.1;
const DEFAULT_MAX_ENTRIES: u64 = 10_000;
const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

impl<K: 'static, V: 'static> CacheBuilder<K, V> {
    /// A builder of the cache `name` whose engine `open` makes.
    pub(crate) fn new(name: String, open: Open<K, V>) -> Self {
        CacheBuilder {
            name,
            ttl: None,
            null_ttl: None,
            jitter: DEFAULT_JITTER,
            max_entries: None,
            max_bytes: None,
            compress: None,
            compress_min: DEFAULT_COMPRESS_MIN,
            backend: Backend::default_for_build(),
            lock: None,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            codec: None,
            stale: Duration::ZERO,
            stale_if_error: Duration::ZERO,
            load_timeout: None,
            early_refresh: 0.0,
            l1_ttl: None,
            tags: None,
            ttl_fn: None,
            open,
        }
    }

    /// How long a value is fresh; without it (and without `ttl_fn`) a value stays until it
    /// is evicted or invalidated.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Each entry lives `ttl × (1 − u)`, `u` uniform in `[0, jitter)`: expiries spread within
    /// `ttl`, never past it. Default 0.1; `0.0..=1.0`.
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// The capacity of the in-process store (the entries of `Backend::Memory`, the L1 of
    /// `Backend::Tiered`, the outage fallback of `Backend::Redis`). Default 10,000, or no
    /// count bound when [`max_bytes`](Self::max_bytes) is set.
    pub fn max_entries(mut self, max_entries: usize) -> Self {
        self.max_entries = Some(u64::try_from(max_entries).unwrap_or(u64::MAX));
        self
    }

    /// The capacity of the in-process store in bytes: the keys' and values' heap, as
    /// [`Weigh`] counts them, and each entry's slot. With `max_entries` too, both bound it.
    /// A value heavier than a shard of the budget (split in up to 8 shards of at least
    /// 1 MiB) is not stored (`Stats::oversized`). See the README's "Memory".
    ///
    /// ```
    /// use cache_runtime::{Backend, Cache};
    ///
    /// let _pages: Cache<u64, String> = Cache::builder("pages")
    ///     .backend(Backend::Memory)
    ///     .max_bytes(64 << 20)
    ///     .build()?;
    /// # Ok::<(), cache_runtime::BuildError>(())
    /// ```
    pub fn max_bytes(mut self, bytes: u64) -> Self
    where
        K: Weigh,
        V: Weigh,
    {
        self.max_bytes = Some((bytes, Weigher::of()));
        self
    }

    /// Compresses values written to Redis whose encoding is at least
    /// [`compress_min`](Self::compress_min) bytes (default 1 KiB), when that makes them
    /// smaller. Default [`Compression::None`]; readers of either setting read both.
    pub fn compress(mut self, compress: Compression) -> Self {
        self.compress = Some(compress);
        self
    }

    /// The least encoded size, in bytes, that `compress` compresses. Default 1,024.
    pub fn compress_min(mut self, bytes: u64) -> Self {
        self.compress_min = bytes;
        self
    }

    /// Where the entries live; default: [`Backend::default_for_build`].
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// Stampede protection: [`Lock::Distributed`] (the default on Redis), [`Lock::Local`]
    /// (the default in memory) or [`Lock::None`].
    pub fn lock(mut self, lock: Lock) -> Self {
        self.lock = Some(lock);
        self
    }

    /// How long a caller waits for another caller's load before loading itself. Default 5 s.
    pub fn lock_timeout(mut self, lock_timeout: Duration) -> Self {
        self.lock_timeout = lock_timeout;
        self
    }

    /// How values are written to Redis. Default [`Codec::MessagePack`].
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = Some(codec);
        self
    }

    /// After a value expires, how long it is still served at once while one revalidation
    /// runs (stale-while-revalidate, RFC 5861).
    pub fn stale(mut self, stale: Duration) -> Self {
        self.stale = stale;
        self
    }

    /// After a value expires, how long it answers in place of a failed load (fail-safe).
    pub fn stale_if_error(mut self, stale_if_error: Duration) -> Self {
        self.stale_if_error = stale_if_error;
        self
    }

    /// With a stale value at hand, how long a caller waits for a load before it answers with
    /// that value.
    pub fn load_timeout(mut self, load_timeout: Duration) -> Self {
        self.load_timeout = Some(load_timeout);
        self
    }

    /// XFetch's β (Vattani et al., "Optimal Probabilistic Cache Stampede Prevention", VLDB
    /// 2015): a hit refreshes early with a probability that grows near expiry. Default 0.
    pub fn early_refresh(mut self, beta: f64) -> Self {
        self.early_refresh = beta;
        self
    }

    /// `Backend::Tiered`: the longest life of an entry's in-process copy; default
    /// `min(ttl, 30 s)`.
    pub fn l1_ttl(mut self, l1_ttl: Duration) -> Self {
        self.l1_ttl = Some(l1_ttl);
        self
    }

    /// The tags of each key's entry, rendered from the key (`invalidate_tag` drops every
    /// entry that carries a tag). A closure without captures is a `fn`.
    ///
    /// ```
    /// # use cache_runtime::Cache;
    /// let prices: Cache<u32, u64> = Cache::builder("prices")
    ///     .tags(|id| vec!["catalog".to_owned(), format!("product:{id}")])
    ///     .build()
    ///     .expect("valid settings");
    /// # let _ = prices;
    /// ```
    pub fn tags(mut self, tags: fn(&K) -> Vec<String>) -> Self {
        self.tags = Some(tags);
        self
    }

    /// The lifetime of each stored value, chosen from it (a token's expiry, an HTTP
    /// response's `max-age`); it replaces `ttl` for that entry (jitter still shortens it, and
    /// `Duration::ZERO` means do not store). On Redis the key's `PX`, the L1 copy's life and
    /// `entry_or_load`'s `fresh_for` all follow it. Nulls keep `null_ttl`.
    pub fn ttl_fn(mut self, ttl_fn: fn(&V) -> Duration) -> Self {
        self.ttl_fn = Some(ttl_fn);
        self
    }

    /// The cache, or why its settings do not go together. A cache lives as long as the
    /// process (it is registered under its name, like a cached function's, and listed by
    /// [`caches`](crate::caches)): build one per cache, at start-up or in a `LazyLock`, not
    /// one per request. Two caches of one name on Redis share their entries.
    pub fn build(self) -> Result<Cache<K, V>, BuildError> {
        let policy = self.policy()?;
        let weigher = self.max_bytes.map(|(_, w)| w);
        // No `verify`: a `Cache`'s loads borrow their caller, and a verification runs after
        // the caller has its answer.
        let init = (self.name, policy, self.ttl_fn, weigher, None);
        let opened = (self.open)(self.backend, init);
        Ok(Cache::new(opened, self.tags))
    }

    /// The engine's settings, checked as the attribute checks its arguments.
    fn policy(&self) -> Result<Policy, BuildError> {
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(BuildError::Jitter);
        }
        if !self.early_refresh.is_finite() || self.early_refresh < 0.0 {
            return Err(BuildError::EarlyRefresh);
        }
        if self.max_entries == Some(0) {
            return Err(BuildError::MaxEntries);
        }
        if self.max_bytes.is_some_and(|(b, _)| b == 0) {
            return Err(BuildError::MaxBytes);
        }
        if self.ttl.is_none() && self.ttl_fn.is_none() {
            let phases = [
                ("stale", !self.stale.is_zero()),
                ("stale_if_error", !self.stale_if_error.is_zero()),
                ("load_timeout", self.load_timeout.is_some()),
                ("early_refresh", self.early_refresh > 0.0),
            ];
            if let Some((what, _)) = phases.into_iter().find(|(_, set)| *set) {
                return Err(BuildError::PhaseWithoutTtl(what));
            }
        }
        if self.load_timeout.is_some() && self.stale.is_zero() && self.stale_if_error.is_zero() {
            return Err(BuildError::LoadTimeoutWithoutKept);
        }
        let memory = self.backend == Backend::Memory;
        #[cfg(feature = "redis")]
        if self.l1_ttl.is_some() && self.backend != Backend::Tiered {
            return Err(BuildError::L1TtlWithoutTiered);
        }
        #[cfg(not(feature = "redis"))]
        if self.l1_ttl.is_some() {
            return Err(BuildError::L1TtlWithoutTiered);
        }
        if memory && self.lock == Some(Lock::Distributed) {
            return Err(BuildError::RedisSettingOnMemory("Lock::Distributed"));
        }
        if memory && self.codec.is_some() {
            return Err(BuildError::RedisSettingOnMemory("codec"));
        }
        if memory && self.compress.is_some() {
            return Err(BuildError::RedisSettingOnMemory("compress"));
        }
        let null_ttl = match (self.null_ttl, self.ttl) {
            (Some(n), _) => n,
            (None, Some(t)) => t.min(DEFAULT_NULL_TTL),
            (None, None) => DEFAULT_NULL_TTL,
        };
        Ok(Policy {
            ttl: self.ttl,
            null_ttl,
            jitter: self.jitter,
            max_entries: match (self.max_entries, self.max_bytes) {
                (Some(n), _) => n,
                (None, Some(_)) => u64::MAX,
                (None, None) => DEFAULT_MAX_ENTRIES,
            },
            max_bytes: self.max_bytes.map(|(b, _)| b),
            compress: self.compress.unwrap_or_default(),
            compress_min: self.compress_min,
            lock: self.lock.unwrap_or(match memory {
                true => Lock::Local,
                false => Lock::Distributed,
            }),
            lock_timeout: self.lock_timeout,
            codec: self.codec.unwrap_or_default(),
            stale: self.stale,
            stale_if_error: self.stale_if_error,
            load_timeout: self.load_timeout,
            early_refresh: self.early_refresh,
            l1_ttl: self.l1_ttl,
            verify: 0.0,
        })
    }
}

impl<K: 'static, V: 'static> fmt::Debug for CacheBuilder<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("name", &self.name)
            .field("backend", &self.backend)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}
