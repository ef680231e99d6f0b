//! The types of each key part: the owned key type, the borrowed lookup type, and where an
//! error about a part points.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned as _;

use super::{Key, Part, respan};
use crate::owned::KeyForm;

/// The types of one key part. In the generated `Signature` impl each part with a `subject`
/// is generic (its type is a parameter `K`, checked by a where-clause), so that a type that
/// cannot be a key part fails one bound, with a message of the runtime's, and nothing else.
pub(crate) struct PartType {
    /// The concrete type the impl is instantiated with; `None` for a part that is always a
    /// valid key (the `String` of a `&str`, the text of a field).
    pub(crate) subject: Option<TokenStream>,
    pub(crate) kind: PartKind,
    /// Where errors about this part point: the parameter's type, or the template.
    pub(crate) span: Span,
}

/// How a part's key and lookup types derive from its subject `K`.
pub(crate) enum PartKind {
    /// Keyed and looked up as `K`; owned by `Clone`.
    Same,
    /// Keyed as `Vec<K>`, looked up as `[K]`.
    Slice,
    /// Keyed as `owned`, looked up as `borrowed`, owned by `ToOwned` (else `Clone`).
    Fixed {
        owned: TokenStream,
        borrowed: TokenStream,
        to_owned: bool,
    },
}

impl PartType {
    /// The owned key type, with `k` for the subject.
    pub(crate) fn key_ty(&self, k: &TokenStream) -> TokenStream {
        match &self.kind {
            PartKind::Same => k.clone(),
            PartKind::Slice => quote!(::std::vec::Vec<#k>),
            PartKind::Fixed { owned, .. } => owned.clone(),
        }
    }

    /// The borrowed lookup type, with `k` for the subject.
    pub(crate) fn lookup_ty(&self, k: &TokenStream) -> TokenStream {
        match &self.kind {
            PartKind::Same => k.clone(),
            PartKind::Slice => quote!([#k]),
            PartKind::Fixed { borrowed, .. } => borrowed.clone(),
        }
    }

    /// The key type as the impl is instantiated.
    fn concrete_key(&self) -> TokenStream {
        self.key_ty(self.subject.as_ref().unwrap_or(&TokenStream::new()))
    }

    /// The lookup type as the impl is instantiated.
    fn concrete_lookup(&self) -> TokenStream {
        self.lookup_ty(self.subject.as_ref().unwrap_or(&TokenStream::new()))
    }

    /// Whether the owned part is made by `ToOwned` (else `Clone`).
    pub(super) fn to_owned(&self) -> bool {
        match &self.kind {
            PartKind::Same => false,
            PartKind::Slice => true,
            PartKind::Fixed { to_owned, .. } => *to_owned,
        }
    }
}

impl Key<'_> {
    /// The types of each part, in order.
    pub(crate) fn part_types(&self) -> Vec<PartType> {
        self.parts
            .iter()
            .map(|part| {
                let (subject, kind, span) = match part {
                    Part::Param(p, form) => {
                        let span = p.ty.span();
                        match form {
                            KeyForm::Value { ty, .. } => (Some(ty.clone()), PartKind::Same, span),
                            KeyForm::Converted { owned, .. } => {
                                (Some(owned.clone()), PartKind::Same, span)
                            }
                            KeyForm::Slice { elem } => (Some(elem.clone()), PartKind::Slice, span),
                            KeyForm::Unsized { owned, borrowed } => {
                                let kind = PartKind::Fixed {
                                    owned: owned.clone(),
                                    borrowed: borrowed.clone(),
                                    to_owned: true,
                                };
                                (None, kind, span)
                            }
                        }
                    }
                    Part::Field { span, .. } => {
                        let kind = PartKind::Fixed {
                            owned: quote!(::std::string::String),
                            borrowed: quote!(::std::string::String),
                            to_owned: false,
                        };
                        (None, kind, *span)
                    }
                };
                PartType {
                    subject,
                    kind,
                    span,
                }
            })
            .collect()
    }

    /// The parameter most likely to fail the key bounds, if any: the first part whose type is
    /// not a standard type that is always a key (integers, `bool`, `char`, `String`, ..).
    /// The cache's opaque type is spanned there, so that its check of the same bound reports
    /// at the same place as the part's own check, and rustc shows the error once.
    pub(crate) fn suspect(&self) -> Option<Span> {
        const ALWAYS_KEYS: &[&str] = &[
            "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize",
            "bool", "char", "String", "str", "()",
        ];
        self.part_types().into_iter().find_map(|p| {
            let subject = p.subject?.to_string().replace(' ', "");
            let last = subject.rsplit("::").next().unwrap_or_default().to_owned();
            (!ALWAYS_KEYS.contains(&last.as_str())).then_some(p.span)
        })
    }

    /// The span of the key as a whole: its first part, or `fallback` without parts.
    pub(crate) fn span(&self, fallback: Span) -> Span {
        self.part_types().first().map_or(fallback, |p| p.span)
    }

    /// The owned key tuple, e.g. `(u64, ::std::string::String,)`.
    pub(crate) fn owned_type(&self, fallback: Span) -> TokenStream {
        let parts = self.part_types().into_iter().map(|p| {
            let (owned, span) = (p.concrete_key(), p.span);
            quote_spanned!(span=> #owned)
        });
        quote_spanned!(self.span(fallback)=> (#(#parts,)*))
    }

    /// The borrowed key, e.g. `Lookup<(&'x u64, &'x str,)>`.
    pub(crate) fn lookup_type(
        &self,
        krate: &TokenStream,
        lifetime: &syn::Lifetime,
        fallback: Span,
    ) -> TokenStream {
        let parts = self.part_types().into_iter().map(|p| {
            let (ty, span) = (p.concrete_lookup(), p.span);
            quote_spanned!(span=> &#lifetime #ty)
        });
        let span = self.span(fallback);
        let krate = respan(krate, span);
        quote_spanned!(span=> #krate::__private::Lookup<(#(#parts,)*)>)
    }
}
