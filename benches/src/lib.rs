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

/// The keys `0..n` in one fixed shuffled order (xorshift), the same in every benchmark: a
/// warm set read without a pattern the CPU could learn.
pub fn key_order(n: u64) -> Vec<u64> {
    let mut keys: Vec<u64> = (0..n).collect();
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    for i in (1..keys.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        keys.swap(i, (seed % (i as u64 + 1)) as usize);
    }
    keys
}

/// The Redis of a benchmark: its own `redis-server` on a free loopback port, the library's
/// settings pointing at it (key prefix `bench:`), and a 2-worker runtime for async callers;
/// `None` (said on stdout) when no `redis-server` is installed.
#[cfg(feature = "redis")]
#[allow(clippy::print_stdout, reason = "a benchmark says why it skipped")]
pub fn redis_bench(what: &str) -> Option<(tests::redis_server::Server, tokio::runtime::Runtime)> {
    let Ok(server) = tests::redis_server::Server::start() else {
        println!("{what} benchmarks skipped: no redis-server on PATH");
        return None;
    };
    cache_runtime::Config::builder()
        .redis_url(server.url.as_str())
        .key_prefix("bench:")
        .init()
        .expect("settings");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt");
    Some((server, rt))
}
