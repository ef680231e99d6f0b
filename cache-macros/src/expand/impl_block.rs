//! `#[cached]` on an `impl` block: cached methods of trait impls (and of `#[async_trait]`
//! ones).
//!
//! A trait impl may hold only the trait's items, so the companions of a cached method cannot
//! sit beside it. On the block, `#[cached]` keeps each `#[cached(..)]` method in place as the
//! cached wrapper and moves its companions into an inherent impl of the same type:
//!
//! ```text
//! #[cached]                                  impl Catalog for Shop {
//! impl Catalog for Shop {                        fn price(&self, sku: u32) -> u64 { /* cached */ }
//!     #[cached(ttl = 60)]            =>      }
//!     fn price(&self, sku: u32) -> u64 {..}  impl Shop {
//! }                                              fn price_uncached(&self, sku: u32) -> u64 {..}
//!                                                pub(crate) fn price_invalidate(sku: u32) {..}
//!                                                ..
//!                                            }
//! ```
//!
//! With `#[async_trait]`, `#[cached]` goes above it, so that it sees the `async fn`s as
//! written and `#[async_trait]` then boxes only the trait's methods.

use proc_macro2::TokenStream;
use quote::quote;
use syn::spanned::Spanned as _;
use syn::{ImplItem, ItemFn, ItemImpl, Meta, Signature};

use super::{Place, expand_fn};
use crate::errors::Errors;

/// Whether `attr` is `#[cached]` (or `#[path::to::cached]`, with or without arguments).
fn is_cached(attr: &syn::Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == "cached")
}

/// Expands `#[cached] impl ..`.
pub(super) fn cached_impl(attr: TokenStream, mut block: ItemImpl) -> TokenStream {
    let mut errors = Errors::default();
    if let Some(first) = attr.clone().into_iter().next() {
        errors.at(
            first.span(),
            "`#[cached]` on an `impl` block takes no arguments: write them on its methods, \
             `#[cached(ttl = 60)] fn ..`",
        );
    }
    let place = Place::ImplBlock {
        of_trait: block.trait_.is_some(),
    };
    let mut companions = TokenStream::new();
    let mut cached_any = false;
    for item in &mut block.items {
        let ImplItem::Fn(method) = item else { continue };
        let Some(at) = method.attrs.iter().position(is_cached) else {
            continue;
        };
        cached_any = true;
        let attr = method.attrs.remove(at);
        let args = match attr.meta {
            Meta::Path(_) => TokenStream::new(),
            Meta::List(list) => list.tokens,
            Meta::NameValue(nv) => {
                errors.at(
                    nv.span(),
                    "write `#[cached(ttl = 60)]`, not `#[cached = ..]`",
                );
                continue;
            }
        };
        let func = ItemFn {
            attrs: method.attrs.clone(),
            vis: method.vis.clone(),
            modifiers: method.modifiers.clone(),
            sig: method.sig.clone(),
            block: Box::new(method.block.clone()),
        };
        match expand_fn(args, &func, place) {
            Ok(expansion) => {
                *item = ImplItem::Verbatim(expansion.function);
                companions.extend(expansion.companions);
            }
            Err(e) => errors.extend(e),
        }
    }
    if !cached_any && errors.is_empty() {
        errors.at(
            block.impl_token.span(),
            "`#[cached]` on an `impl` block caches the methods that carry `#[cached]`, and none \
             here does: add `#[cached]` to a method, e.g. `#[cached(ttl = 60)] fn ..`",
        );
    }
    let errors = errors.into_error().map(|e| e.to_compile_error());
    let (generics, _, where_clause) = block.generics.split_for_impl();
    let self_ty = &block.self_ty;
    let inherent = (!companions.is_empty()).then(|| {
        quote! {
            impl #generics #self_ty #where_clause {
                #companions
            }
        }
    });
    quote! {
        #errors
        #block
        #inherent
    }
}

/// A method `#[async_trait]` already rewrote (`fn f<'life0, 'async_trait>(..) ->
/// Pin<Box<dyn Future + 'async_trait>>`) cannot be cached: its result is a future. Says where
/// `#[cached]` goes instead, and returns whether it did.
pub(super) fn refuse_async_trait(sig: &Signature, place: Place, errors: &mut Errors) -> bool {
    let rewritten = sig
        .generics
        .lifetimes()
        .any(|l| l.lifetime.ident == "async_trait");
    if !rewritten {
        return false;
    }
    let message = match place {
        Place::Alone => {
            "`#[cached]` on a method of an `#[async_trait]` impl: put `#[cached]` on the \
             `impl` block instead, above `#[async_trait]` (`#[cached] #[async_trait] impl ..`), \
             and keep `#[cached(..)]` on the method"
        }
        Place::ImplBlock { .. } => {
            "`#[cached]` must come before `#[async_trait]`: write `#[cached] #[async_trait] \
             impl ..`, so that it sees the `async fn`s as written"
        }
    };
    errors.at(sig.ident.span(), message);
    true
}
