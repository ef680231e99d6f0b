//! Helpers for the integration tests of cache-runtime (the tests themselves are in `tests/`).

#[cfg(feature = "redis")]
pub mod redis_server;

#[cfg(feature = "redis")]
pub mod envelope;

#[cfg(feature = "redis")]
pub mod certs;

#[cfg(feature = "redis")]
pub mod notified;

pub mod counting;

pub mod logs;

pub mod child;
