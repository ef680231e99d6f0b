//! The key of a cached function: which values make it up, and the code that borrows them
//! (for lookups) or owns them (for inserts).

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::LitStr;
use syn::spanned::Spanned as _;

use crate::errors::Errors;
use crate::owned::{self, KeyForm};
use crate::sig::{Param, Sig};
use crate::template::{self, Segment};

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

    fn to_owned(&self) -> bool {
        match &self.kind {
            PartKind::Same => false,
            PartKind::Slice => true,
            PartKind::Fixed { to_owned, .. } => *to_owned,
        }
    }
}

/// The tokens that build a key, for one generated function body.
pub(crate) struct KeyCode {
    /// Statements that compute field parts (`let __part0 = display_part(&req.user);`).
    pub(crate) prelude: TokenStream,
    /// `Lookup((&id, &*name,))`.
    pub(crate) lookup: TokenStream,
}

impl<'a> Key<'a> {
    /// The key from the template, or all parameters in order.
    pub(crate) fn read(template: Option<&LitStr>, sig: &'a Sig, errors: &mut Errors) -> Self {
        let Some(lit) = template else {
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
            return Key {
                parts,
                pieces: None,
                uses_self: false,
            };
        };
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
            let (root, fields) = match segment {
                Segment::Text(text) => {
                    if text.contains(['{', '}']) {
                        errors.at(span, BRACES);
                    }
                    key.piece(Piece::Text(text));
                    continue;
                }
                Segment::Placeholder { root, fields } => (root, fields),
            };
            key.piece(Piece::Part);
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
                key.uses_self = true;
                key.parts.push(Part::Field {
                    root: None,
                    members,
                    span,
                });
                continue;
            }
            let Some(param) = sig.param(&root) else {
                errors.at(span, no_such_param(sig, &root));
                continue;
            };
            key.parts.extend(if members.is_empty() {
                Part::param(param, errors)
            } else {
                Some(Part::Field {
                    root: Some(param),
                    members,
                    span,
                })
            });
        }
        if key.parts.len() > MAX_PARTS {
            errors.at(span, format!("a key has at most {MAX_PARTS} placeholders"));
        }
        key
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
