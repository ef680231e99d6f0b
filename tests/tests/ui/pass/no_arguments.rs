use cache_runtime::cached;

#[cached(ttl = "1h")]
fn settings() -> Vec<(String, String)> {
    vec![("mode".into(), "fast".into())]
}

#[cached]
fn unit() {}

fn main() {
    assert_eq!(settings().len(), 1);
    assert!(settings_invalidate().is_done());
    unit();
    unit();
    assert_eq!(unit_cache().stats().hits, 1);
}
