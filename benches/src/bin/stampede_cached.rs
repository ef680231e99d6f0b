//! A stampede worker on the `cached` crate 4.1's Redis store (`#[concurrent_cached]` with an
//! `AsyncRedisCache`), the alternative a user would pick (see `benches::stampede`).

use std::sync::OnceLock;

use benches::stampede::{self, LOAD, LOADS};
use cached::AsyncRedisCache;
use cached::proc_macro::concurrent_cached;

static URL: OnceLock<String> = OnceLock::new();
static PREFIX: OnceLock<String> = OnceLock::new();

#[concurrent_cached(
    map_error = r##"|e| format!("{e:?}")"##,
    ty = "AsyncRedisCache<u64, u64>",
    create = r##" {
        AsyncRedisCache::builder("stampede")
            .namespace(PREFIX.get().expect("set in main"))
            .connection_string(URL.get().expect("set in main"))
            .ttl(std::time::Duration::from_secs(60))
            .build()
            .await
            .expect("the cached crate's Redis store")
    } "##
)]
async fn slow_value(id: u64) -> Result<u64, String> {
    LOADS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(LOAD).await;
    let _ = id; // the key only
    Ok(stampede::now_us())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (url, prefix, tasks) = stampede::args();
    URL.set(url.clone()).expect("once");
    PREFIX.set(prefix.clone()).expect("once");
    stampede::run(&url, &prefix, tasks, || async {
        slow_value(7).await.expect("a value")
    })
    .await;
}
