//! The Redis expansion names everything by full path too: it compiles inside a module without
//! the prelude, and beside user items named like the ones it uses.
#![cfg(feature = "redis")]

mod no_prelude {
    #![no_implicit_prelude]

    #[::cache_runtime::cached(ttl = 60, key = "n:{n}")]
    pub(crate) fn square(n: u64) -> u64 {
        n * n
    }

    #[::cache_runtime::cached]
    pub(crate) async fn greet(
        name: ::std::string::String,
    ) -> ::core::result::Result<::core::option::Option<::std::string::String>, ()> {
        ::core::result::Result::Ok(::core::option::Option::Some(::std::format!("hi {name}")))
    }
}

#[allow(dead_code)]
mod shadowing {
    mod serde_json {}
    mod std {}
    struct Vec;
    struct Result;

    #[cache_runtime::cached(ttl = 60)]
    pub(crate) fn doubled(x: u32) -> u32 {
        x * 2
    }
}

#[test]
fn the_redis_expansion_is_hygienic() {
    // The harness's own server (or, without one, no Redis: the calls are answered anyway).
    let _ = tests::redis_server::setup(&format!("hygiene{}:", ::std::process::id()));
    assert_eq!(no_prelude::square(3), 9);
    assert_eq!(shadowing::doubled(4), 8);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert_eq!(
        rt.block_on(no_prelude::greet("ann".into())),
        Ok(Some("hi ann".into()))
    );
}
