//! How a parameter becomes a key part: the owned type the cache keeps, and how a call finds it.
//!
//! - A type without references (`u64`, `String`, `UserId`) is looked up by borrowing the
//!   argument and owned by `Clone` on a miss.
//! - A reference to such a type is looked up as the type it points to and owned by its
//!   standard owned form: `&str` → `String`, `&[T]` → `Vec<T>`, `&Path` → `PathBuf`,
//!   `&OsStr` → `OsString`, `&CStr` → `CString`, `&T` → `T`. A hit allocates nothing.
//! - A type with references inside (`Option<&str>`, `&[&str]`, `(&str, u32)`,
//!   `Option<&T>`, `Cow<'_, str>`) is converted to its owned form (`Option<String>`,
//!   `Vec<String>`, `(String, u32)`, `Option<T>`, `String`) on every call, and looked up by
//!   that: a hit allocates what the conversion allocates.
//! - A type that borrows and has no owned form known here (`&dyn Trait`, `Row<'a>`) is an error
//!   at the parameter.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, quote};
use syn::Ident;
use syn::spanned::Spanned as _;
use syn::{GenericArgument, PathArguments, Type};

/// How a key part is made of a parameter.
pub(crate) enum KeyForm {
    /// `T`, or `&T` with `deref` (`T` without references): keyed by `T`, owned by `Clone`.
    Value { ty: TokenStream, deref: bool },
    /// `&[T]`: keyed by `Vec<T>`, looked up as `[T]`.
    Slice { elem: TokenStream },
    /// `&str`, `&Path`, `&OsStr`, `&CStr`: keyed by the standard owned form, looked up as the
    /// unsized type.
    Unsized {
        owned: TokenStream,
        borrowed: TokenStream,
    },
    /// A type with references inside, converted by `convert` (an expression of `&param`) on
    /// every call.
    Converted {
        owned: TokenStream,
        convert: TokenStream,
    },
}

pub(crate) fn peel(ty: &Type) -> &Type {
    match ty {
        Type::Paren(p) => peel(&p.elem),
        Type::Group(g) => peel(&g.elem),
        ty => ty,
    }
}

/// Whether a type borrows anywhere: a `&` or a lifetime in its tokens.
pub(crate) fn borrows(ty: &Type) -> bool {
    fn scan(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|tt| match tt {
            TokenTree::Punct(p) => p.as_char() == '&' || p.as_char() == '\'',
            TokenTree::Group(g) => scan(g.stream()),
            _ => false,
        })
    }
    scan(ty.to_token_stream())
}

/// The key form of a parameter of type `ty` (`arg` is an expression of `&param`), or an error
/// at the type.
pub(crate) fn key_form(ty: &Type, arg: &TokenStream) -> Result<KeyForm, syn::Error> {
    let ty = peel(ty);
    if let Type::Reference(r) = ty
        && !borrows(&r.elem)
    {
        let elem = peel(&r.elem);
        if let Type::TraitObject(_) = elem {
            return Err(no_owned_form(ty));
        }
        if let Type::Slice(s) = elem {
            let elem = s.elem.to_token_stream();
            return Ok(KeyForm::Slice { elem });
        }
        return Ok(match owned_of_unsized(elem) {
            (owned, true) => KeyForm::Unsized {
                owned,
                borrowed: elem.to_token_stream(),
            },
            (_, false) => KeyForm::Value {
                ty: elem.to_token_stream(),
                deref: true,
            },
        });
    }
    if !borrows(ty) {
        return Ok(KeyForm::Value {
            ty: ty.to_token_stream(),
            deref: false,
        });
    }
    let (owned, convert) = convert(ty, quote!(#arg))?;
    Ok(KeyForm::Converted { owned, convert })
}

/// The owned form of a type without references that may be unsized: `String` for `str`, and
/// whether it is made by `ToOwned`.
fn owned_of_unsized(ty: &Type) -> (TokenStream, bool) {
    match peel(ty) {
        Type::Slice(s) => {
            let elem = &s.elem;
            (quote!(::std::vec::Vec<#elem>), true)
        }
        Type::Path(p) if p.qself.is_none() => {
            let last = p.path.segments.last();
            let plain = last.is_some_and(|s| s.arguments.is_none());
            let name = last.map(|s| s.ident.to_string());
            match name.as_deref().filter(|_| plain) {
                Some("str") => (quote!(::std::string::String), true),
                Some("Path") => (quote!(::std::path::PathBuf), true),
                Some("OsStr") => (quote!(::std::ffi::OsString), true),
                Some("CStr") => (quote!(::std::ffi::CString), true),
                _ => (ty.to_token_stream(), false),
            }
        }
        other => (other.to_token_stream(), false),
    }
}

/// The argument of the closures a conversion writes, invisible to the user's names.
fn closure_arg() -> TokenStream {
    Ident::new("__x", Span::mixed_site()).to_token_stream()
}

fn no_owned_form(ty: &Type) -> syn::Error {
    let written = ty.to_token_stream().to_string();
    syn::Error::new(
        ty.span(),
        format!(
            "the cache keeps an owned copy of each key part, and `{written}` borrows with no \
             owned form `#[cached]` knows (it knows `&str`, `&[T]`, `&T`, `Option`, `Vec`, \
             `Box`, tuples, arrays and `Cow` of them): take an owned type, or leave this \
             parameter out of the key with `key = \"...\"` naming the others"
        ),
    )
}

/// The type arguments of `Name<..>`, if `ty` is a path ending in `name`.
fn args_of<'t>(ty: &'t Type, name: &str) -> Option<Vec<&'t Type>> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last().filter(|_| p.qself.is_none())?;
    if last.ident != name {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    Some(
        args.args
            .iter()
            .filter_map(|a| match a {
                GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
    )
}

/// `(owned type, expression)`: the owned form of `ty` made from `e`, an expression of type
/// `&ty`.
fn convert(ty: &Type, e: TokenStream) -> Result<(TokenStream, TokenStream), syn::Error> {
    let ty = peel(ty);
    if !borrows(ty) {
        return Ok((
            ty.to_token_stream(),
            quote!(::core::clone::Clone::clone(#e)),
        ));
    }
    let x = closure_arg();
    match ty {
        Type::Reference(r) => {
            let inner = peel(&r.elem);
            if let Type::TraitObject(_) = inner {
                return Err(no_owned_form(ty));
            }
            if !borrows(inner) {
                let (owned, to_owned) = owned_of_unsized(inner);
                let expr = match to_owned {
                    true => quote!(::std::borrow::ToOwned::to_owned(*#e)),
                    false => quote!(::core::clone::Clone::clone(*#e)),
                };
                return Ok((owned, expr));
            }
            convert(inner, quote!(*#e))
        }
        Type::Slice(s) => collect(&s.elem, quote!(::core::iter::IntoIterator::into_iter(#e))),
        Type::Tuple(t) => {
            let mut owned = Vec::new();
            let mut exprs = Vec::new();
            for (i, elem) in t.elems.iter().enumerate() {
                let index = syn::Index::from(i);
                let (o, x) = convert(elem, quote!(&(#e).#index))?;
                owned.push(o);
                exprs.push(x);
            }
            Ok((quote!((#(#owned,)*)), quote!((#(#exprs,)*))))
        }
        Type::Array(a) => {
            let (o, inner) = convert(&a.elem, x.clone())?;
            let len = &a.len;
            Ok((
                quote!([#o; #len]),
                quote!(<[_; #len]>::map(<[_; #len]>::each_ref(#e), |#x| #inner)),
            ))
        }
        Type::Path(_) => {
            if let Some([inner]) = args_of(ty, "Option").as_deref() {
                let (o, inner) = convert(inner, x.clone())?;
                return Ok((
                    quote!(::core::option::Option<#o>),
                    quote!(::core::option::Option::map(
                        ::core::option::Option::as_ref(#e), |#x| #inner)),
                ));
            }
            if let Some([inner]) = args_of(ty, "Vec").as_deref() {
                return collect(inner, quote!(::core::iter::IntoIterator::into_iter(#e)));
            }
            if let Some([inner]) = args_of(ty, "Box").as_deref() {
                let (o, inner) = convert(inner, quote!(&**#e))?;
                return Ok((
                    quote!(::std::boxed::Box<#o>),
                    quote!(::std::boxed::Box::new(#inner)),
                ));
            }
            if let Some([inner]) = args_of(ty, "Cow").as_deref()
                && !borrows(inner)
            {
                let (owned, _) = owned_of_unsized(inner);
                let expr = quote!(::std::borrow::ToOwned::to_owned(&**#e));
                return Ok((owned, expr));
            }
            Err(no_owned_form(ty))
        }
        _ => Err(no_owned_form(ty)),
    }
}

/// A `Vec` of the owned forms of the items of `iter` (of type `&elem`).
fn collect(elem: &Type, iter: TokenStream) -> Result<(TokenStream, TokenStream), syn::Error> {
    let x = closure_arg();
    let (o, inner) = convert(elem, x.clone())?;
    Ok((
        quote!(::std::vec::Vec<#o>),
        quote!(::core::iter::Iterator::collect::<::std::vec::Vec<#o>>(
            ::core::iter::Iterator::map(#iter, |#x| #inner))),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(ty: &str) -> (String, String) {
        let ty: Type = syn::parse_str(ty).unwrap();
        match key_form(&ty, &quote!(__arg)).unwrap() {
            KeyForm::Value { ty, .. } => ("value".into(), squash(ty)),
            KeyForm::Slice { elem } => ("slice".into(), squash(elem)),
            KeyForm::Unsized { owned, .. } => ("unsized".into(), squash(owned)),
            KeyForm::Converted { owned, .. } => ("converted".into(), squash(owned)),
        }
    }

    fn squash(t: TokenStream) -> String {
        t.to_string().replace(' ', "")
    }

    #[test]
    fn owned_forms() {
        assert_eq!(form("u64"), ("value".into(), "u64".into()));
        assert_eq!(form("&User"), ("value".into(), "User".into()));
        assert_eq!(
            form("&str"),
            ("unsized".into(), "::std::string::String".into())
        );
        assert_eq!(form("&'a [u8]"), ("slice".into(), "u8".into()));
        assert_eq!(
            form("Option<&str>"),
            (
                "converted".into(),
                "::core::option::Option<::std::string::String>".into()
            )
        );
        assert_eq!(
            form("&[&str]"),
            (
                "converted".into(),
                "::std::vec::Vec<::std::string::String>".into()
            )
        );
        assert_eq!(
            form("(&str, u32)"),
            ("converted".into(), "(::std::string::String,u32,)".into())
        );
        assert_eq!(
            form("Cow<'_, str>"),
            ("converted".into(), "::std::string::String".into())
        );
        assert_eq!(
            form("Option<&User>"),
            ("converted".into(), "::core::option::Option<User>".into())
        );
    }

    #[test]
    fn borrowing_types_without_an_owned_form_are_errors() {
        for ty in [
            "&dyn Display",
            "Row<'a>",
            "Option<&dyn Display>",
            "HashMap<&str, u8>",
        ] {
            let ty: Type = syn::parse_str(ty).unwrap();
            assert!(key_form(&ty, &quote!(x)).is_err(), "{ty:?}");
        }
    }
}
