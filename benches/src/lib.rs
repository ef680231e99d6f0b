//! Helpers of the benchmarks (the benchmarks themselves are in `benches/`).

#[cfg(feature = "redis")]
pub mod stampede;

/// A raw redis-rs `GET`, the alternative the Redis benchmarks compare with.
#[cfg(feature = "redis")]
pub async fn raw_get(con: &mut redis::aio::ConnectionManager, key: &str) -> Option<Vec<u8>> {
    redis::cmd("GET")
        .arg(key)
        .query_async(con)
        .await
        .unwrap_or_default()
}
