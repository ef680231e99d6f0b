//! The `#[cached]` attribute of [`cache-runtime`](https://docs.rs/cache-runtime).
//!
//! Depend on `cache-runtime`, which re-exports [`macro@cached`] and documents it; the code
//! this macro generates reaches the runtime only through `cache_runtime::__private`.

#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod args;
mod attrs;
mod duration;
mod errors;
mod expand;
mod key;
mod owned;
mod sig;
mod tags;
mod template;
mod weigh;

use proc_macro::TokenStream;

/// Turns a function into a cache-aside wrapper. Documented on `cache_runtime::cached`, where
/// its examples can run.
#[proc_macro_attribute]
pub fn cached(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::cached(attr.into(), item.into()).into()
}

/// Derives `cache_runtime::Weigh` (the heap bytes of a value, for `max_bytes`): the sum of
/// the fields' heap bytes, for an enum the held variant's. Documented on
/// `cache_runtime::Weigh`.
#[proc_macro_derive(Weigh, attributes(weigh))]
pub fn derive_weigh(item: TokenStream) -> TokenStream {
    weigh::derive(item.into()).into()
}
