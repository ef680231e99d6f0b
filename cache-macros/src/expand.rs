//! Code generation: the cached wrapper and its companions, one small function per item.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::{Attribute, ItemFn, Visibility};

use crate::args::{Args, Backend, LockKind};
use crate::errors::Errors;
use crate::key::{Key, respan};
use crate::sig::{Param, Sig};

/// The build has the runtime's `redis` feature: Redis is the default backend.
const REDIS_BUILD: bool = cfg!(feature = "redis");

const DEFAULT_NULL_TTL_MS: u64 = 300_000;
const DEFAULT_JITTER: f64 = 0.1;
const DEFAULT_MAX_ENTRIES: u64 = 10_000;
const DEFAULT_LOCK_TIMEOUT_MS: u64 = 5_000;

/// Expands `#[cached(attr)] item`. On any error, emits every error beside the unchanged item.
pub(crate) fn cached(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = Args::parse(attr, &mut errors);
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(e) => {
            errors.at(
                e.span(),
                "`#[cached]` goes on a function: `#[cached] fn f(..) -> T`",
            );
            return with_errors(errors, item);
        }
    };
    let sig = Sig::read(&func.sig, &mut errors);
    let key = Key::read(args.key.as_ref(), &sig, &mut errors);
    if let (Some(b), Some(l)) = (args.backend, args.lock)
        && b.value == Backend::Memory
        && l.value == LockKind::Distributed
    {
        errors.at(
            l.span,
            "`lock = \"distributed\"` coordinates processes through Redis, but this function \
             uses `backend = \"memory\"`: write `lock = \"local\"`, or `backend = \"redis\"`",
        );
    }
    if REDIS_BUILD
        && let Some(b) = args.backend
        && b.value == Backend::Tiered
    {
        errors.at(
            b.span,
            "`backend = \"tiered\"` is not available yet: write `backend = \"redis\"` or \
             `backend = \"memory\"`",
        );
    }
    if !errors.is_empty() {
        return with_errors(errors, item);
    }
    Gen::new(&args, &func, &sig, &key).all()
}

fn with_errors(errors: Errors, item: TokenStream) -> TokenStream {
    let errors = errors.into_error().map(|e| e.to_compile_error());
    quote!(#errors #item)
}

/// Everything the generators share.
struct Gen<'a> {
    args: &'a Args,
    func: &'a ItemFn,
    sig: &'a Sig,
    key: &'a Key<'a>,
    krate: TokenStream,
    /// `#[cfg]` and `#[cfg_attr]`: forwarded to every item.
    cfgs: Vec<&'a Attribute>,
    /// The function's entries live in Redis.
    redis: bool,
}

fn is_cfg(attr: &Attribute) -> bool {
    attr.path().is_ident("cfg") || attr.path().is_ident("cfg_attr")
}

impl<'a> Gen<'a> {
    fn new(args: &'a Args, func: &'a ItemFn, sig: &'a Sig, key: &'a Key<'a>) -> Self {
        let krate = match &args.krate {
            Some(path) => path.to_token_stream(),
            None => quote!(::cache_runtime),
        };
        let cfgs = func.attrs.iter().filter(|a| is_cfg(a)).collect();
        let redis = match args.backend.map(|b| b.value) {
            Some(Backend::Memory) => false,
            Some(Backend::Redis | Backend::Tiered) | None => REDIS_BUILD,
        };
        Gen {
            args,
            func,
            sig,
            key,
            krate,
            cfgs,
            redis,
        }
    }

    fn all(&self) -> TokenStream {
        let mut out = self.backend_checks();
        out.extend(self.store());
        out.extend(self.wrapper());
        out.extend(self.uncached());
        out.extend(self.invalidate());
        out.extend(self.refresh());
        out.extend(self.cache_handle());
        out
    }

    fn ident(&self, suffix: &str) -> syn::Ident {
        let f = &self.func.sig.ident;
        format_ident!("{}{}", f, suffix, span = f.span())
    }

    fn vis(&self) -> &Visibility {
        &self.func.vis
    }

    /// `f_uncached` or `Self::f_uncached` (and likewise for the other companions).
    fn path_to(&self, ident: &syn::Ident) -> TokenStream {
        match self.sig.receiver {
            Some(_) => quote!(Self::#ident),
            None => quote!(#ident),
        }
    }

    /// `backend = "redis"` and `lock = "distributed"` need the runtime's `redis` feature.
    fn backend_checks(&self) -> TokenStream {
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
    fn policy(&self) -> TokenStream {
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
    fn name(&self) -> TokenStream {
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
    fn store(&self) -> TokenStream {
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
    fn redis_impl(&self, function: &syn::Ident) -> TokenStream {
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

    fn store_ident(&self) -> syn::Ident {
        let f = &self.func.sig.ident;
        format_ident!("__cached_{}", f, span = f.span())
    }

    /// `f_uncached(a, b)` or `Self::f_uncached(self, a, b)`: the call that runs the body.
    fn call_uncached(&self) -> TokenStream {
        let path = self.path_to(&self.ident("_uncached"));
        let receiver = self.sig.receiver.as_ref().map(|r| {
            let s = &r.self_token;
            quote!(#s,)
        });
        let args = self.sig.params.iter().map(|p| &p.ident);
        quote!(#path(#receiver #(#args),*))
    }

    /// The signature of a generated function: `f`'s with another name, parameters and output.
    fn signature(
        &self,
        ident: &syn::Ident,
        receiver: Option<&syn::Receiver>,
        params: &[&Param],
        output: Option<&syn::Type>,
    ) -> TokenStream {
        let sig = &self.func.sig;
        let (asyncness, safety, generics) = (&sig.asyncness, &sig.safety, &sig.generics);
        let where_clause = &generics.where_clause;
        let receiver = receiver.map(|r| quote!(#r,));
        let params = params.iter().map(|p| {
            let (ident, ty) = (&p.ident, &p.ty);
            quote!(#ident: #ty)
        });
        let output = output.map(|ty| quote!(-> #ty));
        quote! {
            #asyncness #safety fn #ident #generics (#receiver #(#params),*) #output #where_clause
        }
    }

    fn all_params(&self) -> Vec<&Param> {
        self.sig.params.iter().collect()
    }

    /// ```text
    /// fn f(a: A, b: &B) -> R {
    ///     let cache = __cached_f();
    ///     let key = {
    ///         let lookup = Lookup((&a, &*b));
    ///         if let Some(hit) = cache.get(&lookup) { return hit; }
    ///         cache.key(&lookup)
    ///     };
    ///     cache.load(key, move || f_uncached(a, b))  // async: load_async(key, fut).await
    /// }
    /// ```
    fn wrapper(&self) -> TokenStream {
        let attrs = self.func.attrs.iter().map(wrapper_attr);
        let vis = self.vis();
        let sig = self.signature(
            &self.func.sig.ident,
            self.sig.receiver.as_ref(),
            &self.all_params(),
            Some(&self.sig.output),
        );
        let store = self.path_to(&self.store_ident());
        let code = self.key.code(&self.krate);
        let (prelude, lookup_expr) = (&code.prelude, &code.lookup);
        let call = self.call_uncached();
        let [cache, hit, key, lookup] = mixed(["__cache", "__hit", "__key", "__lookup"]);
        let is_async = self.func.sig.asyncness.is_some();
        // On Redis a hit is a network read: the key is built first, and `call` does the rest.
        let (hit_check, load) = match (self.redis, is_async) {
            (false, true) => (true, quote!(#cache.load_async(#key, #call).await)),
            (false, false) => (true, quote!(#cache.load(#key, move || #call))),
            (true, true) => (false, quote!(#cache.call_async(#key, #call).await)),
            (true, false) => (false, quote!(#cache.call(#key, move || #call))),
        };
        let hit_check = hit_check.then(|| {
            quote! {
                if let ::core::option::Option::Some(#hit) = #cache.get(&#lookup) {
                    return #hit;
                }
            }
        });
        quote! {
            #(#attrs)*
            #vis #sig {
                let #cache = #store();
                let #key = {
                    #prelude
                    let #lookup = #lookup_expr;
                    #hit_check
                    #cache.key(&#lookup)
                };
                #load
            }
        }
    }

    /// The shape marker, e.g. `::cache_runtime::__private::Opt`, spanned at the return type.
    fn shape(&self) -> TokenStream {
        let out = self.sig.output_span;
        let krate = respan(&self.krate, out);
        let marker = syn::Ident::new(self.sig.shape.marker(), out);
        quote_spanned!(out=> #krate::__private::#marker)
    }

    /// The body as written, under `f_uncached`, with the function's attributes but its docs.
    fn uncached(&self) -> TokenStream {
        let mut func = self.func.clone();
        func.sig.ident = self.ident("_uncached");
        func.attrs.retain(|a| !a.path().is_ident("doc"));
        let f = &self.func.sig.ident;
        let doc = format!(" Runs the body of `{f}` without the cache: no lookup, no store.");
        quote! {
            #[doc = #doc]
            #func
        }
    }

    /// ```text
    /// fn f_invalidate(a: A) { __cached_f().invalidate(&Lookup((&a,))) }
    /// ```
    fn invalidate(&self) -> TokenStream {
        let ident = self.ident("_invalidate");
        let receiver = if self.key.uses_self {
            self.shared_receiver()
        } else {
            None
        };
        let params = self.key.params(self.sig);
        let sig = self.signature(&ident, receiver.as_ref(), &params, None);
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
             key in flight keeps its result out of the cache."
        );
        quote! {
            #(#cfgs)*
            #[doc = #doc]
            #[allow(dead_code)]
            #vis #sig {
                #prelude
                #invalidate;
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
    fn refresh(&self) -> TokenStream {
        let ident = self.ident("_refresh");
        let sig = self.signature(
            &ident,
            self.sig.receiver.as_ref(),
            &self.all_params(),
            Some(&self.sig.output),
        );
        let store = self.path_to(&self.store_ident());
        let code = self.key.code(&self.krate);
        let (prelude, lookup) = (&code.prelude, &code.lookup);
        let call = self.call_uncached();
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
            #[allow(dead_code)]
            #vis #sig {
                let #key = {
                    #prelude
                    #store().key(&#lookup)
                };
                #refresh
            }
        }
    }

    /// ```text
    /// fn f_cache() -> &'static CacheHandle { /* a static handle to __cached_f() */ }
    /// ```
    fn cache_handle(&self) -> TokenStream {
        let krate = &self.krate;
        let ident = self.ident("_cache");
        let store = self.path_to(&self.store_ident());
        let (vis, cfgs) = (self.vis(), &self.cfgs);
        let handle = syn::Ident::new("HANDLE", Span::mixed_site());
        let f = &self.func.sig.ident;
        let doc = format!(" The cache of `{f}`: its name, stats, and `clear()`.");
        quote! {
            #(#cfgs)*
            #[doc = #doc]
            #[allow(dead_code)]
            #vis fn #ident() -> &'static #krate::__private::CacheHandle {
                static #handle: #krate::__private::OnceLock<#krate::__private::CacheHandle> =
                    #krate::__private::OnceLock::new();
                #handle.get_or_init(|| #store().handle())
            }
        }
    }
}

/// Local names the generated code introduces, invisible to the user's code.
fn mixed<const N: usize>(names: [&str; N]) -> [syn::Ident; N] {
    names.map(|n| syn::Ident::new(n, Span::mixed_site()))
}

/// The wrapper keeps the function's attributes, with `#[expect(..)]` turned into
/// `#[allow(..)]` (the expectation is met by the body, under `f_uncached`).
fn wrapper_attr(attr: &Attribute) -> TokenStream {
    if attr.path().is_ident("expect")
        && let syn::Meta::List(list) = &attr.meta
    {
        let tokens = &list.tokens;
        return quote!(#[allow(#tokens)]);
    }
    attr.to_token_stream()
}
