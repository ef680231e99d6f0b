//! Compile-time behaviour with the `redis` feature, where Redis is the default backend: serde
//! bounds land on the return type or the parameter, and only functions that use Redis need
//! serde. Goldens as for `ui.rs` (`TRYBUILD=overwrite`).
#![cfg(feature = "redis")]

#[test]
fn ui_redis() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui-redis/pass/*.rs");
    t.compile_fail("tests/ui-redis/fail/*.rs");
}
