//! Which of the function's attributes go on which generated item.
//!
//! The cached function `f` keeps every attribute as written (docs, `#[deprecated]`,
//! `#[must_use]`, `#[inline]`, `#[no_mangle]`, `#[tracing::instrument]`, ...), so callers see
//! the function they wrote; an `#[expect(..)]` becomes `#[allow(..)]` there, since the body
//! that meets the expectation moved to `f_uncached`.
//!
//! `f_uncached` holds the body, so it keeps what concerns a body and nothing that would act
//! twice: `cfg`, lint levels, `deprecated`, `must_use`, `inline`, `cold`, `track_caller` and
//! `diagnostic::*`. Anything else (`no_mangle` or `export_name`, which would export a symbol
//! twice, an `#[instrument]` that would open a second span per load, other attribute macros)
//! stays on `f` alone.

use quote::{ToTokens, quote};
use syn::Attribute;

/// Attributes `f_uncached` keeps, besides its own docs.
const BODY_ATTRS: &[&str] = &[
    "cfg",
    "cfg_attr",
    "allow",
    "expect",
    "warn",
    "deny",
    "forbid",
    "deprecated",
    "must_use",
    "inline",
    "cold",
    "track_caller",
];

/// Whether `attr` is `#[cfg]` or `#[cfg_attr]`: forwarded to every generated item.
pub(crate) fn is_cfg(attr: &Attribute) -> bool {
    attr.path().is_ident("cfg") || attr.path().is_ident("cfg_attr")
}

/// Whether `f_uncached` keeps `attr`.
pub(crate) fn on_body(attr: &Attribute) -> bool {
    let path = attr.path();
    BODY_ATTRS.iter().any(|name| path.is_ident(name))
        || path
            .segments
            .first()
            .is_some_and(|s| s.ident == "diagnostic")
}

/// An attribute as the cached function carries it: `#[expect(..)]` becomes `#[allow(..)]`.
pub(crate) fn on_wrapper(attr: &Attribute) -> proc_macro2::TokenStream {
    if attr.path().is_ident("expect")
        && let syn::Meta::List(list) = &attr.meta
    {
        let tokens = &list.tokens;
        return quote!(#[allow(#tokens)]);
    }
    attr.to_token_stream()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(text: &str) -> Attribute {
        let mut attrs = Attribute::parse_outer
            .parse_str(text)
            .expect("an attribute");
        attrs.remove(0)
    }

    use syn::parse::Parser as _;

    #[test]
    fn the_body_keeps_only_what_concerns_a_body() {
        for kept in [
            "#[deprecated]",
            "#[must_use]",
            "#[inline(always)]",
            "#[allow(dead_code)]",
            "#[cfg(test)]",
            "#[diagnostic::on_unimplemented(message = \"x\")]",
        ] {
            assert!(on_body(&attr(kept)), "{kept}");
        }
        for dropped in [
            "#[no_mangle]",
            "#[unsafe(no_mangle)]",
            "#[export_name = \"x\"]",
            "#[tracing::instrument]",
            "#[instrument(skip(db))]",
            "#[doc = \"x\"]",
        ] {
            assert!(!on_body(&attr(dropped)), "{dropped}");
        }
    }
}
