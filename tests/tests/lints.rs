//! Expansions are warning-free under strict lints: unused companions, `mut` parameters and
//! the rest must not make a `#![deny(warnings)]` crate fail.

// The in-process backend: with the `redis` feature, Redis is the default backend of the
// whole build, so these run in the build without it (`cargo test --workspace`).
#![cfg(not(feature = "redis"))]
#![deny(warnings, unused_qualifications, unused_results, missing_docs)]
#![deny(clippy::all, clippy::pedantic)]
#![allow(clippy::unused_async, reason = "async test helpers")]

use cache_runtime::cached;

/// Private, and none of its companions are called.
#[cached(ttl = 60)]
fn private_unused_companions(mut x: u32) -> u32 {
    x += 1;
    x
}

/// Documented, public, with every argument.
#[cached(
    ttl = "1h30m",
    key = "item:{id}",
    name = "lints:item",
    null_ttl = "1m",
    jitter = 0.2,
    max_entries = 1_000,
    backend = "memory",
    lock = "local",
    lock_timeout = "2s",
    crate = "cache_runtime"
)]
#[must_use]
pub fn item(id: u64, note: &str) -> Option<String> {
    (id > 0).then(|| format!("{id}{note}"))
}

pub(crate) struct Service;

impl Service {
    /// A method with an expectation the body meets.
    #[cached]
    #[expect(
        clippy::unused_self,
        reason = "the test needs a method that ignores self"
    )]
    pub(crate) fn method(&self, x: u32) -> u32 {
        x
    }
}

#[test]
fn strict_lints_pass() {
    assert_eq!(private_unused_companions(1), 2);
    assert_eq!(item(1, "a"), Some("1a".into()));
    assert_eq!(Service.method(3), 3);
}
