//! Methods: `&self` and `&mut self`, one cache per method shared by all instances, and keys
//! that name a field of `self`.

// The in-process backend: with the `redis` feature, Redis is the default backend of the
// whole build, so these run in the build without it (`cargo test --workspace`).
#![cfg(not(feature = "redis"))]

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

use cache_runtime::cached;

struct Catalog {
    region: String,
    reads: AtomicU32,
}

impl Catalog {
    fn new(region: &str) -> Self {
        Catalog {
            region: region.into(),
            reads: AtomicU32::new(0),
        }
    }

    /// `self` is not part of the key: every `Catalog` shares these entries.
    #[cached]
    fn price(&self, sku: &str) -> u32 {
        self.reads.fetch_add(1, SeqCst);
        sku.len() as u32 * 100
    }

    /// The key names a field of `self`: regions get their own entries.
    #[cached(key = "{self.region}:{sku}")]
    fn stock(&self, sku: &str) -> Result<u32, String> {
        self.reads.fetch_add(1, SeqCst);
        Ok(if self.region == "eu" { 5 } else { 9 } + sku.len() as u32)
    }

    #[cached]
    fn bump(&mut self, by: u32) -> u32 {
        self.region.push('!');
        by + 1
    }
}

#[test]
fn self_is_not_part_of_the_default_key() {
    let (a, b) = (Catalog::new("eu"), Catalog::new("us"));
    assert_eq!(a.price("ab"), 200);
    assert_eq!(b.price("ab"), 200);
    assert_eq!(a.reads.load(SeqCst) + b.reads.load(SeqCst), 1);
    assert!(Catalog::price_invalidate("ab").is_done());
    assert_eq!(b.price("ab"), 200);
    assert_eq!(b.reads.load(SeqCst), 1);
    assert_eq!(a.price_uncached("abc"), 300);
    assert_eq!(Catalog::price_cache().stats().loads, 2);
}

#[test]
fn a_self_field_in_the_template_is_part_of_the_key() {
    let (eu, us) = (Catalog::new("eu"), Catalog::new("us"));
    assert_eq!(eu.stock("x"), Ok(6));
    assert_eq!(us.stock("x"), Ok(10));
    assert_eq!(eu.stock("x"), Ok(6));
    assert!(eu.stock_invalidate("x").is_done());
    assert_eq!(us.stock("x"), Ok(10));
    assert_eq!(eu.stock("x"), Ok(6));
    assert_eq!((eu.reads.load(SeqCst), us.reads.load(SeqCst)), (2, 1));
    assert_eq!(eu.stock_refresh("x"), Ok(6));
    assert!(Catalog::stock_cache().name().ends_with("Catalog::stock"));
}

#[test]
fn mut_self_methods_are_cached_too() {
    let mut c = Catalog::new("eu");
    assert_eq!(c.bump(1), 2);
    assert_eq!(c.bump(1), 2);
    assert_eq!(c.region, "eu!", "the body ran once");
    assert_eq!(c.bump_refresh(1), 2);
    assert_eq!(c.region, "eu!!");
}

struct Tenant {
    id: u32,
}

impl Tenant {
    #[cached(key = "{self.id}:{n}")]
    async fn quota(&self, n: u32) -> Option<u32> {
        (n > 0).then_some(self.id * n)
    }
}

#[tokio::test]
async fn async_methods_with_self_keys() {
    let (a, b) = (Tenant { id: 1 }, Tenant { id: 2 });
    assert_eq!(a.quota(3).await, Some(3));
    assert_eq!(b.quota(3).await, Some(6));
    assert_eq!(a.quota(0).await, None);
    assert_eq!(a.quota(0).await, None);
    assert!(a.quota_invalidate(3).await.is_done());
    assert_eq!(a.quota(3).await, Some(3));
    let s = Tenant::quota_cache().stats();
    assert_eq!((s.misses, s.null_hits, s.hits), (4, 1, 0));
}
