//! Whether a method that carries `#[cached]` itself sits in a trait impl whose block lacks
//! `#[cached]`: then its companions cannot be emitted beside it (a trait impl holds only the
//! trait's items, and rustc would give one `E0407` per companion), and one error says to put
//! `#[cached]` on the block too.
//!
//! An attribute sees only its item, so this reads the method's source file (the file the
//! compiler is compiling, through `proc_macro::Span::local_file`), splits it into tokens and
//! finds the `impl` blocks that hold a `#[cached]` method of that name. Only when every one of
//! them is a trait impl without `#[cached]` is the method refused; when the file cannot be read
//! or the method is not found in it (written by a macro, say), the method expands as before.
//! The file's tokens decide nothing else, and no error points into them.

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use syn::{ItemFn, Visibility};

use crate::errors::Errors;

/// Records the error of a method of a trait impl whose block lacks `#[cached]`.
pub(super) fn refuse_bare_trait_method(func: &ItemFn, errors: &mut Errors) {
    // A method of a trait impl has no visibility, and names `Self` (as its receiver or in its
    // signature); a free function does neither, and its file is not read.
    let may_be_method = func.sig.receiver().is_some() || mentions_self(&func.sig);
    if !matches!(func.vis, Visibility::Inherited) || !may_be_method {
        return;
    }
    let ident = &func.sig.ident;
    let Some(source) = source_of(ident) else {
        return;
    };
    let places = impls_holding(source, &ident.to_string());
    if places.is_empty() || !places.iter().all(|p| p.of_trait && !p.cached) {
        return;
    }
    errors.at(
        ident.span(),
        format!(
            "`#[cached]` on a method of a trait impl needs `#[cached]` on the `impl` block too \
             (`#[cached] impl Trait for Type {{ .. }}`): the companions (`{ident}_invalidate`, \
             `{ident}_refresh`, ..) are not members of the trait, and the block moves them to \
             an inherent impl"
        ),
    );
}

/// Whether the signature names `Self`.
fn mentions_self(sig: &syn::Signature) -> bool {
    fn walk(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|t| match t {
            TokenTree::Ident(i) => i == "Self",
            TokenTree::Group(g) => walk(g.stream()),
            _ => false,
        })
    }
    walk(quote::ToTokens::to_token_stream(sig))
}

/// The tokens of the file `ident` is written in, if the compiler tells which file it is and
/// it can be read and split into tokens.
fn source_of(ident: &syn::Ident) -> Option<TokenStream> {
    if !proc_macro::is_available() {
        return None;
    }
    // `Span::unwrap` converts to the compiler's span (no `Option` here): available inside a
    // macro, which `is_available` just said this is.
    let path = ident.span().unwrap().local_file()?;
    let text = std::fs::read_to_string(path).ok()?;
    text.parse().ok()
}

/// What is known of an `impl` block that holds a `#[cached]` method of the name looked for.
#[derive(Debug, PartialEq, Eq)]
struct Block {
    /// `impl Trait for Type`.
    of_trait: bool,
    /// The block carries `#[cached]` (its methods are expanded by it, not by themselves).
    cached: bool,
}

/// The `impl` blocks of `tokens`, at any depth (in modules, functions, ..), holding a method
/// `name` that carries `#[cached]`.
fn impls_holding(tokens: TokenStream, name: &str) -> Vec<Block> {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let mut found = Vec::new();
    let mut item_start = 0;
    for (i, token) in tokens.iter().enumerate() {
        let TokenTree::Group(group) = token else {
            if matches!(token, TokenTree::Punct(p) if p.as_char() == ';') {
                item_start = i + 1;
            }
            continue;
        };
        if group.delimiter() != Delimiter::Brace {
            continue;
        }
        let item = &tokens[item_start..i];
        if let Some(header) = impl_header(item)
            && holds_cached_method(group.stream(), name)
        {
            found.push(Block {
                of_trait: is_trait_impl(header),
                cached: item
                    .iter()
                    .enumerate()
                    .any(|(j, t)| is_cached_attr(item, j, t)),
            });
        }
        found.extend(impls_holding(group.stream(), name));
        item_start = i + 1;
    }
    found
}

/// The tokens after `impl` in an item's tokens (before its body), if it is an `impl` block.
fn impl_header(item: &[TokenTree]) -> Option<&[TokenTree]> {
    let at = item
        .iter()
        .position(|t| matches!(t, TokenTree::Ident(i) if i == "impl"))?;
    // Before `impl`, only attributes (inner ones too, at the top of a file or block) and
    // `unsafe` / `default`.
    let prefix_ok = item[..at].iter().all(|t| match t {
        TokenTree::Ident(i) => i == "unsafe" || i == "default",
        TokenTree::Punct(p) => p.as_char() == '#' || p.as_char() == '!',
        TokenTree::Group(g) => g.delimiter() == Delimiter::Bracket,
        TokenTree::Literal(_) => false,
    });
    prefix_ok.then(|| &item[at + 1..])
}

/// Whether an `impl` header is `.. Trait for Type ..`: a `for` that is not `for<'a>`.
fn is_trait_impl(header: &[TokenTree]) -> bool {
    header.iter().enumerate().any(|(i, t)| {
        matches!(t, TokenTree::Ident(id) if id == "for")
            && !matches!(header.get(i + 1), Some(TokenTree::Punct(p)) if p.as_char() == '<')
    })
}

/// Whether an `impl` body holds `fn name` with `#[cached]` (or `#[cached(..)]`) among the
/// attributes of its item.
fn holds_cached_method(body: TokenStream, name: &str) -> bool {
    let tokens: Vec<TokenTree> = body.into_iter().collect();
    let mut item_start = 0;
    for (i, token) in tokens.iter().enumerate() {
        match token {
            TokenTree::Punct(p) if p.as_char() == ';' => item_start = i + 1,
            TokenTree::Group(g) if g.delimiter() == Delimiter::Brace => item_start = i + 1,
            TokenTree::Ident(f) if f == "fn" => {
                let named = matches!(tokens.get(i + 1), Some(TokenTree::Ident(n)) if n == name);
                let item = &tokens[item_start..i];
                if named
                    && item
                        .iter()
                        .enumerate()
                        .any(|(j, t)| is_cached_attr(item, j, t))
                {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// Whether `token`, the `j`th of `item`, is the bracket of an attribute `#[cached]`,
/// `#[cached(..)]` or `#[path::cached(..)]`.
fn is_cached_attr(item: &[TokenTree], j: usize, token: &TokenTree) -> bool {
    let TokenTree::Group(g) = token else {
        return false;
    };
    let after_hash = j > 0 && matches!(&item[j - 1], TokenTree::Punct(p) if p.as_char() == '#');
    if g.delimiter() != Delimiter::Bracket || !after_hash {
        return false;
    }
    // The attribute's path: the tokens before its arguments or `=`.
    let path: Vec<TokenTree> = g
        .stream()
        .into_iter()
        .take_while(|t| match t {
            TokenTree::Ident(_) => true,
            TokenTree::Punct(p) => p.as_char() == ':',
            _ => false,
        })
        .collect();
    matches!(path.last(), Some(TokenTree::Ident(i)) if i == "cached")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn places(source: &str, name: &str) -> Vec<Block> {
        let tokens: TokenStream = source.parse().expect("tokens");
        impls_holding(tokens, name)
    }

    const TRAIT: Block = Block {
        of_trait: true,
        cached: false,
    };

    #[test]
    fn finds_the_impl_block_of_a_cached_method() {
        let source = "
            //! Docs.
            use cache_runtime::cached;
            struct Shop;
            impl Shop {
                #[cached]
                fn stock(&self) -> u32 { 1 }
            }
            impl<T: for<'a> Fn(&'a u8)> Catalog for Wrap<T> where T: Send {
                /// Docs.
                #[cached(ttl = 60)]
                fn price(&self, sku: u32) -> u64 { let x = { 1 }; x }
                fn plain(&self) {}
            }
            #[cached]
            impl Catalog for Other {
                #[cache_runtime::cached(ttl = 60)]
                fn price(&self, sku: u32) -> u64 { 2 }
            }
            mod inner {
                fn f() {
                    unsafe impl Catalog for Shop { #[cached] fn deep(&self) {} }
                }
            }
        ";
        let inherent = Block {
            of_trait: false,
            cached: false,
        };
        let on_block = Block {
            of_trait: true,
            cached: true,
        };
        assert_eq!(places(source, "stock"), [inherent]);
        assert_eq!(places(source, "price"), [TRAIT, on_block]);
        assert_eq!(places(source, "deep"), [TRAIT]);
        assert_eq!(places(source, "plain"), []);
        assert_eq!(places(source, "f"), []);
    }

    #[test]
    fn a_where_clause_with_for_lifetimes_is_not_a_trait_impl() {
        let source = "
            impl<F> Holder<F> where F: for<'a> Fn(&'a str) -> u32 {
                #[cached] fn get(&self, n: u32) -> u32 { n }
            }
        ";
        let inherent = Block {
            of_trait: false,
            cached: false,
        };
        assert_eq!(places(source, "get"), [inherent]);
    }
}
