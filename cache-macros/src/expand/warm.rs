//! `f_warm`: `f_entry`'s path for many argument tuples at once, on the runtime's workers,
//! and which functions get one (its item type must be nameable: `warmable`).

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, quote};

use super::{Gen, mixed};

impl Gen<'_> {
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
    pub(super) fn warm(&self) -> TokenStream {
        let unsafe_fn = matches!(self.func.sig.safety, syn::Safety::Unsafe(_));
        if self.has_self() || self.sig.params.is_empty() || unsafe_fn || !self.warmable() {
            return TokenStream::new();
        }
        let krate = &self.krate;
        let ident = self.ident("_warm");
        let lifetime = syn::Lifetime::new("'__cached_warm", Span::mixed_site());
        let (item, pattern) = self.warm_item(&lifetime);
        let store = self.path_to(&self.store_ident());
        let [cache, items, iter] = mixed(["__cache", "__items", "__I"]);
        let one = self.warm_one(&cache);
        let (asyncness, run, bounds) = self.warm_run(&cache, &items, &iter, &pattern, one);
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

    /// The item type of `f_warm`, with its elided lifetimes named `lifetime`, and the pattern
    /// that takes an item apart: the parameter itself for one, a tuple for several.
    ///
    /// ```text
    /// (A, &'w B)    (a, b)
    /// ```
    fn warm_item(&self, lifetime: &syn::Lifetime) -> (TokenStream, TokenStream) {
        let idents: Vec<_> = self.sig.params.iter().map(|p| &p.ident).collect();
        let types: Vec<_> = self
            .sig
            .params
            .iter()
            .map(|p| named_lifetimes(p.ty.to_token_stream(), lifetime))
            .collect();
        match (&types[..], &idents[..]) {
            ([ty], [ident]) => (quote!(#ty), quote!(#ident)),
            _ => (quote!((#(#types,)*)), quote!((#(#idents,)*))),
        }
    }

    /// The warming of one item on the engine `cache`: skipped when its entry is there.
    ///
    /// ```text
    /// let a: A = a; let b: &B = b;
    /// let key = { ..; if let Some(hit) = cache.get_entry(&lookup) { return Warm::Skipped; } .. };
    /// cache.warm_load(key, move || f_uncached(a, b))
    /// ```
    fn warm_one(&self, cache: &syn::Ident) -> TokenStream {
        let krate = &self.krate;
        let skipped = quote!(#krate::__private::Warm::Skipped);
        let cache_aside = self.cache_aside(
            cache,
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
        quote! {
            #(#written)*
            #cache_aside
        }
    }

    /// `f_warm`'s `async` (or nothing), its run over the items with `one` for each, and the
    /// `Send` bounds on the items of a sync `f_warm` (run on the runtime's workers).
    ///
    /// ```text
    /// warm(cache.handle().name(), items, |(a, b)| { one })
    /// warm_async(cache.handle().name(), items, move |(a, b)| async move { one }).await
    /// ```
    fn warm_run(
        &self,
        cache: &syn::Ident,
        items: &syn::Ident,
        iter: &syn::Ident,
        pattern: &TokenStream,
        one: TokenStream,
    ) -> (TokenStream, TokenStream, TokenStream) {
        let krate = &self.krate;
        match self.func.sig.asyncness {
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
