//! Issue 8: `#[cached]` on a method of an `#[async_trait]` impl; one error says to put it on
//! the `impl` block.
use async_trait::async_trait;
use cache_runtime::cached;

#[async_trait]
trait Inventory {
    async fn stock(&self, sku: u32) -> u32;
}

struct Shop;

#[async_trait]
impl Inventory for Shop {
    #[cached]
    async fn stock(&self, sku: u32) -> u32 {
        sku
    }
}

fn main() {}
