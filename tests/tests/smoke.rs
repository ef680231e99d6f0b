use cache_runtime::cached;
use std::sync::atomic::{AtomicU32, Ordering};

static CALLS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 60, key = "u:{id}")]
fn user(id: u64, name: &str) -> Option<String> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    (id > 0).then(|| format!("{id}:{name}"))
}

struct Repo {
    tenant: String,
}
impl Repo {
    #[cached(key = "{self.tenant}:{id}")]
    fn get(&self, id: u32) -> Result<u32, String> {
        Ok(id + self.tenant.len() as u32)
    }

    #[cached]
    async fn aget(&mut self, id: &str) -> Result<Option<u32>, String> {
        Ok(Some(id.len() as u32))
    }
}

#[test]
fn smoke() {
    assert_eq!(user(1, "a"), Some("1:a".into()));
    assert_eq!(user(1, "b"), Some("1:a".into()));
    assert_eq!(CALLS.load(Ordering::SeqCst), 1);
    user_invalidate(1);
    let r = Repo { tenant: "x".into() };
    assert_eq!(r.get(1), Ok(2));
    r.get_invalidate(1);
    let s = user_cache().stats();
    assert_eq!((s.hits, s.misses), (1, 1));
}
