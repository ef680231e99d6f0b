//! `#[derive(Weigh)]`: a value's heap bytes are its fields' (for an enum, the held variant's).

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Data, DeriveInput, Fields};

/// The `Weigh` impl of `input`; `#[weigh(crate = path)]` names the runtime crate.
pub(crate) fn derive(input: TokenStream) -> TokenStream {
    match syn::parse2::<DeriveInput>(input) {
        Ok(input) => expand(&input).unwrap_or_else(syn::Error::into_compile_error),
        Err(e) => e.into_compile_error(),
    }
}

fn expand(input: &DeriveInput) -> syn::Result<TokenStream> {
    let krate = krate(input)?;
    let body = match &input.data {
        Data::Struct(data) => {
            let (pattern, sum) = destructure(&data.fields, &krate);
            quote!(let Self #pattern = self; #sum)
        }
        Data::Enum(data) => {
            let arms = data.variants.iter().map(|v| {
                let name = &v.ident;
                let (pattern, sum) = destructure(&v.fields, &krate);
                quote!(Self::#name #pattern => #sum,)
            });
            quote!(match self { #(#arms)* })
        }
        Data::Union(u) => {
            return Err(syn::Error::new(
                u.union_token.span,
                "`Weigh` cannot be derived for a union: implement it by hand",
            ));
        }
    };
    let name = &input.ident;
    let mut generics = input.generics.clone();
    for param in generics.type_params_mut() {
        param.bounds.push(syn::parse_quote!(#krate::Weigh));
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics #krate::Weigh for #name #ty_generics #where_clause {
            #[allow(unused_variables)]
            fn heap_bytes(&self) -> usize {
                #body
            }
        }
    })
}

/// A pattern binding every field, and the sum of their heap bytes.
fn destructure(fields: &Fields, krate: &TokenStream) -> (TokenStream, TokenStream) {
    let names: Vec<_> = (0..fields.len()).map(|i| format_ident!("__f{i}")).collect();
    let pattern = match fields {
        Fields::Named(named) => {
            let idents = named.named.iter().map(|f| &f.ident);
            quote!({ #(#idents: #names),* })
        }
        Fields::Unnamed(_) => quote!(( #(#names),* )),
        Fields::Unit => quote!(),
    };
    (
        pattern,
        quote!(0usize #(+ #krate::Weigh::heap_bytes(#names))*),
    )
}

/// `#[weigh(crate = path)]`, else `::cache_runtime`.
fn krate(input: &DeriveInput) -> syn::Result<TokenStream> {
    let mut krate = quote!(::cache_runtime);
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("weigh")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                let path: syn::Path = meta.value()?.parse()?;
                krate = quote!(#path);
                Ok(())
            } else {
                Err(meta.error("`#[weigh(..)]` takes only `crate = path`"))
            }
        })?;
    }
    Ok(krate)
}
