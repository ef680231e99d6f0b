//! Runnable examples of cache-runtime: see `examples/*.rs`.
