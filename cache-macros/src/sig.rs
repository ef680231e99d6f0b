//! Facts about the annotated function's signature: its receiver, its parameters and its
//! return type; and the signatures that cannot be cached. (The return type's shape is decided
//! by the type checker: see `cache_runtime`'s `shape.rs`.)

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::spanned::Spanned as _;
use syn::{FnArg, Pat, ReturnType, Signature, Type};

use crate::owned::peel;

use crate::errors::Errors;

/// One named parameter.
pub(crate) struct Param {
    pub(crate) ident: syn::Ident,
    pub(crate) ty: Type,
}

pub(crate) struct Sig {
    /// `&self`, `&mut self`, `self`...: the function is a method.
    pub(crate) receiver: Option<syn::Receiver>,
    pub(crate) params: Vec<Param>,
    /// The return type as written (`()` if none).
    pub(crate) output: Type,
    pub(crate) output_span: Span,
}

/// Whether `tokens` contain `impl` (an `impl Trait` anywhere in a type).
fn has_impl_trait(tokens: TokenStream) -> Option<Span> {
    tokens.into_iter().find_map(|tt| match tt {
        TokenTree::Ident(i) if i == "impl" => Some(i.span()),
        TokenTree::Group(g) => has_impl_trait(g.stream()),
        _ => None,
    })
}

/// Standard types that borrow although written without a lifetime (`Cow<str>`).
const BORROWING: &[&str] = &[
    "Cow",
    "Ref",
    "RefMut",
    "Arguments",
    "Formatter",
    "PhantomData",
];

/// Whether a type, as written, is owned and `'static`: no reference, lifetime, `Self`,
/// `impl`, `dyn`, or standard type that borrows anywhere in it. (A type of the user's own with
/// an elided lifetime, `Row` for `Row<'a>`, cannot be told apart here: the docs ask for
/// `Row<'_>`.)
pub(crate) fn owned_static(tokens: TokenStream) -> bool {
    tokens.into_iter().all(|tt| match tt {
        TokenTree::Punct(p) => p.as_char() != '&' && p.as_char() != '\'',
        TokenTree::Ident(i) => {
            i != "Self" && i != "impl" && i != "dyn" && !BORROWING.iter().any(|b| i == b)
        }
        TokenTree::Group(g) => owned_static(g.stream()),
        TokenTree::Literal(_) => true,
    })
}

impl Sig {
    /// Whether every parameter and the output are owned and `'static` as written, and there
    /// is no receiver:
    /// then the body owns all it uses, and may run in the background (if it is also `Send`,
    /// which the type checker decides).
    pub(crate) fn owns_its_arguments(&self) -> bool {
        self.receiver.is_none()
            && owned_static(self.output.to_token_stream())
            && self
                .params
                .iter()
                .all(|p| owned_static(p.ty.to_token_stream()))
    }

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
        Sig {
            receiver,
            params,
            output,
            output_span,
        }
    }

    pub(crate) fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.ident == name)
    }
}
