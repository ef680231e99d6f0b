use cache_runtime::cached;

#[cached(ttl = "10m")]
async fn fetch(id: u32) -> String {
    format!("item {id}")
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        assert_eq!(fetch(1).await, "item 1");
        assert_eq!(fetch(1).await, "item 1");
        assert_eq!(fetch_uncached(2).await, "item 2");
        assert_eq!(fetch_refresh(1).await, "item 1");
        assert!(fetch_invalidate(1).await.is_done());
    });
    assert_eq!(fetch_cache().stats().hits, 1);
}
