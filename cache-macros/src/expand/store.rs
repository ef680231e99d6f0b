//! The generators of the cache itself: the hidden function holding the static cache with its
//! `Function` (and `RedisFunction`) impl, the policy, the name, and the backend checks.

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use super::{Gen, mixed};
use crate::args::{Backend, CodecKind, CompressKind, LockKind};
use crate::key::respan;

/// The build has the runtime's `redis` feature: Redis is the default backend.
pub(super) const REDIS_BUILD: bool = cfg!(feature = "redis");

/// The default `null_ttl`'s cap (`min(ttl, 300 s)`); a batch function's too.
pub(super) const DEFAULT_NULL_TTL_MS: u64 = 300_000;
const DEFAULT_JITTER: f64 = 0.1;
const DEFAULT_MAX_ENTRIES: u64 = 10_000;
const DEFAULT_LOCK_TIMEOUT_MS: u64 = 5_000;

impl Gen<'_> {
    /// `backend = "redis"` and `lock = "distributed"` need the runtime's `redis` feature.
    pub(super) fn backend_checks(&self) -> TokenStream {
        let mut out = TokenStream::new();
        if REDIS_BUILD || self.args.store.is_some() {
            // A store of the user's needs no Redis, whatever its lock or tier.
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
        let lock = match args.lock.map(|l| l.value) {
            Some(LockKind::None) => quote!(None),
            Some(LockKind::Local) => quote!(Local),
            Some(LockKind::Distributed) | None if self.redis || args.store.is_some() => {
                quote!(Distributed)
            }
            Some(LockKind::Distributed) | None => quote!(Local),
        };
        let codec = match args.codec.map(|c| c.value) {
            Some(CodecKind::Json) => quote!(Json),
            Some(CodecKind::MessagePack) | None => quote!(MessagePack),
        };
        let lock_timeout = ms(args
            .lock_timeout
            .map_or(DEFAULT_LOCK_TIMEOUT_MS, |l| l.value));
        let stale = ms(args.stale.map_or(0, |s| s.value));
        let stale_if_error = ms(args.stale_if_error.map_or(0, |s| s.value));
        let load_timeout = match args.load_timeout {
            Some(t) => {
                let d = ms(t.value);
                quote!(::core::option::Option::Some(#d))
            }
            None => quote!(::core::option::Option::None),
        };
        let early_refresh = Literal::f64_suffixed(args.early_refresh.map_or(0.0, |b| b.value));
        let verify = Literal::f64_suffixed(args.verify.map_or(0.0, |v| v.value));
        let l1_ttl = match args.l1_ttl {
            Some(t) => {
                let d = ms(t.value);
                quote!(::core::option::Option::Some(#d))
            }
            None => quote!(::core::option::Option::None),
        };
        let bounds = self.memory_bounds();
        quote! {
            #krate::__private::Policy {
                ttl: #ttl,
                null_ttl: #null_ttl,
                jitter: #jitter,
                #bounds
                lock: #krate::__private::Lock::#lock,
                lock_timeout: #lock_timeout,
                codec: #krate::__private::Codec::#codec,
                stale: #stale,
                stale_if_error: #stale_if_error,
                load_timeout: #load_timeout,
                early_refresh: #early_refresh,
                l1_ttl: #l1_ttl,
                verify: #verify,
            }
        }
    }

    /// The fields of the policy that bound memory: `max_entries` (10,000 by default, none
    /// when `max_bytes` alone is given), `max_bytes`, `compress` and `compress_min`.
    fn memory_bounds(&self) -> TokenStream {
        let krate = &self.krate;
        let args = self.args;
        let max_entries = match (args.max_entries, args.max_bytes) {
            (Some(m), _) => m.value,
            (None, Some(_)) => u64::MAX,
            (None, None) => DEFAULT_MAX_ENTRIES,
        };
        let max_bytes = match args.max_bytes {
            Some(b) => {
                let b = b.value;
                quote!(::core::option::Option::Some(#b))
            }
            None => quote!(::core::option::Option::None),
        };
        let compress = match args.compress.map(|c| c.value) {
            Some(CompressKind::Zstd) => quote!(Zstd),
            Some(CompressKind::Lz4) => quote!(Lz4),
            Some(CompressKind::None) | None => quote!(None),
        };
        let compress_min = match args.compress_min {
            Some(c) => {
                let c = c.value;
                quote!(#c)
            }
            None => quote!(#krate::__private::DEFAULT_COMPRESS_MIN),
        };
        quote! {
            max_entries: #max_entries,
            max_bytes: #max_bytes,
            compress: #krate::__private::Compression::#compress,
            compress_min: #compress_min,
        }
    }

    /// The `ttl_fn` of the cache, as a function pointer, else none.
    fn ttl_fn(&self) -> TokenStream {
        let krate = &self.krate;
        match &self.args.ttl_fn {
            Some(path) => quote_spanned! {path.span()=>
                ::core::option::Option::Some(#path as fn(&_) -> #krate::__private::Duration)
            },
            None => quote!(::core::option::Option::None),
        }
    }

    /// How `verify` compares a served value with a fresh one, checked at the argument: by the
    /// encoded bytes where values are serialized (Redis, tiered), else by `PartialEq`; none
    /// without `verify`.
    fn same(&self) -> TokenStream {
        let Some(at) = self.args.verify else {
            return quote!(::core::option::Option::None);
        };
        let krate = respan(&self.krate, at.span);
        let by = match (self.redis, &self.args.store) {
            (true, None) => quote_spanned!(at.span=> same_bytes),
            _ => quote_spanned!(at.span=> same_eq),
        };
        quote_spanned! {at.span=>
            ::core::option::Option::Some(
                #krate::__private::#by as fn(&_, &_) -> ::core::option::Option<bool>
            )
        }
    }

    /// The weigher of a cache bounded by `max_bytes` (the keys' and values' `Weigh`, checked
    /// at the argument), else none.
    pub(super) fn weigher(&self) -> TokenStream {
        match self.args.max_bytes {
            Some(at) => {
                let krate = respan(&self.krate, at.span);
                quote_spanned! {at.span=>
                    ::core::option::Option::Some(#krate::__private::Weigher::of())
                }
            }
            None => quote!(::core::option::Option::None),
        }
    }

    /// The cache's name, as an expression of type `String`: `name = "..."`, or the function's
    /// path. In a method, the name belongs to one `Self` type: the default is
    /// `<Self's type name>::f`, and a given name gets the type arguments of `Self`, if any, so
    /// the caches of a generic `impl<T> Repo<T>` never share a name (or Redis keys).
    pub(super) fn name(&self) -> TokenStream {
        let krate = &self.krate;
        let f = self.func.sig.ident.to_string();
        match (&self.args.name, self.has_self()) {
            (Some(name), true) => quote! {
                #krate::__private::method_name(
                    ::core::option::Option::Some(#name),
                    ::core::any::type_name::<Self>(),
                    #f,
                )
            },
            (Some(name), false) => {
                quote!(<::std::string::String as ::core::convert::From<&str>>::from(#name))
            }
            (None, true) => quote! {
                #krate::__private::method_name(
                    ::core::option::Option::None,
                    ::core::any::type_name::<Self>(),
                    #f,
                )
            },
            (None, false) => quote! {
                <::std::string::String as ::core::convert::From<&str>>::from(
                    ::core::concat!(::core::module_path!(), "::", #f),
                )
            },
        }
    }

    /// ```text
    /// fn __cached_f() -> &'static Cache<impl for<'x> Function<Lookup<'x> = .., Output = R>> {
    ///     struct f<K0> { .. }
    ///     impl<K0> Signature for f<K0> where K0: KeyParam { .. } // see `signature.rs`
    ///     static CELL: Cell = Cell::new();
    ///     let shape = (&&&Probe::<R>::new()).pick(); // the type checker picks R's shape
    ///     memory_cache(&CELL, TypeId::of::<()>(), f(..), shape, || (name, Policy { .. }))
    /// }
    /// ```
    ///
    /// Every bound the cache needs is checked once, where the cache is made: those of key parts
    /// as where-clauses of the `Signature` impl, those of the value at the return type.
    pub(super) fn store(&self) -> TokenStream {
        let krate = &self.krate;
        let ident = self.store_ident();
        let out = self.sig.output_span;
        let x = syn::Lifetime::new("'__cached", self.key.span(out));
        let lookup_ty = self.key.lookup_type(krate, &x, out);
        let key_ty = self.key.owned_type(out);
        let output = &self.sig.output;
        let (signature_items, signature) = self.signature_impl();
        let [cell] = mixed(["CELL"]);
        let shape = syn::Ident::new("__shape", out);
        // The store, named by the backend's name or the user's path, and what its cache needs
        // of the function.
        let private = quote!(#krate::__private);
        let (store, trait_name, make) = match (&self.args.store, self.redis, self.tiered) {
            (Some(path), _, true) => (
                quote!(#private::Tiered<#path>),
                quote!(Function),
                "store_cache",
            ),
            (Some(path), _, false) => (quote!(#path), quote!(Function), "store_cache"),
            (None, true, true) => (
                quote!(#private::TieredBackend),
                quote!(RedisFunction),
                "redis_cache",
            ),
            (None, true, false) => (
                quote!(#private::RedisBackend),
                quote!(RedisFunction),
                "redis_cache",
            ),
            (None, false, _) => (quote!(#private::Memory), quote!(Function), "memory_cache"),
        };
        // At the parameter most likely to fail a key bound, else at the return type: the
        // opaque type's check of a bound is reported once with the same check elsewhere only
        // when both are at one place (see `Key::suspect`).
        let opaque_at = self.key.suspect().unwrap_or(out);
        let opaque = quote_spanned! {opaque_at=>
            impl for<#x> #krate::__private::#trait_name<
                Key = #key_ty,
                Lookup<#x> = #lookup_ty,
                Output = #output,
            >
        };
        let krate_ret = respan(krate, opaque_at);
        let store = respan(&store, opaque_at);
        let returns = quote_spanned! {opaque_at=>
            &'static #krate_ret::__private::Engine<#opaque, #store>
        };
        let owner = match self.has_self() {
            true => quote!(#krate::__private::type_id_of::<Self>()),
            false => quote!(#krate::__private::TypeId::of::<()>()),
        };
        let (name, policy, cfgs) = (self.name(), self.policy(), &self.cfgs);
        // Spanned at the return type, so that a value that is not `Clone` (or not serde) errs
        // there; a key part that is not a key type errs at its field of `signature`, spanned at
        // its parameter.
        let krate_out = respan(krate, out);
        let shape_at = syn::Ident::new("__shape", out);
        let make = syn::Ident::new(make, proc_macro2::Span::call_site());
        let (ttl_fn, weigher, same) = (self.ttl_fn(), self.weigher(), self.same());
        let make = quote! {
            #krate::__private::#make(
                &#cell, #owner, #signature, #shape_at,
                || (#name, #policy, #ttl_fn, #weigher, #same)
            )
        };
        quote! {
            #(#cfgs)*
            #[doc(hidden)]
            #[allow(clippy::type_complexity)]
            fn #ident() -> #returns {
                #signature_items
                static #cell: #krate::__private::Cell = #krate::__private::Cell::new();
                let #shape = {
                    use #krate::__private::pick::{
                        PickOpt as _, PickPlain as _, PickRes as _, PickResOpt as _,
                    };
                    (&&&#krate_out::__private::Probe::<#output>::new()).pick()
                };
                #make
            }
        }
    }

    pub(super) fn store_ident(&self) -> syn::Ident {
        let f = &self.func.sig.ident;
        format_ident!("__cached_{}", f, span = f.span())
    }
}
