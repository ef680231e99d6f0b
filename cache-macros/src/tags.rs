//! `tags = ["catalog", "product:{id}", "category:{p.category}"]`: tag templates, checked like
//! the key's, rendered with `Display` into the `Tags` of a call when its load starts.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::LitStr;

use crate::errors::Errors;
use crate::key::{member, no_such_param};
use crate::sig::Sig;
use crate::template::{self, Segment};

/// One tag: the `format!` string and its arguments, spanned at the template.
struct Tag {
    lit: LitStr,
    format: String,
    args: Vec<TokenStream>,
}

/// The tags of one function (none without `tags`).
pub(crate) struct Tags {
    tags: Vec<Tag>,
}

impl Tags {
    /// Checks each template against the signature: every placeholder names a parameter (or a
    /// field of one, or of `self` in a method).
    pub(crate) fn read(templates: Option<&[LitStr]>, sig: &Sig, errors: &mut Errors) -> Tags {
        let tags = templates
            .unwrap_or_default()
            .iter()
            .filter_map(|lit| tag(lit, sig, errors))
            .collect();
        Tags { tags }
    }

    /// The expression of a call's `Tags`: `Tags::NONE`, or `Tags::new([format!(..), ..])`.
    pub(crate) fn code(&self, krate: &TokenStream) -> TokenStream {
        if self.tags.is_empty() {
            return quote!(#krate::__private::Tags::NONE);
        }
        let rendered = self.tags.iter().map(|t| {
            let (format, args) = (&t.format, &t.args);
            quote_spanned!(t.lit.span()=> ::std::format!(#format #(, #args)*))
        });
        quote!(#krate::__private::Tags::new([#(#rendered),*]))
    }
}

impl Tags {
    /// With tags, `on_hit` of `f_entry`: the hit `hit` reporting the call's rendered tags
    /// (`__private::tagged(hit, vec![format!(..), ..])`); without, the hit as it is.
    pub(crate) fn tag_hit(&self, krate: &TokenStream, hit: &syn::Ident) -> TokenStream {
        if self.tags.is_empty() {
            return quote!(#hit);
        }
        let rendered = self.tags.iter().map(|t| {
            let (format, args) = (&t.format, &t.args);
            quote_spanned!(t.lit.span()=> ::std::format!(#format #(, #args)*))
        });
        quote!(#krate::__private::tagged(#hit, ::std::vec![#(#rendered),*]))
    }
}

/// Reads one template; `None` (errors recorded) if it does not check.
fn tag(lit: &LitStr, sig: &Sig, errors: &mut Errors) -> Option<Tag> {
    let span = lit.span();
    let segments = match template::parse_as(&lit.value(), "tag template") {
        Ok(segments) => segments,
        Err(why) => {
            errors.at(span, why);
            return None;
        }
    };
    let mut format = String::new();
    let mut args = Vec::new();
    let mut ok = true;
    for segment in segments {
        let (root, fields) = match segment {
            Segment::Text(text) => {
                format.push_str(&text.replace('{', "{{").replace('}', "}}"));
                continue;
            }
            Segment::Placeholder { root, fields } => (root, fields),
        };
        let members = fields.iter().map(|f| member(f, span));
        let root = if root == "self" {
            if sig.receiver.is_none() {
                errors.at(span, "`{self...}` needs a method that takes `&self`");
                ok = false;
                continue;
            }
            if fields.is_empty() {
                errors.at(
                    span,
                    "`{self}` cannot be a tag part: name a field, e.g. `{self.tenant}`",
                );
                ok = false;
                continue;
            }
            quote_spanned!(span=> self)
        } else {
            let Some(param) = sig.param(&root) else {
                errors.at(span, no_such_param(sig, &root));
                ok = false;
                continue;
            };
            // At the template, so that a type without `Display` is reported there alone.
            let ident = syn::Ident::new(&param.ident.to_string(), span);
            quote!(#ident)
        };
        format.push_str("{}");
        args.push(quote_spanned!(span=> &#root #(.#members)*));
    }
    ok.then(|| Tag {
        lit: lit.clone(),
        format,
        args,
    })
}
