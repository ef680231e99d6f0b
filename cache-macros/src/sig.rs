//! Facts about the annotated function's signature: its receiver, its parameters, the shape
//! of its return type; and the signatures that cannot be cached.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, quote};
use syn::spanned::Spanned as _;
use syn::{FnArg, GenericArgument, Pat, PathArguments, ReturnType, Signature, Type};

use crate::errors::Errors;

/// One named parameter.
pub(crate) struct Param {
    pub(crate) ident: syn::Ident,
    pub(crate) ty: Type,
}

impl Param {
    /// The type a key part of this parameter borrows as: `str` for `&str`, `T` for `&T` or `T`.
    pub(crate) fn borrowed_ty(&self) -> &Type {
        match peel(&self.ty) {
            Type::Reference(r) => &r.elem,
            ty => ty,
        }
    }

    /// The owned type a key keeps of this parameter, read from how the type is written:
    /// `String` for `&str`, `Vec<T>` for `&[T]`, `PathBuf` for `&Path`, `OsString` for
    /// `&OsStr`, `CString` for `&CStr`, `T` for `&T` and `T`. The flag says whether the part is
    /// made with `ToOwned::to_owned` (the unsized ones) rather than `Clone::clone`.
    pub(crate) fn owned_ty(&self) -> (TokenStream, bool) {
        let Type::Reference(_) = peel(&self.ty) else {
            return (self.ty.to_token_stream(), false);
        };
        let inner = peel(self.borrowed_ty());
        match inner {
            Type::Slice(s) => {
                let elem = &s.elem;
                (quote!(::std::vec::Vec<#elem>), true)
            }
            Type::Path(p) if p.qself.is_none() && p.path.segments.len() <= 3 => {
                let last = p.path.segments.last().map(|s| s.ident.to_string());
                match last.as_deref() {
                    Some("str") => (quote!(::std::string::String), true),
                    Some("Path") => (quote!(::std::path::PathBuf), true),
                    Some("OsStr") => (quote!(::std::ffi::OsString), true),
                    Some("CStr") => (quote!(::std::ffi::CString), true),
                    _ => (inner.to_token_stream(), false),
                }
            }
            _ => (inner.to_token_stream(), false),
        }
    }

    /// An expression borrowing the parameter as `&borrowed_ty`: `&*name` or `&name`.
    pub(crate) fn borrow_expr(&self) -> TokenStream {
        let ident = &self.ident;
        match peel(&self.ty) {
            Type::Reference(_) => quote!(&*#ident),
            _ => quote!(&#ident),
        }
    }
}

/// How results map to the cache: see `cache_runtime::__private::Shape`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ShapeKind {
    Plain,
    Res,
    Opt,
    ResOpt,
}

impl ShapeKind {
    pub(crate) fn marker(self) -> &'static str {
        match self {
            ShapeKind::Plain => "Plain",
            ShapeKind::Res => "Res",
            ShapeKind::Opt => "Opt",
            ShapeKind::ResOpt => "ResOpt",
        }
    }
}

pub(crate) struct Sig {
    /// `&self`, `&mut self`, `self`...: the function is a method.
    pub(crate) receiver: Option<syn::Receiver>,
    pub(crate) params: Vec<Param>,
    pub(crate) shape: ShapeKind,
    /// The type the cache keeps: `T` of `T`, `Result<T, E>`, `Option<T>`, `Result<Option<T>, E>`.
    pub(crate) value_ty: Type,
    /// The return type as written (`()` if none).
    pub(crate) output: Type,
    pub(crate) output_span: Span,
}

fn peel(ty: &Type) -> &Type {
    match ty {
        Type::Paren(p) => peel(&p.elem),
        Type::Group(g) => peel(&g.elem),
        ty => ty,
    }
}

/// Whether `tokens` contain `impl` (an `impl Trait` anywhere in a type).
fn has_impl_trait(tokens: TokenStream) -> Option<Span> {
    tokens.into_iter().find_map(|tt| match tt {
        TokenTree::Ident(i) if i == "impl" => Some(i.span()),
        TokenTree::Group(g) => has_impl_trait(g.stream()),
        _ => None,
    })
}

/// `Name<A, ...>` as the last segment of a path type: the name and its type arguments.
fn generic_path(ty: &Type) -> Option<(String, Vec<&Type>)> {
    let Type::Path(p) = peel(ty) else { return None };
    if p.qself.is_some() {
        return None;
    }
    let last = p.path.segments.last()?;
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let types = args
        .args
        .iter()
        .filter_map(|a| match a {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        })
        .collect();
    Some((last.ident.to_string(), types))
}

/// The shape and cached type of a return type, read from how it is written: a path ending in
/// `Result<..>` or `Option<..>` (so `io::Result<T>` is a `Result` too).
fn shape_of(output: &Type) -> (ShapeKind, Type) {
    match generic_path(output) {
        Some((name, args)) if name == "Result" && !args.is_empty() => match generic_path(args[0]) {
            Some((inner, opt)) if inner == "Option" && opt.len() == 1 => {
                (ShapeKind::ResOpt, opt[0].clone())
            }
            _ => (ShapeKind::Res, args[0].clone()),
        },
        Some((name, args)) if name == "Option" && args.len() == 1 => {
            (ShapeKind::Opt, args[0].clone())
        }
        _ => (ShapeKind::Plain, output.clone()),
    }
}

impl Sig {
    /// Reads the signature, recording every shape that cannot be cached.
    pub(crate) fn read(sig: &Signature, errors: &mut Errors) -> Sig {
        let generics = &sig.generics;
        if let Some(param) = generics.type_params().next() {
            errors.at(
                param.span(),
                "`#[cached]` cannot cache a generic function: cache a wrapper with concrete \
                 types, e.g. `#[cached] fn load_user(id: u64) -> User { load::<User>(id) }`",
            );
        }
        if let Some(param) = generics.const_params().next() {
            errors.at(
                param.span(),
                "`#[cached]` cannot cache a function with const generics: cache a wrapper \
                 with concrete values",
            );
        }
        if let Some(c) = &sig.constness {
            errors.at(
                c.span(),
                "`#[cached]` cannot cache a `const fn`: remove `const`",
            );
        }
        if let Some(v) = &sig.variadic {
            errors.at(v.span(), "`#[cached]` cannot cache a variadic function");
        }
        let mut receiver = None;
        let mut params = Vec::new();
        for input in &sig.inputs {
            match input {
                FnArg::Receiver(r) => receiver = Some(r.clone()),
                FnArg::Typed(pt) => {
                    if let Some(span) = has_impl_trait(pt.ty.to_token_stream()) {
                        errors.at(
                            span,
                            "`#[cached]` cannot cache a function with an `impl Trait` \
                             argument: take a concrete type, or cache a wrapper that does",
                        );
                    }
                    match &*pt.pat {
                        Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => {
                            params.push(Param {
                                ident: pi.ident.clone(),
                                ty: (*pt.ty).clone(),
                            });
                        }
                        pat => errors.at(
                            pat.span(),
                            "`#[cached]` needs a plain name for each parameter: write \
                             `arg: Type` and destructure inside the body",
                        ),
                    }
                }
            }
        }
        let (output, output_span) = match &sig.output {
            ReturnType::Default => (syn::parse_quote!(()), sig.ident.span()),
            ReturnType::Type(_, ty) => ((**ty).clone(), ty.span()),
        };
        match peel(&output) {
            Type::Reference(r) => errors.at(
                r.span(),
                "`#[cached]` cannot cache a borrowed result: return an owned value, e.g. \
                 `String` for `&str`, `T` for `&T`, or `Arc<T>` to share one",
            ),
            Type::ImplTrait(t) => errors.at(
                t.span(),
                "`#[cached]` cannot cache an `impl Trait` result: return a concrete type",
            ),
            _ => {}
        }
        let (shape, value_ty) = shape_of(&output);
        Sig {
            receiver,
            params,
            shape,
            value_ty,
            output,
            output_span,
        }
    }

    pub(crate) fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.ident == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(ty: &str) -> (ShapeKind, String) {
        let ty: Type = syn::parse_str(ty).unwrap();
        let (kind, value) = shape_of(&ty);
        (kind, value.to_token_stream().to_string().replace(' ', ""))
    }

    #[test]
    fn shapes_are_read_from_the_written_type() {
        assert_eq!(shape("u64"), (ShapeKind::Plain, "u64".into()));
        assert_eq!(shape("Vec<u8>"), (ShapeKind::Plain, "Vec<u8>".into()));
        assert_eq!(shape("Result<User, E>"), (ShapeKind::Res, "User".into()));
        assert_eq!(
            shape("std::io::Result<User>"),
            (ShapeKind::Res, "User".into())
        );
        assert_eq!(shape("Option<User>"), (ShapeKind::Opt, "User".into()));
        assert_eq!(
            shape("Option<Option<u8>>"),
            (ShapeKind::Opt, "Option<u8>".into())
        );
        assert_eq!(
            shape("Result<Option<User>, E>"),
            (ShapeKind::ResOpt, "User".into())
        );
    }
}
