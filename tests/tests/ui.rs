//! Compile-time behaviour of `#[cached]`: every supported signature compiles and runs
//! (`ui/pass`), and every mistake gets its own error at the token at fault (`ui/fail`, with
//! checked-in `.stderr`; refresh them with `TRYBUILD=overwrite` and read the diff).

// The goldens are those of the build without the `redis` feature (the default backend is
// in-process); `cargo test --workspace` runs them.
#![cfg(not(feature = "redis"))]

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
