//! `#[cached]` on a method of a trait impl whose block lacks `#[cached]`: one error says to
//! add it to the block (the companions cannot live in the trait impl).
use cache_runtime::cached;

trait Catalog {
    fn price(&self, sku: u32) -> u64;
}

struct Shop;

impl Catalog for Shop {
    #[cached(ttl = 60)]
    fn price(&self, sku: u32) -> u64 {
        u64::from(sku) * 100
    }
}

fn main() {}
