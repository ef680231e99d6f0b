//! Code generation: the cached wrapper and its companions, one small function per item.
//!
//! This file reads one function (`expand_fn`) and generates the wrapper `f` and the steps it
//! shares with `f_entry` and `f_warm`; the companions are in `companions.rs` and `warm.rs`,
//! the cache itself in `store.rs` and `signature.rs`, `#[cached]` on an `impl` block in
//! `impl_block.rs`, and a method of a trait impl without it in `trait_impl.rs`.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::{Attribute, ItemFn, Visibility};

use crate::args::{Args, Backend};
use crate::attrs;
use crate::errors::Errors;
use crate::key::Key;
use crate::sig::{Param, Sig};
use crate::tags::Tags;

mod batch;
mod companions;
mod impl_block;
mod signature;
mod store;
mod trait_impl;
mod warm;

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
    let async_trait = impl_block::refuse_async_trait(&func.sig, place, &mut errors);
    if place == Place::Alone && !async_trait {
        trait_impl::refuse_bare_trait_method(func, &mut errors);
    }
    let key = Key::read(args.key.as_ref(), &sig, &mut errors);
    let tags = Tags::read(args.tags.as_deref(), &sig, &mut errors);
    args.validate(&mut errors);
    if args.batch.is_some() {
        return match batch::expand(&args, func, &sig, place, &mut errors) {
            Some(function) if errors.is_empty() => Ok(Expansion {
                function,
                companions: TokenStream::new(),
            }),
            _ => Err(errors),
        };
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
    /// The function's entries live in Redis (not in a store of the user's).
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
            _ if args.store.is_some() => false,
            Some(Backend::Memory) => false,
            Some(Backend::Redis | Backend::Tiered) | None => REDIS_BUILD,
        };
        let tiered = (REDIS_BUILD || args.store.is_some())
            && args.backend.map(|b| b.value) == Some(Backend::Tiered);
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

    /// With freshness phases, `verify`, or async (a load goes on when its caller is
    /// cancelled), and parameters that are all owned: the body wrapped so that the engine may
    /// run it in the background if the type checker finds it `Send` (see `cache_runtime`'s
    /// `body.rs`). Otherwise the body as it is, run by its caller.
    fn movable_body(&self, body: TokenStream) -> TokenStream {
        let args = self.args;
        let phases = args.stale.is_some()
            || args.load_timeout.is_some()
            || args.early_refresh.is_some()
            || args.verify.is_some();
        let moves = phases || self.func.sig.asyncness.is_some();
        let stays = self.place != Place::Alone
            || !self.sig.owns_its_arguments()
            // A body that awaits its own function: whether its future is `Send` depends on
            // itself, which the type checker cannot decide (an error, not a fallback).
            || self.func.sig.asyncness.is_some()
                && mentions(&self.func.block, &self.func.sig.ident);
        if let (Some(v), true) = (args.verify, stays) {
            // `verify` runs the load again after the caller has its answer: a body that
            // cannot leave the caller would never be verified.
            return quote_spanned! {v.span=> {
                ::core::compile_error!(
                    "`verify` runs the load again off the caller's path, so the function's \
                     parameters must all be owned (no reference, lifetime or `self`) and it \
                     must be a free function: cache a free function that takes owned \
                     arguments, or remove `verify`"
                );
                #body
            }};
        }
        if !moves || stays {
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
