//! One argument's value: a duration, a string, a number, a choice or the tag list, read from
//! its expression. Each reader records its own error, at the value, and returns `None`.

use syn::spanned::Spanned as _;
use syn::{Expr, ExprLit, Lit, LitStr};

use crate::duration;
use crate::errors::Errors;

/// At most this many tags on one function (each is read on every Redis read of it).
const MAX_TAGS: usize = 16;

/// `tags = ["catalog", "product:{id}"]`: a non-empty list of distinct string templates.
pub(super) fn tags(value: &Expr, errors: &mut Errors) -> Option<Vec<LitStr>> {
    const EXAMPLE: &str = "`tags = [\"catalog\", \"product:{id}\"]`";
    let Expr::Array(array) = value else {
        errors.at(
            value.span(),
            format!("`tags` takes a list of tag templates: {EXAMPLE}"),
        );
        return None;
    };
    if array.elems.is_empty() {
        errors.at(
            value.span(),
            format!("`tags` is empty: name at least one tag, {EXAMPLE}, or remove it"),
        );
        return None;
    }
    if array.elems.len() > MAX_TAGS {
        errors.at(
            value.span(),
            format!(
                "at most {MAX_TAGS} tags per function (each is read with every Redis read): \
                 this one has {}",
                array.elems.len()
            ),
        );
        return None;
    }
    let mut out: Vec<LitStr> = Vec::new();
    for elem in &array.elems {
        match literal(elem) {
            Some(Lit::Str(lit)) if lit.value().is_empty() => errors.at(
                lit.span(),
                "a tag is empty: write its text, e.g. `\"catalog\"` or `\"product:{id}\"`",
            ),
            Some(Lit::Str(lit)) if out.iter().any(|o| o.value() == lit.value()) => errors.at(
                lit.span(),
                format!("duplicate tag `{}`: give it once", lit.value()),
            ),
            Some(Lit::Str(lit)) => out.push(lit.clone()),
            _ => errors.at(
                elem.span(),
                format!("each tag is a string template: {EXAMPLE}"),
            ),
        }
    }
    (out.len() == array.elems.len()).then_some(out)
}

/// Skips `= value` after a path that is not an argument name.
pub(super) fn skip_value(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        let _: Expr = meta.value()?.parse()?;
    }
    Ok(())
}

pub(super) fn literal(value: &Expr) -> Option<&Lit> {
    match value {
        Expr::Lit(ExprLit { lit, .. }) => Some(lit),
        Expr::Group(g) => literal(&g.expr),
        _ => None,
    }
}

pub(super) fn integer(value: &Expr) -> Option<u64> {
    match literal(value)? {
        Lit::Int(i) => i.base10_parse().ok(),
        _ => None,
    }
}

/// Whole seconds (`3600`) or a duration string (`"1h"`), in milliseconds.
pub(super) fn duration_ms(value: &Expr, name: &str, errors: &mut Errors) -> Option<u64> {
    let wrong = format!(
        "`{name}` takes whole seconds or a duration string: `{name} = 90` or `{name} = \"1m30s\"` \
         (units `ms`, `s`, `m`, `h`, `d`)"
    );
    match literal(value) {
        Some(Lit::Int(i)) => match i
            .base10_parse::<u64>()
            .ok()
            .and_then(|s| s.checked_mul(1000))
        {
            Some(ms) => Some(ms),
            None => {
                errors.at(i.span(), wrong);
                None
            }
        },
        Some(Lit::Str(s)) => match duration::parse_ms(&s.value()) {
            Ok(ms) => Some(ms),
            Err(why) => {
                errors.at(
                    s.span(),
                    format!("bad duration `{}` for `{name}`: {why}; {wrong}", s.value()),
                );
                None
            }
        },
        _ => {
            errors.at(value.span(), wrong);
            None
        }
    }
}

pub(super) fn string(
    value: &Expr,
    name: &str,
    example: &str,
    errors: &mut Errors,
) -> Option<LitStr> {
    match literal(value) {
        Some(Lit::Str(s)) => Some(s.clone()),
        _ => {
            errors.at(
                value.span(),
                format!("`{name}` takes a string: `{example}`"),
            );
            None
        }
    }
}

pub(super) fn jitter(value: &Expr, errors: &mut Errors) -> Option<f64> {
    let j = match literal(value) {
        Some(Lit::Float(f)) => f.base10_parse::<f64>().ok(),
        Some(Lit::Int(i)) => i.base10_parse::<u32>().ok().map(f64::from),
        _ => None,
    };
    match j {
        Some(j) if (0.0..=1.0).contains(&j) => Some(j),
        _ => {
            errors.at(
                value.span(),
                "`jitter` must be a number from 0 to 1, the fraction of `ttl` added at random: \
                 `jitter = 0.1`",
            );
            None
        }
    }
}

/// XFetch's β: a finite number ≥ 0 (1.0 is the paper's default; larger refreshes earlier).
pub(super) fn early_refresh(value: &Expr, errors: &mut Errors) -> Option<f64> {
    let beta = match literal(value) {
        Some(Lit::Float(f)) => f.base10_parse::<f64>().ok(),
        Some(Lit::Int(i)) => i.base10_parse::<u32>().ok().map(f64::from),
        _ => None,
    };
    match beta {
        Some(b) if b.is_finite() && b >= 0.0 => Some(b),
        _ => {
            errors.at(
                value.span(),
                "`early_refresh` takes XFetch's β, a number ≥ 0: `early_refresh = 1.0` \
                 (larger refreshes earlier; 0 never)",
            );
            None
        }
    }
}

/// `verify`'s fraction of hits: a number in `(0, 1]`.
pub(super) fn verify(value: &Expr, errors: &mut Errors) -> Option<f64> {
    let fraction = match literal(value) {
        Some(Lit::Float(f)) => f.base10_parse::<f64>().ok(),
        Some(Lit::Int(i)) => i.base10_parse::<u32>().ok().map(f64::from),
        _ => None,
    };
    match fraction {
        Some(f) if f > 0.0 && f <= 1.0 => Some(f),
        _ => {
            errors.at(
                value.span(),
                "`verify` takes the fraction of hits to verify, more than 0 and at most 1: \
                 `verify = 0.01` re-runs the load of 1% of hits off the caller's path",
            );
            None
        }
    }
}

/// One of `choices`, by its name written as a string.
pub(super) fn choice<T: Copy>(
    value: &Expr,
    name: &str,
    choices: &[(&str, T)],
    errors: &mut Errors,
) -> Option<T> {
    let written = match literal(value) {
        Some(Lit::Str(s)) => Some(s.value()),
        _ => None,
    };
    let found = written
        .as_deref()
        .and_then(|w| choices.iter().find(|(n, _)| *n == w));
    if found.is_none() {
        let list: Vec<String> = choices
            .iter()
            .map(|(n, _)| format!("`{name} = \"{n}\"`"))
            .collect();
        errors.at(
            value.span(),
            format!("`{name}` must be one of {}", list.join(", ")),
        );
    }
    found.map(|(_, t)| *t)
}

/// A size in bytes: a whole number (`max_bytes = 1_000_000`) or a string with a unit,
/// `"256MiB"`, `"64 MB"`, `"512KiB"`, `"1GiB"`, `"100B"` (KB, MB, GB are powers of 1000;
/// KiB, MiB, GiB of 1024).
pub(super) fn bytes(value: &Expr, name: &str, errors: &mut Errors) -> Option<u64> {
    let example = format!("`{name} = \"256MiB\"` or `{name} = 1_048_576` (bytes)");
    let parsed = match literal(value) {
        Some(Lit::Int(i)) => i.base10_parse::<u64>().ok(),
        Some(Lit::Str(s)) => size(&s.value()),
        _ => None,
    };
    if parsed.is_none() {
        errors.at(
            value.span(),
            format!(
                "`{name}` takes a size: {example}; units B, KB, MB, GB (powers of 1000), KiB, \
                 MiB, GiB (powers of 1024)"
            ),
        );
    }
    parsed
}

/// `"256MiB"` in bytes; `None` for anything else (or more than `u64::MAX`).
fn size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit() && c != '_')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.replace('_', "").parse().ok()?;
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(scale)
}

#[cfg(test)]
mod size_tests {
    #[test]
    fn sizes_read_with_their_units() {
        assert_eq!(super::size("256MiB"), Some(256 << 20));
        assert_eq!(super::size("64 MB"), Some(64_000_000));
        assert_eq!(super::size("1_024"), Some(1024));
        assert_eq!(super::size("2KiB"), Some(2048));
        assert_eq!(super::size("1.5MiB"), None);
        assert_eq!(super::size("MiB"), None);
        assert_eq!(super::size("5 parsecs"), None);
        assert_eq!(super::size("99999999999GiB"), None);
    }
}
