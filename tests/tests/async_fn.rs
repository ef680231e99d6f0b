//! Sync cached functions from plain threads and inside tokio runtimes; async cached
//! functions on both kinds of runtime and with another executor.

// The in-process backend: with the `redis` feature, Redis is the default backend of the
// whole build, so these run in the build without it (`cargo test --workspace`).
#![cfg(not(feature = "redis"))]

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

use cache_runtime::cached;

static SYNC_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 60)]
fn sync_fn(x: u32) -> u32 {
    SYNC_LOADS.fetch_add(1, SeqCst);
    x + 1
}

#[test]
fn a_sync_function_works_from_plain_threads_and_both_runtimes() {
    std::thread::spawn(|| assert_eq!(sync_fn(1), 2))
        .join()
        .expect("plain thread");
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("rt");
    multi.block_on(async {
        assert_eq!(sync_fn(1), 2);
        let tasks: Vec<_> = (0..16)
            .map(|i| tokio::spawn(async move { sync_fn(i % 4) }))
            .collect();
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.expect("task"), (i % 4) as u32 + 1);
        }
        let blocking = tokio::task::spawn_blocking(|| sync_fn(9));
        assert_eq!(blocking.await.expect("blocking task"), 10);
    });
    let current = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("rt");
    current.block_on(async {
        assert_eq!(sync_fn(1), 2);
        assert_eq!(tokio::spawn(async { sync_fn(2) }).await.expect("task"), 3);
    });
    assert_eq!(
        SYNC_LOADS.load(SeqCst),
        5,
        "keys 0, 1, 2, 3 and 9 load once each"
    );
}

static ASYNC_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = "5m")]
async fn async_fn(name: String) -> Result<usize, std::io::Error> {
    ASYNC_LOADS.fetch_add(1, SeqCst);
    tokio::task::yield_now().await;
    Ok(name.len())
}

#[tokio::test(flavor = "current_thread")]
async fn an_async_function_on_a_current_thread_runtime() {
    assert_eq!(async_fn("abc".into()).await.expect("ok"), 3);
    assert_eq!(async_fn("abc".into()).await.expect("ok"), 3);
    assert_eq!(async_fn_refresh("abc".into()).await.expect("ok"), 3);
    assert_eq!(ASYNC_LOADS.load(SeqCst), 2);
}

#[cached]
async fn executor_free(x: u64) -> u64 {
    x * 3
}

#[test]
fn an_async_function_needs_no_tokio() {
    // A minimal executor: the cache's own waits must not need a tokio runtime.
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut fut = std::pin::pin!(executor_free(5));
    let out = loop {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            break v;
        }
    };
    assert_eq!(out, 15);
}

#[test]
fn futures_of_cached_functions_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let fut = async_fn("x".into());
    assert_send(&fut);
    let fut = executor_free(1);
    assert_send(&fut);
}
