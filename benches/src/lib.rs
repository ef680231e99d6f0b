//! Helpers of the benchmarks (the benchmarks themselves are in `benches/`).

#[cfg(feature = "redis")]
pub mod stampede;
