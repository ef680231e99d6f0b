//! `clear_all()`: every cache this process made is cleared, on the build's default backend
//! (in process, or Redis with `--features redis`). A test binary of its own: it clears every
//! cache of its process, which would disturb tests running beside it.

mod common;

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

use cache_runtime::cached;

static A_LOADS: AtomicU32 = AtomicU32::new(0);
static B_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 600, key = "{id}")]
fn a(id: u32) -> u32 {
    A_LOADS.fetch_add(1, SeqCst);
    id
}

#[cached(ttl = 600, key = "{id}")]
async fn b(id: u32) -> u32 {
    B_LOADS.fetch_add(1, SeqCst);
    id * 2
}

#[test]
fn clear_all_clears_every_cache_made_sync_and_async() {
    if !common::backend_ready() {
        return;
    }
    let rt = common::runtime();
    a(1);
    a(1);
    rt.block_on(b(1));
    rt.block_on(b(1));
    assert_eq!((A_LOADS.load(SeqCst), B_LOADS.load(SeqCst)), (1, 1));

    assert!(cache_runtime::clear_all().is_done());
    a(1);
    rt.block_on(b(1));
    assert_eq!(
        (A_LOADS.load(SeqCst), B_LOADS.load(SeqCst)),
        (2, 2),
        "both loaded again"
    );

    assert!(rt.block_on(cache_runtime::clear_all_async()).is_done());
    a(1);
    rt.block_on(b(1));
    assert_eq!((A_LOADS.load(SeqCst), B_LOADS.load(SeqCst)), (3, 3));
    a(1);
    assert_eq!(A_LOADS.load(SeqCst), 3, "cached again after the clear");
}
