//! Issue 8: `#[cached]` below `#[async_trait]` sees boxed futures; one error says the order.
use async_trait::async_trait;
use cache_runtime::cached;

#[async_trait]
trait Inventory {
    async fn stock(&self, sku: u32) -> u32;
}

struct Shop;

#[async_trait]
#[cached]
impl Inventory for Shop {
    #[cached]
    async fn stock(&self, sku: u32) -> u32 {
        sku
    }
}

fn main() {}
