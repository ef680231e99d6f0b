//! The `Signature` impl of a cached function: its key and output types, generic over the type
//! of each key part, so that each part's bounds are one where-clause.
//!
//! ```text
//! struct f<K0, K1>(Part<K0>, Part<K1>);
//! impl<K0, K1> Signature for f<K0, K1> {       // no bounds: always holds
//!     type Key = (K0, String, Vec<K1>);        // for `a: A, name: &str, tags: &[B]`
//!     type Output = R;
//! }
//! impl<K0, K1> KeyFn for f<K0, K1>
//! where K0: KeyParam, K1: KeyParam            // one bound per part
//! {
//!     type Lookup<'x> = Lookup<(&'x K0, &'x str, &'x [K1])>;
//!     fn to_key(..) -> Self::Key { .. }
//! }
//! // made as `f(Part::<A>::new(), Part::<B>::new())`, each argument spanned at its parameter
//! ```
//!
//! The impls always type-check (inside them, the bounds hold by assumption). A type that
//! cannot be a key part fails where the value is used as a `KeyFn`, once, with the runtime's
//! message, and rustc points at the argument whose type fails: the parameter. The Redis key
//! rendering (`RedisSignature`) is generic the same way.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};

use super::{Gen, mixed};
use crate::key::{PartType, respan};

/// The pieces of the impls, shared by `Signature` and `RedisSignature`.
struct Generic {
    /// `f`: the struct the impls are for.
    ident: syn::Ident,
    /// `<K0, K1>`.
    params: TokenStream,
    /// `f<K0, K1>`.
    self_ty: TokenStream,
}

impl Gen<'_> {
    fn generic(&self, parts: &[PartType]) -> (Generic, Vec<Option<TokenStream>>) {
        let ident = syn::Ident::new(&self.func.sig.ident.to_string(), Span::mixed_site());
        let ks: Vec<Option<TokenStream>> = parts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                p.subject.as_ref().map(|_| {
                    let k = format_ident!("__K{}", i, span = Span::mixed_site());
                    quote!(#k)
                })
            })
            .collect();
        let list: Vec<&TokenStream> = ks.iter().flatten().collect();
        let generic = Generic {
            self_ty: quote!(#ident<#(#list),*>),
            params: quote!(<#(#list),*>),
            ident,
        };
        (generic, ks)
    }

    /// The where-clauses of the parts, each at its part's span: `K0: KeyParam, ..`, and for
    /// a template `K0: KeyDisplay`; with `redis`, `K0: KeyJson` for a key without template.
    fn bounds(&self, parts: &[PartType], ks: &[Option<TokenStream>], redis: bool) -> TokenStream {
        let krate = &self.krate;
        let template = self.key.is_template();
        let mut out = TokenStream::new();
        for (p, k) in parts.iter().zip(ks) {
            let Some(k) = k else { continue };
            let span = p.span;
            let shown = p.lookup_ty(k);
            let part = match template {
                true => quote!(KeyPlaceholder),
                false => quote!(KeyParam),
            };
            out.extend(quote_spanned!(span=> #k: #krate::__private::#part,));
            if template {
                out.extend(quote_spanned!(span=> #shown: #krate::__private::KeyDisplay,));
            } else if redis {
                out.extend(quote_spanned!(span=> #k: #krate::__private::KeyJson,));
            }
        }
        out
    }

    /// With `record_keys = true`: `KeyFn::key_text`, the key's `Debug` text, and a `Debug`
    /// bound on each key part (a part that is not `Debug` fails at its parameter).
    fn key_text(
        &self,
        parts: &[PartType],
        ks: &[Option<TokenStream>],
        bounds: &mut TokenStream,
    ) -> TokenStream {
        if !self.args.record_keys.is_some_and(|r| r.value) {
            return TokenStream::new();
        }
        for (p, k) in parts.iter().zip(ks) {
            let k = k.clone().unwrap_or_default();
            let ty = p.key_ty(&k);
            let krate = respan(&self.krate, p.span);
            bounds.extend(quote_spanned!(p.span=> #ty: #krate::__private::KeyDebug,));
        }
        let [key] = mixed(["__key"]);
        quote! {
            fn key_text(#key: &Self::Key) -> ::core::option::Option<::std::string::String> {
                ::core::option::Option::Some(::std::format!("{:?}", #key))
            }
        }
    }

    /// The struct, its `Signature` (and `RedisSignature`) impl, and the value of it that makes
    /// the cache.
    pub(super) fn signature_impl(&self) -> (TokenStream, TokenStream) {
        let krate = &self.krate;
        let parts = self.key.part_types();
        let (generic, ks) = self.generic(&parts);
        let Generic {
            ident,
            params,
            self_ty,
        } = &generic;
        let x = syn::Lifetime::new("'__cached", Span::mixed_site());
        let keys = parts.iter().zip(&ks).map(|(p, k)| {
            let k = k.clone().unwrap_or_default();
            let ty = p.key_ty(&k);
            quote_spanned!(p.span=> #ty)
        });
        let lookups = parts.iter().zip(&ks).map(|(p, k)| {
            let k = k.clone().unwrap_or_default();
            let ty = p.lookup_ty(&k);
            quote_spanned!(p.span=> &#x #ty)
        });
        let mut bounds = self.bounds(&parts, &ks, false);
        let key_text = self.key_text(&parts, &ks, &mut bounds);
        let statics = ks.iter().flatten().map(|k| quote!(#k: 'static,));
        let statics = quote!(#(#statics)*);
        let output = &self.sig.output;
        let [lookup] = mixed(["__lookup"]);
        let to_key = self.key.to_key_body(krate, &lookup);
        let redis = self
            .redis
            .then(|| self.redis_signature(&generic, &parts, &ks));
        let fields = ks
            .iter()
            .flatten()
            .map(|k| quote!(#krate::__private::Part<#k>));
        let items = quote! {
            #[allow(non_camel_case_types, dead_code)]
            struct #ident #params (#(#fields,)*);
            impl #params #krate::__private::Signature for #self_ty where #statics {
                type Key = (#(#keys,)*);
                type Output = #output;
            }
            impl #params #krate::__private::KeyFn for #self_ty where #bounds {
                type Lookup<#x> = #krate::__private::Lookup<(#(#lookups,)*)>;
                #[allow(clippy::unused_unit)]
                fn to_key(#lookup: &Self::Lookup<'_>) -> Self::Key {
                    #to_key
                }
                #key_text
            }
            #redis
        };
        let values = parts.iter().filter_map(|p| {
            let (subject, span) = (p.subject.as_ref()?, p.span);
            let krate = respan(krate, span);
            Some(quote_spanned!(span=> #krate::__private::Part::<#subject>::new()))
        });
        // Every token in the user's syntax context, so that rustc can point at an argument.
        let at = parts.first().map_or(self.sig.output_span, |p| p.span);
        let named = syn::Ident::new(&ident.to_string(), at);
        let value = quote_spanned!(at=> #named(#(#values,)*));
        (items, value)
    }

    /// ```text
    /// impl<K0> RedisSignature for f<(K0,)> where K0: KeyParam + KeyJson {
    ///     const SEPARATORS: &str = ":";
    ///     const LAYOUT: &str = "user:\u{1}";
    ///     fn render_key(lookup, out) { out.text("user:"); out.value(id); Ok(()) }
    /// }
    /// ```
    fn redis_signature(
        &self,
        generic: &Generic,
        parts: &[PartType],
        ks: &[Option<TokenStream>],
    ) -> TokenStream {
        let krate = &self.krate;
        let [lookup, writer] = mixed(["__lookup", "__out"]);
        let (render, separators, layout) = self.key.render_body(krate, &lookup, &writer);
        let bounds = self.bounds(parts, ks, true);
        let (params, self_ty) = (&generic.params, &generic.self_ty);
        quote! {
            impl #params #krate::__private::RedisSignature for #self_ty where #bounds {
                const SEPARATORS: &'static str = #separators;
                const LAYOUT: &'static str = #layout;
                fn render_key(
                    #lookup: &Self::Lookup<'_>,
                    #writer: &mut #krate::__private::KeyWriter,
                ) -> #krate::__private::serde_json::Result<()> {
                    #render
                    ::core::result::Result::Ok(())
                }
            }
        }
    }
}
