//! Code generation: the cached wrapper and its companions, one small function per item.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote};
use syn::{Attribute, ItemFn, Visibility};

use crate::args::{Args, Backend, LockKind};
use crate::attrs;
use crate::errors::Errors;
use crate::key::Key;
use crate::sig::{Param, Sig};
use crate::tags::Tags;

mod impl_block;
mod signature;
mod store;

use store::REDIS_BUILD;

/// Expands `#[cached(attr)] item`: a function, or an `impl` block whose methods carry
/// `#[cached]` (see `impl_block.rs`). On any error, emits every error beside the unchanged item.
pub(crate) fn cached(attr: TokenStream, item: TokenStream) -> TokenStream {
    match syn::parse2::<syn::Item>(item.clone()) {
        Ok(syn::Item::Fn(func)) => match expand_fn(attr, &func, Place::Alone) {
            Ok(expansion) => expansion.all(),
            Err(errors) => with_errors(errors, item),
        },
        Ok(syn::Item::Impl(block)) => impl_block::cached_impl(attr, block),
        Ok(other) => {
            let mut errors = Errors::default();
            errors.at(
                syn::spanned::Spanned::span(&other),
                "`#[cached]` goes on a function, `#[cached] fn f(..) -> T`, or on an `impl` \
                 block whose methods carry `#[cached]`",
            );
            with_errors(errors, item)
        }
        Err(e) => {
            let mut errors = Errors::default();
            errors.push(e);
            with_errors(errors, item)
        }
    }
}

/// Where a cached function is written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// `#[cached]` on the function itself: a free function, or a method (with a receiver).
    Alone,
    /// A method of an `impl` block that carries `#[cached]`: `Self` is known even without a
    /// receiver, and the companions go to an inherent `impl` of their own.
    ImplBlock {
        /// The block implements a trait: the companions are `pub(crate)`.
        of_trait: bool,
    },
}

/// The generated items of one cached function: the function itself, and its companions (the
/// body, the cache, `f_invalidate`, `f_refresh`, `f_cache`).
pub(crate) struct Expansion {
    pub(crate) function: TokenStream,
    pub(crate) companions: TokenStream,
}

impl Expansion {
    fn all(self) -> TokenStream {
        let Expansion {
            mut function,
            companions,
        } = self;
        function.extend(companions);
        function
    }
}

/// Reads and checks one function and generates its items, or returns every error found.
pub(crate) fn expand_fn(
    attr: TokenStream,
    func: &ItemFn,
    place: Place,
) -> Result<Expansion, Errors> {
    let mut errors = Errors::default();
    let args = Args::parse(attr, &mut errors);
    let sig = Sig::read(&func.sig, &mut errors);
    impl_block::refuse_async_trait(&func.sig, place, &mut errors);
    let key = Key::read(args.key.as_ref(), &sig, &mut errors);
    let tags = Tags::read(args.tags.as_deref(), &sig, &mut errors);
    args.check_phases(&mut errors);
    args.check_tiers(&mut errors);
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
    if let (Some(b), Some(c)) = (args.backend, args.codec)
        && b.value == Backend::Memory
    {
        errors.at(
            c.span,
            "`codec` chooses how values are written to Redis, but this function uses \
             `backend = \"memory\"`, which keeps values as they are: remove `codec`",
        );
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Gen::new(&args, func, &sig, &key, &tags, place).expansion())
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
    tags: &'a Tags,
    krate: TokenStream,
    /// `#[cfg]` and `#[cfg_attr]`: forwarded to every item.
    cfgs: Vec<&'a Attribute>,
    /// The function's entries live in Redis.
    redis: bool,
    /// In front of Redis, an in-process L1 (`backend = "tiered"`).
    tiered: bool,
    place: Place,
}

impl<'a> Gen<'a> {
    fn new(
        args: &'a Args,
        func: &'a ItemFn,
        sig: &'a Sig,
        key: &'a Key<'a>,
        tags: &'a Tags,
        place: Place,
    ) -> Self {
        let krate = match &args.krate {
            Some(path) => path.to_token_stream(),
            None => quote!(::cache_runtime),
        };
        let cfgs = func.attrs.iter().filter(|a| attrs::is_cfg(a)).collect();
        let redis = match args.backend.map(|b| b.value) {
            Some(Backend::Memory) => false,
            Some(Backend::Redis | Backend::Tiered) | None => REDIS_BUILD,
        };
        let tiered = REDIS_BUILD && args.backend.map(|b| b.value) == Some(Backend::Tiered);
        Gen {
            args,
            func,
            sig,
            key,
            tags,
            krate,
            cfgs,
            redis,
            tiered,
            place,
        }
    }

    fn expansion(&self) -> Expansion {
        let mut companions = self.backend_checks();
        companions.extend(self.store());
        companions.extend(self.uncached());
        companions.extend(self.invalidate());
        companions.extend(self.refresh());
        companions.extend(self.entry());
        companions.extend(self.warm());
        companions.extend(self.cache_handle());
        Expansion {
            function: self.wrapper(),
            companions,
        }
    }

    /// Whether `Self` is there to name: in a method, or anywhere in a `#[cached]` impl block.
    pub(super) fn has_self(&self) -> bool {
        self.sig.receiver.is_some() || self.place != Place::Alone
    }

    fn ident(&self, suffix: &str) -> syn::Ident {
        let f = &self.func.sig.ident;
        format_ident!("{}{}", f, suffix, span = f.span())
    }

    /// The companions' visibility: the function's, or `pub(crate)` for the methods of a trait
    /// impl (which have none, and whose companions live in an inherent impl).
    fn vis(&self) -> Visibility {
        match self.place {
            Place::ImplBlock { of_trait: true } => syn::parse_quote!(pub(crate)),
            _ => self.func.vis.clone(),
        }
    }

    /// `f_uncached` or `Self::f_uncached` (and likewise for the other companions).
    fn path_to(&self, ident: &syn::Ident) -> TokenStream {
        match self.has_self() {
            true => quote!(Self::#ident),
            false => quote!(#ident),
        }
    }

    /// `f_uncached(a, b)` or `Self::f_uncached(self, a, b)`: the call that runs the body.
    fn call_uncached(&self) -> TokenStream {
        let path = self.path_to(&self.ident("_uncached"));
        let receiver = self.sig.receiver.as_ref().map(|r| {
            let s = &r.self_token;
            quote!(#s,)
        });
        let args = self.sig.params.iter().map(|p| &p.ident);
        match self.func.sig.safety {
            // The caller of the cached `unsafe fn` upholds the body's contract.
            syn::Safety::Unsafe(_) => quote!(unsafe { #path(#receiver #(#args),*) }),
            syn::Safety::Safe(_) | syn::Safety::Default => quote!(#path(#receiver #(#args),*)),
        }
    }

    /// The signature of a generated function: `f`'s with another name, parameters and output.
    /// Those with `f`'s output (`f` and `f_refresh`) keep its ABI too.
    fn signature(
        &self,
        ident: &syn::Ident,
        receiver: Option<&syn::Receiver>,
        params: &[&Param],
        output: Output<'_>,
    ) -> TokenStream {
        let sig = &self.func.sig;
        let (asyncness, safety, generics) = (&sig.asyncness, &sig.safety, &sig.generics);
        let abi = matches!(output, Output::Body(_))
            .then_some(sig.abi.as_ref())
            .flatten();
        let where_clause = &generics.where_clause;
        let receiver = receiver.map(|r| quote!(#r,));
        let params = params.iter().map(|p| {
            let (ident, ty) = (&p.ident, &p.ty);
            quote!(#ident: #ty)
        });
        let output = match output {
            Output::Body(ty) => quote!(-> #ty),
            Output::Own(ty) => quote!(-> #ty),
        };
        quote! {
            #asyncness #safety #abi fn #ident #generics (#receiver #(#params),*) #output #where_clause
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
    ///         cache.key(&lookup, Tags::new([format!("product:{}", &id)]))  // or Tags::NONE
    ///     };
    ///     cache.load(key, move || f_uncached(a, b))  // async: load_async(key, fut).await
    /// }
    /// ```
    fn wrapper(&self) -> TokenStream {
        let attrs = self.func.attrs.iter().map(attrs::on_wrapper);
        let vis = &self.func.vis;
        let sig = self.signature(
            &self.func.sig.ident,
            self.sig.receiver.as_ref(),
            &self.all_params(),
            Output::Body(&self.sig.output),
        );
        let store = self.path_to(&self.store_ident());
        let [cache] = mixed(["__cache"]);
        // One call shape for every backend: `get` is the in-process hit path (a backend whose
        // entries live elsewhere answers `None` at once and reads them in `load`).
        let cache_aside = self.cache_aside(&cache, "get", |hit| quote!(#hit), "load");
        quote! {
            #(#attrs)*
            // The body (in `f_uncached`) carries `f`'s own `#[deprecated]`, if any.
            #[allow(deprecated)]
            #vis #sig {
                let #cache = #store();
                #cache_aside
            }
        }
    }

    /// The steps `f`, `f_entry` and `f_warm` share, on the engine `cache`: the key, or a
    /// return at once with `on_hit(hit)` when `cache.<get>(&lookup)` finds the entry; then
    /// `cache.<load>(key, body)` (`<load>_async(key, future).await` for an async `f`).
    ///
    /// ```text
    /// let key = {
    ///     let lookup = Lookup((&a, &*b));
    ///     if let Some(hit) = cache.get(&lookup) { return hit; }
    ///     cache.key(&lookup, Tags::new([format!("product:{}", &id)]))  // or Tags::NONE
    /// };
    /// cache.load(key, move || f_uncached(a, b))
    /// ```
    fn cache_aside(
        &self,
        cache: &syn::Ident,
        get: &str,
        on_hit: impl FnOnce(&syn::Ident) -> TokenStream,
        load: &str,
    ) -> TokenStream {
        let code = self.key.code(&self.krate);
        let (prelude, lookup_expr) = (&code.prelude, &code.lookup);
        let tags = self.tags.code(&self.krate);
        let [hit, key, lookup] = mixed(["__hit", "__key", "__lookup"]);
        let get = format_ident!("{get}");
        let on_hit = on_hit(&hit);
        let call = self.call_uncached();
        let load = match self.func.sig.asyncness {
            Some(_) => {
                let load = format_ident!("{load}_async");
                let body = self.movable_body(call);
                quote!(#cache.#load(#key, #body).await)
            }
            None => {
                let load = format_ident!("{load}");
                let body = self.movable_body(quote!(move || #call));
                quote!(#cache.#load(#key, #body))
            }
        };
        quote! {
            let #key = {
                #prelude
                let #lookup = #lookup_expr;
                if let ::core::option::Option::Some(#hit) = #cache.#get(&#lookup) {
                    return #on_hit;
                }
                #cache.key(&#lookup, #tags)
            };
            #load
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
    fn entry(&self) -> TokenStream {
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
        let cache_aside = self.cache_aside(&cache, "get_entry", |hit| quote!(#hit), "load_entry");
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

    /// For a free function with parameters, `f_warm`: `f_entry`'s path for many argument
    /// tuples at once (one parameter: the argument itself), on the runtime's workers.
    ///
    /// ```text
    /// fn f_warm<'w, I>(items: I) -> Warmed
    /// where I: IntoIterator<Item = (A, &'w B)>, I::IntoIter: Send, I::Item: Send {
    ///     let cache = __cached_f();
    ///     warm(cache.name(), items, |(a, b)| {
    ///         let key = { ..; if cache.get_entry(&lookup).is_some() { return Warm::Skipped; } .. };
    ///         cache.warm_load(key, move || f_uncached(a, b))
    ///     })
    /// }
    /// ```
    ///
    /// The `Send` bounds name `I`, so a function whose arguments are not `Send` still compiles
    /// (its `f_warm` cannot be called). Elided lifetimes in the item type become `'w`.
    fn warm(&self) -> TokenStream {
        let unsafe_fn = matches!(self.func.sig.safety, syn::Safety::Unsafe(_));
        if self.has_self() || self.sig.params.is_empty() || unsafe_fn || !self.warmable() {
            return TokenStream::new();
        }
        let krate = &self.krate;
        let ident = self.ident("_warm");
        let lifetime = syn::Lifetime::new("'__cached_warm", Span::mixed_site());
        let idents: Vec<_> = self.sig.params.iter().map(|p| &p.ident).collect();
        let types: Vec<_> = self
            .sig
            .params
            .iter()
            .map(|p| named_lifetimes(p.ty.to_token_stream(), &lifetime))
            .collect();
        let (item, pattern) = match (&types[..], &idents[..]) {
            ([ty], [ident]) => (quote!(#ty), quote!(#ident)),
            _ => (quote!((#(#types,)*)), quote!((#(#idents,)*))),
        };
        let store = self.path_to(&self.store_ident());
        let [cache, items, iter] = mixed(["__cache", "__items", "__I"]);
        let skipped = quote!(#krate::__private::Warm::Skipped);
        let cache_aside = self.cache_aside(
            &cache,
            "get_entry",
            |hit| quote!({ let _ = #hit; #skipped }),
            "warm_load",
        );
        // Each argument as the type written, so that a mistake in the key is reported once, in
        // `f`'s terms, not again with the item's named lifetimes.
        let written = self.sig.params.iter().map(|p| {
            let (ident, ty) = (&p.ident, &p.ty);
            quote!(#[allow(clippy::redundant_locals)] let #ident: #ty = #ident;)
        });
        let one = quote! {
            #(#written)*
            #cache_aside
        };
        let (asyncness, run, bounds) = match self.func.sig.asyncness {
            Some(_) => (
                quote!(async),
                quote! {
                    #krate::__private::warm_async(#cache.handle().name(), #items, move |#pattern| {
                        async move { #one }
                    }).await
                },
                quote!(),
            ),
            None => (
                quote!(),
                quote! {
                    #krate::__private::warm(#cache.handle().name(), #items, |#pattern| { #one })
                },
                quote! {
                    <#iter as ::core::iter::IntoIterator>::IntoIter: ::core::marker::Send,
                    <#iter as ::core::iter::IntoIterator>::Item: ::core::marker::Send,
                },
            ),
        };
        // `f`'s own lifetime parameters and bounds (a generic `f` is refused before this).
        let generics = &self.func.sig.generics;
        let own = generics.params.iter();
        let own_bounds = generics.where_clause.as_ref().map(|w| {
            let predicates = w.predicates.iter();
            quote!(#(#predicates,)*)
        });
        let (vis, cfgs) = (self.vis(), &self.cfgs);
        let f = &self.func.sig.ident;
        let doc = format!(
            " Fills the cache of `{f}` for every item (the arguments of one call: a tuple for \
             several parameters), a few at once (`cache_runtime::set_warm_concurrency`, default \
             8). Keys already fresh, here or in Redis, are skipped; the others load; returns how \
             many loaded, were skipped and failed."
        );
        quote! {
            #(#cfgs)*
            #[doc = #doc]
            #[allow(dead_code, deprecated)]
            #vis #asyncness fn #ident<#(#own,)* #lifetime, #iter>(#items: #iter) -> #krate::Warmed
            where
                #iter: ::core::iter::IntoIterator<Item = #item>,
                #bounds
                #own_bounds
            {
                let #cache = #store();
                #run
            }
        }
    }

    /// Whether every parameter type can be named in `f_warm`'s where clause once its elided
    /// reference lifetimes are named: not with a function type, a trait object or a type
    /// known to hide a lifetime (`Cow<str>`, `Ref<T>`, written without one); `f_warm` is left
    /// out for those.
    fn warmable(&self) -> bool {
        const HIDING: [&str; 5] = ["Cow", "Ref", "RefMut", "Arguments", "Formatter"];
        fn ok(tokens: TokenStream) -> bool {
            let mut tokens = tokens.into_iter().peekable();
            while let Some(tt) = tokens.next() {
                match tt {
                    TokenTree::Group(g) if !ok(g.stream()) => return false,
                    TokenTree::Ident(i) => {
                        let name = i.to_string();
                        if ["fn", "Fn", "FnMut", "FnOnce", "dyn", "for", "impl"]
                            .contains(&name.as_str())
                        {
                            return false;
                        }
                        if HIDING.contains(&name.as_str()) {
                            // `Cow<'a, str>` names its lifetime: `<` then `'`.
                            let named = matches!(tokens.peek(), Some(TokenTree::Punct(p)) if p.as_char() == '<')
                                && {
                                    tokens.next();
                                    matches!(tokens.peek(), Some(TokenTree::Punct(p)) if p.as_char() == '\'')
                                };
                            if !named {
                                return false;
                            }
                        }
                    }
                    _ => {}
                }
            }
            true
        }
        self.sig.params.iter().all(|p| ok(p.ty.to_token_stream()))
    }

    /// With freshness phases, or async (a load goes on when its caller is cancelled), and
    /// parameters that are all owned: the body wrapped so that the engine may run it in the
    /// background if the type checker finds it `Send` (see `cache_runtime`'s `body.rs`).
    /// Otherwise the body as it is, run by its caller.
    fn movable_body(&self, body: TokenStream) -> TokenStream {
        let args = self.args;
        let phases =
            args.stale.is_some() || args.load_timeout.is_some() || args.early_refresh.is_some();
        let moves = phases || self.func.sig.asyncness.is_some();
        if !moves || self.place != Place::Alone || !self.sig.owns_its_arguments() {
            return body;
        }
        if self.func.sig.asyncness.is_some() && mentions(&self.func.block, &self.func.sig.ident) {
            // A body that awaits its own function: whether its future is `Send` depends on
            // itself, which the type checker cannot decide (an error, not a fallback).
            return body;
        }
        let krate = &self.krate;
        let [b] = mixed(["__body"]);
        let probe = match self.func.sig.asyncness {
            Some(_) => quote!(#krate::__private::Detach::future(&#b)),
            None => {
                let types = self.sig.params.iter().map(|p| &p.ty);
                let output = &self.sig.output;
                quote! {
                    #krate::__private::Detach::<(
                        #krate::__private::DetachFn, (#(#types,)*), #output
                    )>::sync()
                }
            }
        };
        quote! {{
            use #krate::__private::{PickInPlace as _, PickOwned as _};
            let #b = #body;
            (&&#probe).kind().wrap(#b)
        }}
    }

    /// The body as written, under `f_uncached`, with the function's attributes but its docs.
    fn uncached(&self) -> TokenStream {
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
    fn invalidate(&self) -> TokenStream {
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
    fn refresh(&self) -> TokenStream {
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

    /// ```text
    /// fn f_cache() -> &'static CacheHandle { __cached_f().handle() }
    /// ```
    fn cache_handle(&self) -> TokenStream {
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

/// The output of a generated function's signature.
enum Output<'a> {
    /// `f`'s own (its ABI is kept too).
    Body(&'a syn::Type),
    /// A type of the companion's own (`-> Invalidation`), under Rust's ABI.
    Own(TokenStream),
}

/// Local names the generated code introduces, invisible to the user's code.
fn mixed<const N: usize>(names: [&str; N]) -> [syn::Ident; N] {
    names.map(|n| syn::Ident::new(n, Span::mixed_site()))
}

/// `tokens` (a type) with every elided reference lifetime (`&T`, `'_`) named `lifetime`.
fn named_lifetimes(tokens: TokenStream, lifetime: &syn::Lifetime) -> TokenStream {
    let mut out = TokenStream::new();
    let mut tokens = tokens.into_iter().peekable();
    while let Some(tt) = tokens.next() {
        match tt {
            TokenTree::Group(g) => {
                let mut inner =
                    proc_macro2::Group::new(g.delimiter(), named_lifetimes(g.stream(), lifetime));
                inner.set_span(g.span());
                out.extend([TokenTree::Group(inner)]);
            }
            TokenTree::Punct(p) if p.as_char() == '&' => {
                let named =
                    matches!(tokens.peek(), Some(TokenTree::Punct(q)) if q.as_char() == '\'');
                out.extend([TokenTree::Punct(p)]);
                if !named {
                    out.extend(quote!(#lifetime));
                }
            }
            TokenTree::Punct(p) if p.as_char() == '\'' => {
                let anonymous = matches!(tokens.peek(), Some(TokenTree::Ident(i)) if i == "_");
                if anonymous {
                    tokens.next();
                    out.extend(quote!(#lifetime));
                } else {
                    out.extend([TokenTree::Punct(p)]);
                }
            }
            other => out.extend([other]),
        }
    }
    out
}

/// Whether `block` names `ident` or one of its companions (`{ident}_entry`, `_refresh`, …)
/// anywhere: a call of the function from its own body.
fn mentions(block: &syn::Block, ident: &syn::Ident) -> bool {
    fn walk(tokens: TokenStream, name: &str) -> bool {
        tokens.into_iter().any(|t| match t {
            TokenTree::Ident(i) => {
                let i = i.to_string();
                i == name
                    || i.strip_prefix(name)
                        .is_some_and(|rest| rest.starts_with('_'))
            }
            TokenTree::Group(g) => walk(g.stream(), name),
            _ => false,
        })
    }
    walk(block.to_token_stream(), &ident.to_string())
}
