//! The code that builds a key in a generated function: the lookup that borrows the
//! arguments, the owned key made from it, and the Redis key rendered from it.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};

use super::{Key, Part, PartType, Piece};
use crate::owned::KeyForm;

/// The tokens that build a key, for one generated function body.
pub(crate) struct KeyCode {
    /// Statements that compute field parts (`let __part0 = display_part(&req.user);`).
    pub(crate) prelude: TokenStream,
    /// `Lookup((&id, &*name,))`.
    pub(crate) lookup: TokenStream,
}

impl Key<'_> {
    /// The body of `Function::to_key`: makes each borrowed part of `lookup` owned.
    pub(crate) fn to_key_body(&self, krate: &TokenStream, lookup: &syn::Ident) -> TokenStream {
        let (parts, vars, unpack) = self.unpack(krate, lookup);
        let owned = vars.iter().zip(&parts).map(|(var, p)| match p.to_owned() {
            true => quote_spanned!(p.span=> ::std::borrow::ToOwned::to_owned(*#var)),
            false => quote_spanned!(p.span=> ::core::clone::Clone::clone(*#var)),
        });
        quote! {
            #unpack
            (#(#owned,)*)
        }
    }

    /// `let Lookup((__p0, __p1,)) = lookup;`: the parts, their variables and that statement.
    fn unpack(
        &self,
        krate: &TokenStream,
        lookup: &syn::Ident,
    ) -> (Vec<PartType>, Vec<syn::Ident>, TokenStream) {
        let parts = self.part_types();
        let vars: Vec<syn::Ident> = parts
            .iter()
            .enumerate()
            .map(|(i, p)| format_ident!("__p{}", i, span = p.span))
            .collect();
        let unpack = quote!(let #krate::__private::Lookup((#(#vars,)*)) = #lookup;);
        (parts, vars, unpack)
    }

    /// The body of `RedisFunction::render_key` and the characters it escapes in values (the
    /// first character of each text between two placeholders). A template writes its text and
    /// each part's `Display`; without one the key is the JSON array of the parts.
    pub(crate) fn render_body(
        &self,
        krate: &TokenStream,
        lookup: &syn::Ident,
        out: &syn::Ident,
    ) -> (TokenStream, String, String) {
        let (parts, vars, mut body) = self.unpack(krate, lookup);
        let mut separators = String::new();
        // The template with each placeholder as `\u{1}` (`RedisSignature::LAYOUT`).
        let mut layout = String::new();
        match &self.pieces {
            Some(pieces) => {
                let mut next = 0;
                for (i, piece) in pieces.iter().enumerate() {
                    match piece {
                        Piece::Text(text) => {
                            let between = i > 0 && i + 1 < pieces.len();
                            if let Some(c) = text.chars().next().filter(|_| between)
                                && !separators.contains(c)
                            {
                                separators.push(c);
                            }
                            body.extend(quote!(#out.text(#text);));
                            layout.push_str(text);
                        }
                        Piece::Part => {
                            layout.push('\u{1}');
                            let (var, span) = (&vars[next], parts[next].span);
                            next += 1;
                            body.extend(quote_spanned!(span=> #out.value(#var);));
                        }
                    }
                }
            }
            None => {
                layout.push('\u{1}');
                body.extend(quote!(#out.text("[");));
                for (i, (var, p)) in vars.iter().zip(&parts).enumerate() {
                    if i > 0 {
                        body.extend(quote!(#out.text(",");));
                    }
                    body.extend(quote_spanned!(p.span=> #out.json(*#var)?;));
                }
                body.extend(quote!(#out.text("]");));
            }
        }
        (body, separators, layout)
    }

    /// The statements that compute field parts, and the lookup expression.
    pub(crate) fn code(&self, krate: &TokenStream) -> KeyCode {
        let mut prelude = TokenStream::new();
        let mut lookups = Vec::new();
        for (i, part) in self.parts.iter().enumerate() {
            match part {
                Part::Param(p, KeyForm::Value { deref: false, .. }) => {
                    let ident = &p.ident;
                    lookups.push(quote!(&#ident));
                }
                Part::Param(p, KeyForm::Value { deref: true, .. })
                | Part::Param(p, KeyForm::Slice { .. } | KeyForm::Unsized { .. }) => {
                    let ident = &p.ident;
                    lookups.push(quote!(&*#ident));
                }
                Part::Param(_, KeyForm::Converted { convert, .. }) => {
                    let var = format_ident!("__part{}", i, span = Span::mixed_site());
                    prelude.extend(quote!(let #var = #convert;));
                    lookups.push(quote!(&#var));
                }
                Part::Field {
                    root,
                    members,
                    span,
                } => {
                    let var = format_ident!("__part{}", i, span = Span::mixed_site());
                    let root = match root {
                        Some(p) => {
                            let ident = &p.ident;
                            quote!(#ident)
                        }
                        None => quote_spanned!(*span=> self),
                    };
                    prelude.extend(quote_spanned! {*span=>
                        let #var = #krate::__private::display_part(&#root #(.#members)*);
                    });
                    lookups.push(quote!(&#var));
                }
            }
        }
        KeyCode {
            prelude,
            lookup: quote!(#krate::__private::Lookup((#(#lookups,)*))),
        }
    }
}

/// `tokens` with every span set to `span`, so that an error in the type they build points
/// where `span` does (a type's span runs from its first token to its last).
pub(crate) fn respan(tokens: &TokenStream, span: Span) -> TokenStream {
    tokens
        .clone()
        .into_iter()
        .map(|mut tt| {
            if let proc_macro2::TokenTree::Group(g) = &tt {
                let mut group = proc_macro2::Group::new(g.delimiter(), respan(&g.stream(), span));
                group.set_span(span);
                tt = proc_macro2::TokenTree::Group(group);
            } else {
                tt.set_span(span);
            }
            tt
        })
        .collect()
}
