//! The companions of a cached function `f`, one generator each: `f_uncached` (the body),
//! `f_invalidate`, `f_refresh`, `f_entry` and `f_cache`. `f_warm` is in `warm.rs`.

use proc_macro2::TokenStream;
use quote::quote;

use super::{Gen, Output, mixed};
use crate::attrs;

impl Gen<'_> {
    /// The body as written, under `f_uncached`, with the function's attributes but its docs.
    pub(super) fn uncached(&self) -> TokenStream {
        let mut func = self.func.clone();
        func.sig.ident = self.ident("_uncached");
        func.attrs.retain(attrs::on_body);
        let f = &self.func.sig.ident;
        let doc = format!(" Runs the body of `{f}` without the cache: no lookup, no store.");
        quote! {
            #[doc = #doc]
            #func
        }
    }

    /// ```text
    /// fn f_invalidate(a: A) -> Invalidation { __cached_f().invalidate(&Lookup((&a,))) }
    /// ```
    pub(super) fn invalidate(&self) -> TokenStream {
        let ident = self.ident("_invalidate");
        let receiver = if self.key.uses_self {
            self.shared_receiver()
        } else {
            None
        };
        let params = self.key.params(self.sig);
        let krate = &self.krate;
        let returns = quote!(#krate::Invalidation);
        let sig = self.signature(&ident, receiver.as_ref(), &params, Output::Own(returns));
        let store = self.path_to(&self.store_ident());
        let code = self.key.code(&self.krate);
        let (prelude, lookup) = (&code.prelude, &code.lookup);
        let invalidate = match self.func.sig.asyncness {
            Some(_) => quote!(#store().invalidate_async(&#lookup).await),
            None => quote!(#store().invalidate(&#lookup)),
        };
        let (vis, cfgs) = (self.vis(), &self.cfgs);
        let f = &self.func.sig.ident;
        let doc = format!(
            " Removes the cached result of `{f}` for these key arguments. A load of the same \
             key in flight keeps its result out of the cache. On Redis, `Pending` says Redis \
             could not be reached: removed in this process, and replayed when Redis answers."
        );
        quote! {
            #(#cfgs)*
            #[doc = #doc]
            #[allow(dead_code)]
            #vis #sig {
                #prelude
                #invalidate
            }
        }
    }

    /// `&self` for a method whose key names `self`, whatever `f` takes.
    fn shared_receiver(&self) -> Option<syn::Receiver> {
        let self_token = &self.sig.receiver.as_ref()?.self_token;
        Some(syn::parse_quote!(&#self_token))
    }

    /// ```text
    /// fn f_refresh(a: A, b: &B) -> R {
    ///     let key = __cached_f().key(&Lookup((&a, &*b)));
    ///     __cached_f().refresh(key, move || f_uncached(a, b))
    /// }
    /// ```
    pub(super) fn refresh(&self) -> TokenStream {
        let ident = self.ident("_refresh");
        let sig = self.signature(
            &ident,
            self.sig.receiver.as_ref(),
            &self.all_params(),
            Output::Body(&self.sig.output),
        );
        let store = self.path_to(&self.store_ident());
        let code = self.key.code(&self.krate);
        let (prelude, lookup) = (&code.prelude, &code.lookup);
        let call = self.call_uncached();
        let tags = self.tags.code(&self.krate);
        let [key] = mixed(["__key"]);
        let refresh = match self.func.sig.asyncness {
            Some(_) => quote!(#store().refresh_async(#key, #call).await),
            None => quote!(#store().refresh(#key, move || #call)),
        };
        let (vis, cfgs) = (self.vis(), &self.cfgs);
        let f = &self.func.sig.ident;
        let doc = format!(" Runs the body of `{f}` now, stores its result and returns it.");
        quote! {
            #(#cfgs)*
            #[doc = #doc]
            #[allow(dead_code, deprecated)]
            #vis #sig {
                let #key = {
                    #prelude
                    #store().key(&#lookup, #tags)
                };
                #refresh
            }
        }
    }

    /// `f`'s twin that tells how it answered:
    ///
    /// ```text
    /// fn f_entry(a: A, b: &B) -> Cached<R> {
    ///     let cache = __cached_f();
    ///     let key = { ..; if let Some(hit) = cache.get_entry(&lookup) { return hit; } .. };
    ///     cache.load_entry(key, move || f_uncached(a, b))
    /// }
    /// ```
    pub(super) fn entry(&self) -> TokenStream {
        let krate = &self.krate;
        let output = &self.sig.output;
        let ident = self.ident("_entry");
        let returns = quote!(#krate::Cached<#output>);
        let sig = self.signature(
            &ident,
            self.sig.receiver.as_ref(),
            &self.all_params(),
            Output::Own(returns),
        );
        let store = self.path_to(&self.store_ident());
        let [cache] = mixed(["__cache"]);
        let on_hit = |hit: &syn::Ident| self.tags.tag_hit(krate, hit);
        let cache_aside = self.cache_aside(&cache, "get_entry", on_hit, "load_entry");
        let (vis, cfgs) = (self.vis(), &self.cfgs);
        let f = &self.func.sig.ident;
        let doc = format!(
            " Calls `{f}` through its cache and tells how it was answered: the result with its \
             status (hit, miss, stale, null hit), age, freshness left and version, for HTTP \
             `Cache-Control`, `Age` and `ETag` headers."
        );
        quote! {
            #(#cfgs)*
            #[doc = #doc]
            #[allow(dead_code, deprecated)]
            #vis #sig {
                let #cache = #store();
                #cache_aside
            }
        }
    }

    /// ```text
    /// fn f_cache() -> &'static CacheHandle { __cached_f().handle() }
    /// ```
    pub(super) fn cache_handle(&self) -> TokenStream {
        let krate = &self.krate;
        let ident = self.ident("_cache");
        let store = self.path_to(&self.store_ident());
        let (vis, cfgs) = (self.vis(), &self.cfgs);
        let f = &self.func.sig.ident;
        let doc = format!(" The cache of `{f}`: its name, stats, and `clear()`.");
        quote! {
            #(#cfgs)*
            #[doc = #doc]
            #[allow(dead_code)]
            #vis fn #ident() -> &'static #krate::__private::CacheHandle {
                #store().handle()
            }
        }
    }
}
