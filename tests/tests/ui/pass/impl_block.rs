//! `#[cached]` on an inherent impl block: methods and associated functions, with generics.
use cache_runtime::cached;

struct Shop<T>(T);

#[cached]
impl<T: Clone + Send + Sync + 'static> Shop<T> {
    #[cached]
    pub fn make(id: u32) -> String {
        id.to_string()
    }

    #[cached(key = "{n}")]
    fn twice(&self, n: u32) -> u32 {
        n * 2
    }

    fn plain(&self) -> u32 {
        1
    }
}

fn main() {
    let shop = Shop(5u8);
    assert_eq!(Shop::<u8>::make(3), "3");
    assert_eq!(shop.twice(2), 4);
    assert_eq!(shop.plain(), 1);
    assert!(Shop::<u8>::twice_invalidate(2).is_done());
    assert_eq!(Shop::<u8>::make_cache().stats().misses, 1);
}
