use cache_runtime::cached;

struct Shop;

#[cached(ttl = 60)]
impl Shop {
    fn price(&self) -> u32 {
        1
    }
}

fn main() {}
