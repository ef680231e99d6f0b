mod shop {
    use cache_runtime::cached;

    #[cached]
    pub fn public(x: u32) -> u32 {
        x
    }

    #[cached]
    pub(crate) fn crate_visible(x: u32) -> u32 {
        x + 1
    }

    pub mod inner {
        #[cache_runtime::cached]
        pub(super) fn parent_visible(x: u32) -> u32 {
            x + 2
        }

        pub fn call() -> u32 {
            parent_visible(1)
        }
    }

    pub fn call_parent_visible() -> u32 {
        inner::parent_visible(1) + inner::call()
    }
}

fn main() {
    assert_eq!(shop::public(1), 1);
    assert!(shop::public_invalidate(1).is_done());
    assert_eq!(shop::crate_visible(1), 2);
    assert_eq!(shop::crate_visible_cache().stats().misses, 1);
    assert_eq!(shop::call_parent_visible(), 6);
}
