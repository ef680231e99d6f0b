//! A stampede worker on `#[cached]` (see `benches::stampede`).

use benches::stampede::{self, LOAD, LOADS};
use cache_runtime::cached;

#[cached(ttl = 60, key = "{id}", name = "stampede")]
async fn slow_value(id: u64) -> u64 {
    LOADS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(LOAD).await;
    let _ = id; // the key only
    stampede::now_us()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (url, prefix, tasks) = stampede::args();
    cache_runtime::Config::builder()
        .redis_url(url.as_str())
        .key_prefix(prefix.as_str())
        .init()
        .expect("settings");
    stampede::run(&url, &prefix, tasks, || slow_value(7)).await;
}
