//! The key of a cached function: which values make it up, read from the template or the
//! parameters. `parts.rs` says the types of each part, and `code.rs` writes the code that
//! borrows them (for lookups), owns them (for inserts) and renders them (for Redis).

use proc_macro2::Span;
use quote::quote;
use syn::LitStr;

use crate::errors::Errors;
use crate::owned::{self, KeyForm};
use crate::sig::{Param, Sig};
use crate::template::{self, Segment};

mod code;
mod parts;

pub(crate) use code::respan;
pub(crate) use parts::PartType;

/// Why a key's literal text cannot hold braces.
const BRACES: &str = "a literal `{` or `}` in a key (`{{`, `}}`) would be read by Redis Cluster \
                      as a hash tag and move the entry to another slot than its lock: use \
                      another character, e.g. `(literal)`";

/// At most this many key parts (the largest tuple `cache_runtime` implements lookups for).
const MAX_PARTS: usize = 12;

/// One value of the key.
enum Part<'a> {
    /// A whole parameter, keyed by its own `Hash + Eq` (or that of its owned form).
    Param(&'a Param, KeyForm),
    /// `{root.field...}`, keyed by the field's `Display` text. `root` is `None` for `self`.
    Field {
        root: Option<&'a Param>,
        members: Vec<syn::Member>,
        span: Span,
    },
}

/// A piece of a key template, for rendering the Redis key.
enum Piece {
    Text(String),
    Part,
}

pub(crate) struct Key<'a> {
    parts: Vec<Part<'a>>,
    /// The template's pieces in order (`None`: no template, the key renders as JSON).
    pieces: Option<Vec<Piece>>,
    /// The template names `self`: `f_invalidate` needs the receiver.
    pub(crate) uses_self: bool,
}

impl<'a> Key<'a> {
    /// The key from the template, or all parameters in order.
    pub(crate) fn read(template: Option<&LitStr>, sig: &'a Sig, errors: &mut Errors) -> Self {
        match template {
            Some(lit) => Key::from_template(lit, sig, errors),
            None => Key::every_param(sig, errors),
        }
    }

    /// Without a template: every parameter, in order.
    fn every_param(sig: &'a Sig, errors: &mut Errors) -> Self {
        let parts: Vec<Part<'a>> = sig
            .params
            .iter()
            .filter_map(|p| Part::param(p, errors))
            .collect();
        if parts.len() > MAX_PARTS {
            errors.at(
                sig.params[MAX_PARTS].ident.span(),
                format!(
                    "a key has at most {MAX_PARTS} parts, and this function has {} \
                     parameters: name the ones that identify a result with `key = \"...\"`",
                    parts.len()
                ),
            );
        }
        Key {
            parts,
            pieces: None,
            uses_self: false,
        }
    }

    /// `key = "..."`: its text and placeholders in order; errors point at the template.
    fn from_template(lit: &LitStr, sig: &'a Sig, errors: &mut Errors) -> Self {
        let span = lit.span();
        let segments = match template::parse(&lit.value()) {
            Ok(segments) => segments,
            Err(why) => {
                errors.at(span, why);
                return Key {
                    parts: Vec::new(),
                    pieces: None,
                    uses_self: false,
                };
            }
        };
        let mut key = Key {
            parts: Vec::new(),
            pieces: Some(Vec::new()),
            uses_self: false,
        };
        for segment in segments {
            match segment {
                Segment::Text(text) => {
                    if text.contains(['{', '}']) {
                        errors.at(span, BRACES);
                    }
                    key.piece(Piece::Text(text));
                }
                Segment::Placeholder { root, fields } => {
                    key.placeholder(&root, &fields, sig, span, errors);
                }
            }
        }
        if key.parts.len() > MAX_PARTS {
            errors.at(span, format!("a key has at most {MAX_PARTS} placeholders"));
        }
        key
    }

    /// `{root.fields...}` of the template at `span`: `self`'s field, a parameter's field, or
    /// a whole parameter.
    fn placeholder(
        &mut self,
        root: &str,
        fields: &[String],
        sig: &'a Sig,
        span: Span,
        errors: &mut Errors,
    ) {
        self.piece(Piece::Part);
        let members = fields.iter().map(|f| member(f, span)).collect::<Vec<_>>();
        if root == "self" {
            if sig.receiver.is_none() {
                errors.at(span, "`{self...}` needs a method that takes `&self`");
            } else if members.is_empty() {
                errors.at(
                    span,
                    "`{self}` cannot be a key part: name a field, e.g. `{self.tenant}`",
                );
            }
            self.uses_self = true;
            self.parts.push(Part::Field {
                root: None,
                members,
                span,
            });
            return;
        }
        let Some(param) = sig.param(root) else {
            errors.at(span, no_such_param(sig, root));
            return;
        };
        self.parts.extend(if members.is_empty() {
            Part::param(param, errors)
        } else {
            Some(Part::Field {
                root: Some(param),
                members,
                span,
            })
        });
    }

    /// Whether the key is a template (its placeholders render with `Display`).
    pub(crate) fn is_template(&self) -> bool {
        self.pieces.is_some()
    }

    fn piece(&mut self, piece: Piece) {
        if let Some(pieces) = &mut self.pieces {
            pieces.push(piece);
        }
    }

    /// The parameters the key uses, in signature order (the arguments of `f_invalidate`).
    pub(crate) fn params(&self, sig: &'a Sig) -> Vec<&'a Param> {
        sig.params
            .iter()
            .filter(|p| {
                self.parts.iter().any(|part| match part {
                    Part::Param(q, _) | Part::Field { root: Some(q), .. } => q.ident == p.ident,
                    Part::Field { root: None, .. } => false,
                })
            })
            .collect()
    }
}

impl<'a> Part<'a> {
    /// The part of a whole parameter, or `None` (an error recorded) if it cannot be one.
    fn param(param: &'a Param, errors: &mut Errors) -> Option<Self> {
        let ident = &param.ident;
        match owned::key_form(&param.ty, &quote!(&#ident)) {
            Ok(form) => Some(Part::Param(param, form)),
            Err(e) => {
                errors.push(e);
                None
            }
        }
    }
}

/// The error of a placeholder `{root}` that names no parameter.
pub(crate) fn no_such_param(sig: &Sig, root: &str) -> String {
    let names: Vec<String> = sig
        .params
        .iter()
        .map(|p| format!("`{}`", p.ident))
        .collect();
    let known = if names.is_empty() {
        "the function has no parameters".to_owned()
    } else {
        format!("the parameters are {}", names.join(", "))
    };
    format!("`{{{root}}}` names no parameter: {known}")
}

/// The member `field` (a name, or a tuple index) of a placeholder's path.
pub(crate) fn member(field: &str, span: Span) -> syn::Member {
    match field.parse::<u32>() {
        Ok(index) => syn::Member::Unnamed(syn::Index { index, span }),
        Err(_) => syn::Member::Named(syn::Ident::new(field, span)),
    }
}
