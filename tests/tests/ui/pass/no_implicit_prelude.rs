#![no_implicit_prelude]

mod inner {
    #![no_implicit_prelude]

    #[::cache_runtime::cached(ttl = 60, key = "{a}:{b}")]
    pub fn add(a: u32, b: u32) -> ::core::option::Option<u32> {
        a.checked_add(b)
    }
}

fn main() {
    ::std::assert_eq!(inner::add(1, 2), ::core::option::Option::Some(3));
}
