//! `#[cached(batch)] fn f(keys: &[K]) -> HashMap<K, V>` (or `Result<HashMap<K, V>, E>`): a
//! function that loads many keys at once. The generated `f` answers what it can from a
//! `cache_runtime::Cache<K, V>` of its own and runs the body once, with exactly the keys that
//! missed and that no other caller is loading (`Cache::get_many_or_load`).

use proc_macro2::{Literal, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned as _;
use syn::{GenericArgument, ItemFn, PathArguments, Type};

use super::store::{DEFAULT_NULL_TTL_MS, REDIS_BUILD};
use super::{Place, mixed};
use crate::args::{Args, At, Backend, CodecKind, CompressKind, LockKind};
use crate::attrs;
use crate::errors::Errors;
use crate::key::respan;
use crate::owned::peel;
use crate::sig::{Sig, owned_static};

const EXAMPLE: &str = "`#[cached(batch)] fn users(ids: &[u64]) -> HashMap<u64, User>`";

/// The types of a batch function, as written.
struct Types<'a> {
    param: &'a syn::Ident,
    key: &'a Type,
    value: &'a Type,
    /// It returns `Result<HashMap<K, V>, E>`.
    fallible: bool,
}

/// Expands a batch function, or records why it cannot be one.
pub(super) fn expand(
    args: &Args,
    func: &ItemFn,
    sig: &Sig,
    place: Place,
    errors: &mut Errors,
) -> Option<TokenStream> {
    let at = args.batch?;
    if place != Place::Alone || sig.receiver.is_some() {
        errors.at(
            at,
            format!("`batch` goes on a free function, {EXAMPLE}: not on a method"),
        );
    }
    if let syn::Safety::Unsafe(unsafety) = &func.sig.safety {
        errors.at(
            unsafety.span(),
            "`batch` cannot cache an `unsafe fn`: cache a safe wrapper that calls it",
        );
    }
    if let Some(abi) = &func.sig.abi {
        errors.at(
            abi.span(),
            "`batch` cannot cache a function of another ABI: cache a Rust wrapper",
        );
    }
    refuse(args, errors);
    let types = read(sig, errors)?;
    if let (Some(n), false) = (args.null_ttl, is_option(types.value)) {
        errors.at(
            n.span,
            "`null_ttl` applies to a batch of `Option` values (`HashMap<K, Option<V>>`): \
             remove it",
        );
    }
    if !errors.is_empty() {
        return None;
    }
    Some(generate(args, func, &types))
}

/// The arguments that do not apply to a batch function.
fn refuse(args: &Args, errors: &mut Errors) {
    if let Some(key) = &args.key {
        errors.at(
            key.span(),
            "`key` does not apply to a batch function: each key of the slice is a key",
        );
    }
    if let Some(tags) = args.tags.as_ref().and_then(|t| t.first()) {
        errors.at(
            tags.span(),
            "`tags` does not apply to a batch function: build a `cache_runtime::Cache` with \
             `.tags(|key| ..)` and call its `get_many_or_load`",
        );
    }
    if let Some(store) = &args.store {
        errors.at(
            store.span(),
            "`store` does not apply to a batch function: its cache is a `cache_runtime::Cache` \
             on `backend`",
        );
    }
    if let Some(r) = args.record_keys {
        errors.at(
            r.span,
            "`record_keys` does not apply to a batch function: remove it",
        );
    }
    if let Some(v) = args.verify {
        errors.at(
            v.span,
            "`verify` does not apply to a batch function (one load answers many keys): \
             verify a single-key function that reads the same source",
        );
    }
}

/// The key type from `&[K]`, the value type from `HashMap<K, V>` (inside `Result`).
fn read<'a>(sig: &'a Sig, errors: &mut Errors) -> Option<Types<'a>> {
    let slice = match sig.params.as_slice() {
        [p] => match peel(&p.ty) {
            Type::Reference(r) if r.mutability.is_none() => match peel(&r.elem) {
                Type::Slice(s) => Some((&p.ident, peel(&s.elem))),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    };
    let Some((param, key)) = slice else {
        let span = sig.params.first().map_or(sig.output_span, |p| p.ty.span());
        errors.at(
            span,
            format!("a batch function takes its keys as one slice, {EXAMPLE}"),
        );
        return None;
    };
    if !owned_static(key.to_token_stream()) {
        errors.at(
            key.span(),
            "a batch function's keys are kept in its cache, so they must be owned: \
             `&[String]`, not `&[&str]`",
        );
        return None;
    }
    let (map, fallible) = match generic_args(peel(&sig.output), "Result") {
        Some([ok, _]) => (ok, true),
        _ => (&sig.output, false),
    };
    let Some([_, value]) = generic_args(peel(map), "HashMap") else {
        errors.at(
            sig.output_span,
            format!(
                "a batch function returns the value of each key it found, \
                 `std::collections::HashMap<K, V>` with the default hasher (or \
                 `Result<HashMap<K, V>, E>`), {EXAMPLE}"
            ),
        );
        return None;
    };
    Some(Types {
        param,
        key,
        value,
        fallible,
    })
}

/// Whether `ty` is written `Option<..>`: its `None` is then a null, as for a function that
/// returns `Option`.
fn is_option(ty: &Type) -> bool {
    match peel(ty) {
        Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Option"),
        _ => false,
    }
}

/// The two type arguments of `ty` when its last path segment is `name`.
fn generic_args<'a>(ty: &'a Type, name: &str) -> Option<[&'a Type; 2]> {
    let Type::Path(path) = ty else {
        return None;
    };
    let last = path.path.segments.last()?;
    if last.ident != name {
        return None;
    }
    let PathArguments::AngleBracketed(list) = &last.arguments else {
        return None;
    };
    let types: Vec<&Type> = list
        .args
        .iter()
        .filter_map(|a| match a {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        })
        .collect();
    match types.as_slice() {
        [a, b] if list.args.len() == 2 => Some([a, b]),
        _ => None,
    }
}

fn generate(args: &Args, func: &ItemFn, types: &Types<'_>) -> TokenStream {
    let krate = match &args.krate {
        Some(path) => quote!(#path),
        None => quote!(::cache_runtime),
    };
    let f = &func.sig.ident;
    let vis = &func.vis;
    let cfgs: Vec<_> = func.attrs.iter().filter(|a| attrs::is_cfg(a)).collect();
    let wrapper_attrs = func.attrs.iter().map(attrs::on_wrapper);
    let (key, value, param) = (types.key, types.value, types.param);
    let cache_fn = format_ident!("__cached_{}", f);
    let uncached = format_ident!("{}_uncached", f);
    let invalidate = format_ident!("{}_invalidate", f);
    let handle = format_ident!("{}_cache", f);
    let [keys, cache, e, key_arg] = mixed(["__keys", "__cache", "__e", "key"]);
    let builder = builder(args, &krate, f, is_option(types.value));
    let output = &func.sig.output;
    let asyncness = &func.sig.asyncness;
    let call = load_call(func, types.fallible, &cache_fn, &uncached);
    let invalidate_call = match func.sig.asyncness {
        Some(_) => quote!(#cache_fn().invalidate_async(#key_arg).await),
        None => quote!(#cache_fn().invalidate(#key_arg)),
    };
    let mut body = func.clone();
    body.sig.ident = uncached.clone();
    body.attrs.retain(attrs::on_body);
    let doc_uncached = format!(" Runs the body of `{f}` without the cache.");
    let doc_invalidate = format!(
        " Removes the cached value of one key of `{f}`; a load of it in flight keeps its \
         result out of the cache."
    );
    let doc_handle = format!(" The cache of `{f}`: its name, backend and stats.");
    let name = func.sig.ident.to_string();
    quote! {
        #(#wrapper_attrs)*
        #[allow(deprecated)]
        #vis #asyncness fn #f(#param: &[#key]) #output {
            let #keys = #param.iter().cloned();
            #call
        }

        #[doc = #doc_uncached]
        #body

        #(#cfgs)*
        #[doc(hidden)]
        fn #cache_fn() -> &'static #krate::Cache<#key, #value> {
            static CACHE: ::std::sync::LazyLock<#krate::Cache<#key, #value>> =
                ::std::sync::LazyLock::new(|| {
                    match #builder.build() {
                        ::core::result::Result::Ok(#cache) => #cache,
                        // The attribute was checked at compile time, with the builder's rules.
                        ::core::result::Result::Err(#e) => {
                            ::core::panic!("`#[cached(batch)]` on `{}`: {}", #name, #e)
                        }
                    }
                });
            &CACHE
        }

        #(#cfgs)*
        #[doc = #doc_invalidate]
        #[allow(dead_code)]
        #vis #asyncness fn #invalidate(#key_arg: &#key) -> #krate::Invalidation {
            #invalidate_call
        }

        #(#cfgs)*
        #[doc = #doc_handle]
        #[allow(dead_code)]
        #vis fn #handle() -> &'static #krate::CacheHandle {
            #cache_fn().handle()
        }
    }
}

/// The call of the cache's batch: the keys (`__keys`) and the body for those that missed.
fn load_call(
    func: &ItemFn,
    fallible: bool,
    cache_fn: &syn::Ident,
    uncached: &syn::Ident,
) -> TokenStream {
    let [missing, keys] = mixed(["__missing", "__keys"]);
    match (func.sig.asyncness.is_some(), fallible) {
        (false, false) => quote! {
            #cache_fn().get_many_or_load(#keys, |#missing| #uncached(#missing))
        },
        (false, true) => quote! {
            #cache_fn().try_get_many_or_load(#keys, |#missing| #uncached(#missing))
        },
        (true, false) => quote! {
            #cache_fn()
                .get_many_or_load_async(#keys, |#missing| async move { #uncached(&#missing).await })
                .await
        },
        (true, true) => quote! {
            #cache_fn()
                .try_get_many_or_load_async(#keys, |#missing| async move { #uncached(&#missing).await })
                .await
        },
    }
}

/// `Cache::builder(name)` with a method per argument given.
fn builder(args: &Args, krate: &TokenStream, f: &syn::Ident, option: bool) -> TokenStream {
    let ms = |v: u64| quote!(::core::time::Duration::from_millis(#v));
    let name = match &args.name {
        Some(name) => quote!(#name),
        None => {
            let f = f.to_string();
            quote!(::core::concat!(::core::module_path!(), "::", #f))
        }
    };
    let mut out = quote!(#krate::Cache::builder(#name));
    // `None` is a null with the attribute's default `null_ttl`: `min(ttl, 300 s)`.
    let null_ttl = match (args.null_ttl, option) {
        (Some(n), _) => Some(n),
        (None, true) => Some(At {
            value: args
                .ttl
                .map_or(DEFAULT_NULL_TTL_MS, |t| t.value.min(DEFAULT_NULL_TTL_MS)),
            span: proc_macro2::Span::call_site(),
        }),
        (None, false) => None,
    };
    let durations = [
        ("ttl", args.ttl),
        ("null_ttl", null_ttl),
        ("lock_timeout", args.lock_timeout),
        ("stale", args.stale),
        ("stale_if_error", args.stale_if_error),
        ("load_timeout", args.load_timeout),
        ("l1_ttl", args.l1_ttl),
    ];
    for (method, value) in durations {
        if let Some(v) = value {
            let (method, d) = (format_ident!("{method}", span = v.span), ms(v.value));
            out.extend(quote_spanned!(v.span=> .#method(#d)));
        }
    }
    if let Some(j) = args.jitter {
        let v = Literal::f64_suffixed(j.value);
        out.extend(quote!(.jitter(#v)));
    }
    if let Some(b) = args.early_refresh {
        let v = Literal::f64_suffixed(b.value);
        out.extend(quote!(.early_refresh(#v)));
    }
    if let Some(m) = args.max_entries {
        let v = Literal::u64_suffixed(m.value);
        out.extend(quote! {
            .max_entries(::core::convert::TryFrom::try_from(#v).unwrap_or(usize::MAX))
        });
    }
    if let Some(b) = args.max_bytes {
        let v = Literal::u64_suffixed(b.value);
        out.extend(quote_spanned!(b.span=> .max_bytes(#v)));
    }
    out.extend(where_it_lives(args, krate));
    if let Some(path) = &args.ttl_fn {
        out.extend(quote_spanned!(path.span()=> .ttl_fn(#path)));
    }
    out
}

/// The builder's `backend`, `lock` and `codec`, as the attribute's.
fn where_it_lives(args: &Args, krate: &TokenStream) -> TokenStream {
    let mut out = TokenStream::new();
    if let Some(b) = args.backend {
        let variant = match b.value {
            Backend::Memory => Some(quote!(Memory)),
            Backend::Redis if REDIS_BUILD => Some(quote!(Redis)),
            Backend::Tiered if REDIS_BUILD => Some(quote!(Tiered)),
            Backend::Redis | Backend::Tiered => None,
        };
        match variant {
            Some(v) => out.extend(quote!(.backend(#krate::Backend::#v))),
            None => {
                let k = respan(krate, b.span);
                let what = "a Redis backend";
                out.extend(quote_spanned!(b.span=> .backend({
                    #k::__private::require_redis!(#what);
                    #krate::Backend::Memory
                })));
            }
        }
    }
    // Without a backend argument the backend is the build's: in process without `redis`.
    let memory = args
        .backend
        .map_or(!REDIS_BUILD, |b| b.value == Backend::Memory);
    if let Some(l) = args.lock {
        let v = match l.value {
            LockKind::None => quote!(None),
            LockKind::Local => quote!(Local),
            LockKind::Distributed => quote!(Distributed),
        };
        let guard = (l.value == LockKind::Distributed && !REDIS_BUILD).then(|| {
            let k = respan(krate, l.span);
            let what = "lock = \"distributed\"";
            quote_spanned!(l.span=> #k::__private::require_redis!(#what);)
        });
        out.extend(quote!(.lock({ #guard #krate::Lock::#v })));
    }
    // A codec concerns Redis; in process it is left out (as for a function).
    if let Some(c) = args.codec.filter(|_| !memory) {
        let v = match c.value {
            CodecKind::Json => quote!(Json),
            CodecKind::MessagePack => quote!(MessagePack),
        };
        out.extend(quote!(.codec(#krate::Codec::#v)));
    }
    if let Some(c) = args.compress.filter(|_| !memory) {
        let v = match c.value {
            CompressKind::Zstd => quote!(Zstd),
            CompressKind::Lz4 => quote!(Lz4),
            CompressKind::None => quote!(None),
        };
        out.extend(quote!(.compress(#krate::Compression::#v)));
    }
    if let Some(m) = args.compress_min.filter(|_| !memory) {
        let v = Literal::u64_suffixed(m.value);
        out.extend(quote!(.compress_min(#v)));
    }
    out
}
