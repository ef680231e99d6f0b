//! Benchmarks of cache-runtime: see `benches/` and `BENCHMARKS.md`.
