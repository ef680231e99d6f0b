//! Issue 8: cached methods of trait impls, plain and `#[async_trait]`, on the build's backend.
//! `#[cached]` on the `impl` block keeps the cached methods in the trait impl and moves their
//! companions to an inherent impl of the type.

mod common;

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

use async_trait::async_trait;
use cache_runtime::cached;

trait Catalog {
    fn price(&self, sku: u32) -> u64;
    fn label(sku: u32) -> String;
    fn region(&self) -> &str;
}

struct Shop {
    region: String,
}

static PRICE: AtomicU32 = AtomicU32::new(0);
static LABEL: AtomicU32 = AtomicU32::new(0);

#[cached]
impl Catalog for Shop {
    #[cached(ttl = 60)]
    fn price(&self, sku: u32) -> u64 {
        PRICE.fetch_add(1, SeqCst);
        u64::from(sku) * 100
    }

    /// An associated function without a receiver: `Self` is known on a cached block.
    #[cached(key = "label:{sku}")]
    fn label(sku: u32) -> String {
        LABEL.fetch_add(1, SeqCst);
        format!("sku-{sku}")
    }

    fn region(&self) -> &str {
        &self.region
    }
}

#[test]
fn issue_8_methods_of_a_trait_impl_are_cached() {
    if !common::backend_ready() {
        return;
    }
    let shop = Shop {
        region: "eu".into(),
    };
    assert_eq!(shop.price(7), 700);
    assert_eq!(shop.price(7), 700);
    assert_eq!(PRICE.load(SeqCst), 1);
    assert!(Shop::price_invalidate(7).is_done());
    assert_eq!(shop.price(7), 700);
    assert_eq!(PRICE.load(SeqCst), 2);
    assert_eq!(Shop::price_uncached(&shop, 1), 100);
    assert_eq!(Shop::price_cache().stats().hits, 1);
    assert!(Shop::price_cache().name().ends_with("Shop::price"));
    assert_eq!(shop.region(), "eu");

    assert_eq!(Shop::label(3), "sku-3");
    assert_eq!(<Shop as Catalog>::label(3), "sku-3");
    assert_eq!(LABEL.load(SeqCst), 1);
}

trait Table {
    const NAME: &'static str;
}
struct Users;
struct Orders;
impl Table for Users {
    const NAME: &'static str = "users";
}
impl Table for Orders {
    const NAME: &'static str = "orders";
}

trait Describe {
    fn describe(&self, id: u64) -> String;
}

struct Repo<T>(PhantomData<T>);

#[cached]
impl<T: Table> Describe for Repo<T> {
    #[cached]
    fn describe(&self, id: u64) -> String {
        format!("{}#{id}", T::NAME)
    }
}

#[test]
fn issue_8_generic_trait_impls_cache_per_type() {
    if !common::backend_ready() {
        return;
    }
    let (u, o) = (Repo::<Users>(PhantomData), Repo::<Orders>(PhantomData));
    for _ in 0..2 {
        assert_eq!(u.describe(1), "users#1");
        assert_eq!(o.describe(1), "orders#1");
    }
    assert_eq!(Repo::<Users>::describe_cache().stats().hits, 1);
    assert_eq!(Repo::<Orders>::describe_cache().stats().hits, 1);
}

#[async_trait]
trait Inventory {
    async fn stock(&self, sku: u32) -> u32;
}

static STOCK: AtomicU32 = AtomicU32::new(0);

#[cached]
#[async_trait]
impl Inventory for Shop {
    #[cached(ttl = 60)]
    async fn stock(&self, sku: u32) -> u32 {
        STOCK.fetch_add(1, SeqCst);
        sku + self.region.len() as u32
    }
}

#[test]
fn issue_8_async_trait_methods_are_cached() {
    if !common::backend_ready() {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let shop = std::sync::Arc::new(Shop {
        region: "eu".into(),
    });
    let (a, b) = rt.block_on(async {
        // `tokio::spawn` needs the boxed future to be `Send`, as `#[async_trait]` promises.
        let s = shop.clone();
        let first = tokio::spawn(async move { s.stock(5).await })
            .await
            .expect("joined");
        (first, shop.stock(5).await)
    });
    assert_eq!((a, b), (7, 7));
    assert_eq!(STOCK.load(SeqCst), 1);
    assert!(rt.block_on(Shop::stock_invalidate(5)).is_done());
    assert_eq!(rt.block_on(shop.stock(5)), 7);
    assert_eq!(STOCK.load(SeqCst), 2);
}
