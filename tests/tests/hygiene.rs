//! The generated code names everything by full path: it compiles inside a module without
//! the prelude, next to a user `mod core`, and beside user types called `Option` and `Result`.

// The in-process backend: with the `redis` feature, Redis is the default backend of the
// whole build, so these run in the build without it (`cargo test --workspace`).
#![cfg(not(feature = "redis"))]

#[allow(dead_code)]
mod shadowing {
    use cache_runtime::cached;

    mod core {}
    mod std {}

    struct Option;
    struct Result;
    struct Some;
    struct Duration;
    struct OnceLock;

    #[cached(ttl = 60)]
    pub(crate) fn doubled(x: u32) -> u32 {
        x * 2
    }

    #[cached(key = "{name}")]
    pub(crate) fn named(name: &str) -> ::core::option::Option<::std::string::String> {
        ::core::option::Option::Some(name.to_uppercase())
    }
}

mod no_prelude {
    #![no_implicit_prelude]

    use ::cache_runtime::cached;

    #[cached(ttl = 60, key = "n:{n}")]
    pub(crate) fn square(n: u64) -> u64 {
        n * n
    }

    #[cached]
    pub(crate) async fn greet(
        name: ::std::string::String,
    ) -> ::core::result::Result<::std::string::String, ()> {
        ::core::result::Result::Ok(::std::format!("hi {name}"))
    }
}

/// Locals the macro adds cannot collide with parameters of the same names.
#[cache_runtime::cached]
fn collide(__cache: u32, __key: u32, __hit: u32, __part0: u32) -> u32 {
    __cache + __key + __hit + __part0
}

#[test]
fn shadowed_names_do_not_reach_the_generated_code() {
    assert_eq!(shadowing::doubled(4), 8);
    assert_eq!(shadowing::named("a"), Some("A".into()));
    assert_eq!(no_prelude::square(3), 9);
    assert_eq!(no_prelude::square(3), 9);
    assert_eq!(no_prelude::square_cache().stats().hits, 1);
    assert_eq!(collide(1, 2, 3, 4), 10);
}

#[tokio::test]
async fn async_functions_without_the_prelude() {
    assert_eq!(no_prelude::greet("ann".into()).await, Ok("hi ann".into()));
}
