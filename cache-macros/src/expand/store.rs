//! The generators of the cache itself: the hidden function holding the static cache with its
//! `Function` (and `RedisFunction`) impl, the policy, the name, and the backend checks.

use proc_macro2::{Literal, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};

use super::{Gen, mixed};
use crate::args::{Backend, LockKind};
use crate::key::respan;

/// The build has the runtime's `redis` feature: Redis is the default backend.
pub(super) const REDIS_BUILD: bool = cfg!(feature = "redis");

const DEFAULT_NULL_TTL_MS: u64 = 300_000;
const DEFAULT_JITTER: f64 = 0.1;
const DEFAULT_MAX_ENTRIES: u64 = 10_000;
const DEFAULT_LOCK_TIMEOUT_MS: u64 = 5_000;

impl Gen<'_> {
    /// `backend = "redis"` and `lock = "distributed"` need the runtime's `redis` feature.
    pub(super) fn backend_checks(&self) -> TokenStream {
        let mut out = TokenStream::new();
        if REDIS_BUILD {
            return out;
        }
        if let Some(b) = self.args.backend {
            let what = match b.value {
                Backend::Memory => None,
                Backend::Redis => Some("backend = \"redis\""),
                Backend::Tiered => Some("backend = \"tiered\""),
            };
            if let Some(what) = what {
                let krate = respan(&self.krate, b.span);
                out.extend(quote_spanned!(b.span=> #krate::__private::require_redis!(#what);));
            }
        }
        if let Some(l) = self.args.lock
            && l.value == LockKind::Distributed
        {
            let what = "lock = \"distributed\"";
            let krate = respan(&self.krate, l.span);
            out.extend(quote_spanned!(l.span=> #krate::__private::require_redis!(#what);));
        }
        out
    }

    /// The runtime policy built from the arguments and their defaults.
    pub(super) fn policy(&self) -> TokenStream {
        let krate = &self.krate;
        let args = self.args;
        let ms = |v: u64| quote!(#krate::__private::Duration::from_millis(#v));
        let ttl_ms = args.ttl.map(|t| t.value);
        let ttl = match ttl_ms {
            Some(v) => {
                let d = ms(v);
                quote!(::core::option::Option::Some(#d))
            }
            None => quote!(::core::option::Option::None),
        };
        let null_ms = match (args.null_ttl, ttl_ms) {
            (Some(n), _) => n.value,
            (None, Some(t)) => t.min(DEFAULT_NULL_TTL_MS),
            (None, None) => DEFAULT_NULL_TTL_MS,
        };
        let null_ttl = ms(null_ms);
        let jitter = Literal::f64_suffixed(args.jitter.map_or(DEFAULT_JITTER, |j| j.value));
        let max_entries = args.max_entries.map_or(DEFAULT_MAX_ENTRIES, |m| m.value);
        let lock = match args.lock.map(|l| l.value) {
            Some(LockKind::None) => quote!(None),
            Some(LockKind::Local) => quote!(Local),
            Some(LockKind::Distributed) | None if self.redis => quote!(Distributed),
            Some(LockKind::Distributed) | None => quote!(Local),
        };
        let lock_timeout = ms(args
            .lock_timeout
            .map_or(DEFAULT_LOCK_TIMEOUT_MS, |l| l.value));
        quote! {
            #krate::__private::Policy {
                ttl: #ttl,
                null_ttl: #null_ttl,
                jitter: #jitter,
                max_entries: #max_entries,
                lock: #krate::__private::Lock::#lock,
                lock_timeout: #lock_timeout,
            }
        }
    }

    /// The cache's name: `name = "..."`, or the function's path.
    pub(super) fn name(&self) -> TokenStream {
        if let Some(name) = &self.args.name {
            return name.to_token_stream();
        }
        let f = self.func.sig.ident.to_string();
        match self.sig.receiver {
            Some(_) => quote!(::std::format!("{}::{}", ::core::any::type_name::<Self>(), #f)),
            None => quote!(::core::concat!(::core::module_path!(), "::", #f)),
        }
    }

    /// ```text
    /// fn __cached_f() -> &'static Cache<impl for<'x> Function<Lookup<'x> = .., Output = R>> {
    ///     struct F;
    ///     impl Function for F { type Key = ..; type Lookup<'x> = ..; type Output = R; .. }
    ///     static CACHE: OnceLock<Cache<F>> = OnceLock::new();
    ///     CACHE.get_or_init(|| Cache::new("path::f", Policy { .. }))
    /// }
    /// ```
    ///
    /// Every bound the cache needs is checked once, in the `impl Function`, whose types carry
    /// the spans of the parameters and the return type; uses of the cache need none.
    pub(super) fn store(&self) -> TokenStream {
        let krate = &self.krate;
        let ident = self.store_ident();
        let out = self.sig.output_span;
        let x = syn::Lifetime::new("'__cached", self.key.span(out));
        let lookup_ty = self.key.lookup_type(krate, &x, out);
        let key_ty = self.key.owned_type(out);
        let (output, value_ty, shape) = (&self.sig.output, &self.sig.value_ty, self.shape());
        let display_checks = match self.args.key {
            Some(_) => self.key.display_checks(krate),
            None => TokenStream::new(),
        };
        let [function, cache, lookup] = mixed(["__Function", "CACHE", "__lookup"]);
        let (cache_ty, trait_name) = match self.redis {
            true => (quote!(RedisCache), quote!(RedisFunction)),
            false => (quote!(Cache), quote!(Function)),
        };
        // Each item carries the span its bound failures belong to.
        let opaque = quote_spanned! {self.key.span(out)=>
            impl for<#x> #krate::__private::#trait_name<
                Key = #key_ty,
                Lookup<#x> = #lookup_ty,
                Output = #output,
            >
        };
        let key_items = quote_spanned! {self.key.span(out)=>
            type Key = #key_ty;
            type Lookup<#x> = #lookup_ty;
        };
        let value_items = quote_spanned! {out=>
            type Output = #output;
            type Value = #value_ty;
            type Shape = #shape;
        };
        let to_key = self.key.to_key_body(krate, &lookup);
        let redis_impl = self.redis.then(|| self.redis_impl(&function));
        let (name, policy, cfgs) = (self.name(), self.policy(), &self.cfgs);
        quote! {
            #(#cfgs)*
            #[doc(hidden)]
            fn #ident() -> &'static #krate::__private::#cache_ty<#opaque> {
                #display_checks
                struct #function;
                impl #krate::__private::Function for #function {
                    #key_items
                    #value_items
                    #[allow(clippy::unused_unit)]
                    fn to_key(#lookup: &Self::Lookup<'_>) -> Self::Key {
                        #to_key
                    }
                }
                #redis_impl
                static #cache: #krate::__private::OnceLock<#krate::__private::#cache_ty<#function>> =
                    #krate::__private::OnceLock::new();
                #cache.get_or_init(|| #krate::__private::#cache_ty::new(#name, #policy))
            }
        }
    }

    /// ```text
    /// impl RedisFunction for F {
    ///     const SEPARATORS: &str = ":";
    ///     fn render_key(lookup, out) { out.text("user:"); out.value(id); Ok(()) }
    ///     fn encode(value, out) { serde_json::to_writer(out, value) }
    ///     fn decode(json) { serde_json::from_slice(json) }
    /// }
    /// ```
    pub(super) fn redis_impl(&self, function: &syn::Ident) -> TokenStream {
        let krate = &self.krate;
        let out = self.sig.output_span;
        let [lookup, writer] = mixed(["__lookup", "__out"]);
        // Spanned at the return type, so that a value that is not serde errs there (a call's
        // span runs from its first token to its last).
        let [value, bytes, out_writer] =
            ["__value", "__bytes", "__out"].map(|n| syn::Ident::new(n, out));
        let (render, separators) = self.key.render_body(krate, &lookup, &writer);
        let json = respan(&quote!(#krate::__private::serde_json), out);
        let codec = quote_spanned! {out=>
            fn encode(
                #value: &Self::Value,
                #out_writer: &mut ::std::vec::Vec<u8>,
            ) -> #json::Result<()> {
                #json::to_writer(#out_writer, #value)
            }
            fn decode(#bytes: &[u8]) -> #json::Result<Self::Value> {
                #json::from_slice(#bytes)
            }
        };
        quote! {
            impl #krate::__private::RedisFunction for #function {
                const SEPARATORS: &'static str = #separators;
                fn render_key(
                    #lookup: &Self::Lookup<'_>,
                    #writer: &mut #krate::__private::KeyWriter,
                ) -> #krate::__private::serde_json::Result<()> {
                    #render
                    ::core::result::Result::Ok(())
                }
                #codec
            }
        }
    }

    pub(super) fn store_ident(&self) -> syn::Ident {
        let f = &self.func.sig.ident;
        format_ident!("__cached_{}", f, span = f.span())
    }

    /// The shape marker, e.g. `::cache_runtime::__private::Opt`, spanned at the return type.
    pub(super) fn shape(&self) -> TokenStream {
        let out = self.sig.output_span;
        let krate = respan(&self.krate, out);
        let marker = syn::Ident::new(self.sig.shape.marker(), out);
        quote_spanned!(out=> #krate::__private::#marker)
    }
}
