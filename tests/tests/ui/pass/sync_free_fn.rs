use cache_runtime::cached;

#[cached(ttl = 60)]
fn square(x: u64) -> u64 {
    x * x
}

fn main() {
    assert_eq!(square(4), 16);
    assert_eq!(square(4), 16);
    assert_eq!(square_uncached(5), 25);
    assert_eq!(square_refresh(4), 16);
    assert!(square_invalidate(4).is_done());
    assert_eq!(square_cache().stats().hits, 1);
}
