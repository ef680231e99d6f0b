//! The attribute's arguments: parsed into [`Args`], one field per argument with its span.
//!
//! Every mistake is recorded in [`Errors`] and parsing goes on, so one compile shows them all.

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser as _;
use syn::spanned::Spanned as _;
use syn::{Expr, ExprLit, Lit, LitStr};

use crate::duration;
use crate::errors::Errors;

/// A value and where it was written.
#[derive(Clone, Copy)]
pub(crate) struct At<T> {
    pub(crate) value: T,
    pub(crate) span: Span,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Memory,
    Redis,
    Tiered,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum CodecKind {
    MessagePack,
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockKind {
    None,
    Local,
    Distributed,
}

/// The arguments as written; `None` where an argument was left out.
#[derive(Default)]
pub(crate) struct Args {
    /// Milliseconds.
    pub(crate) ttl: Option<At<u64>>,
    pub(crate) key: Option<LitStr>,
    pub(crate) name: Option<LitStr>,
    /// Milliseconds; zero turns null caching off.
    pub(crate) null_ttl: Option<At<u64>>,
    pub(crate) jitter: Option<At<f64>>,
    pub(crate) max_entries: Option<At<u64>>,
    pub(crate) backend: Option<At<Backend>>,
    pub(crate) lock: Option<At<LockKind>>,
    /// Milliseconds.
    pub(crate) lock_timeout: Option<At<u64>>,
    pub(crate) codec: Option<At<CodecKind>>,
    /// Milliseconds.
    pub(crate) stale: Option<At<u64>>,
    /// Milliseconds.
    pub(crate) stale_if_error: Option<At<u64>>,
    /// Milliseconds.
    pub(crate) load_timeout: Option<At<u64>>,
    pub(crate) early_refresh: Option<At<f64>>,
    /// Milliseconds.
    pub(crate) l1_ttl: Option<At<u64>>,
    /// The tag templates, in order.
    pub(crate) tags: Option<Vec<LitStr>>,
    /// Loads' spans record the key (`Debug`).
    pub(crate) record_keys: Option<At<bool>>,
    pub(crate) krate: Option<syn::Path>,
}

/// At most this many tags on one function (each is read on every Redis read of it).
const MAX_TAGS: usize = 16;

const NAMES: &str = "`ttl`, `key`, `name`, `null_ttl`, `jitter`, `max_entries`, `backend`, \
                     `lock`, `lock_timeout`, `codec`, `stale`, `stale_if_error`, \
                     `load_timeout`, `early_refresh`, `l1_ttl`, `tags`, `record_keys`, `crate`";

/// Stores `value` in `slot` unless the argument was given before.
fn set<T>(slot: &mut Option<T>, value: T, name: &syn::Ident, errors: &mut Errors) {
    if slot.is_some() {
        errors.at(
            name.span(),
            format!("duplicate argument `{name}`: give it once"),
        );
    } else {
        *slot = Some(value);
    }
}

impl Args {
    /// Parses the tokens inside `#[cached(...)]`.
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> Args {
        let mut args = Args::default();
        let parser = syn::meta::parser(|meta| {
            let Some(name) = meta.path.get_ident().cloned() else {
                errors.at(meta.path.span(), format!("expected one of {NAMES}"));
                return skip_value(&meta);
            };
            if !meta.input.peek(syn::Token![=]) {
                errors.at(
                    name.span(),
                    format!("`{name}` needs a value: `{name} = ...`"),
                );
                return Ok(());
            }
            let value: Expr = meta.value()?.parse()?;
            args.parse_one(&name, &value, errors);
            Ok(())
        });
        if let Err(e) = parser.parse2(tokens) {
            errors.push(e);
        }
        args
    }

    fn parse_one(&mut self, name: &syn::Ident, value: &Expr, errors: &mut Errors) {
        let span = value.span();
        match name.to_string().as_str() {
            "ttl" => match duration_ms(value, "ttl", errors) {
                Some(0) => errors.at(
                    span,
                    "`ttl` must be more than zero: write `ttl = 60` (seconds) or \
                     `ttl = \"500ms\"`, or remove `ttl` to keep entries until they are evicted \
                     or invalidated",
                ),
                Some(ms) => set(&mut self.ttl, At { value: ms, span }, name, errors),
                None => {}
            },
            "null_ttl" => {
                if let Some(ms) = duration_ms(value, "null_ttl", errors) {
                    set(&mut self.null_ttl, At { value: ms, span }, name, errors);
                }
            }
            "lock_timeout" => match duration_ms(value, "lock_timeout", errors) {
                Some(0) => errors.at(
                    span,
                    "`lock_timeout` must be more than zero: write `lock_timeout = \"5s\"`, or \
                     `lock = \"none\"` to never wait for another caller's load",
                ),
                Some(ms) => set(&mut self.lock_timeout, At { value: ms, span }, name, errors),
                None => {}
            },
            "stale" | "stale_if_error" | "load_timeout" | "l1_ttl" => {
                let arg = name.to_string();
                let slot = match arg.as_str() {
                    "stale" => &mut self.stale,
                    "stale_if_error" => &mut self.stale_if_error,
                    "l1_ttl" => &mut self.l1_ttl,
                    _ => &mut self.load_timeout,
                };
                match duration_ms(value, &arg, errors) {
                    Some(0) => errors.at(
                        span,
                        format!(
                            "`{arg}` must be more than zero: write `{arg} = \"30s\"`, or remove it"
                        ),
                    ),
                    Some(ms) => set(slot, At { value: ms, span }, name, errors),
                    None => {}
                }
            }
            "early_refresh" => {
                if let Some(beta) = early_refresh(value, errors) {
                    set(
                        &mut self.early_refresh,
                        At { value: beta, span },
                        name,
                        errors,
                    );
                }
            }
            "key" => {
                if let Some(lit) = string(value, "key", "key = \"user:{id}\"", errors) {
                    set(&mut self.key, lit, name, errors);
                }
            }
            "name" => match string(value, "name", "name = \"user:profile\"", errors) {
                Some(lit) if lit.value().is_empty() => errors.at(
                    span,
                    "`name` must not be empty: write `name = \"user:profile\"`, or remove it",
                ),
                Some(lit) if lit.value().contains(['{', '}']) => errors.at(
                    span,
                    "`name` must not contain `{` or `}`: Redis Cluster would read them as a hash \
                     tag and move the entries to another slot than their locks",
                ),
                Some(lit) => set(&mut self.name, lit, name, errors),
                None => {}
            },
            "jitter" => {
                if let Some(j) = jitter(value, errors) {
                    set(&mut self.jitter, At { value: j, span }, name, errors);
                }
            }
            "max_entries" => match integer(value) {
                Some(0) => errors.at(
                    span,
                    "`max_entries` must be at least 1: write `max_entries = 10_000`",
                ),
                Some(n) => set(&mut self.max_entries, At { value: n, span }, name, errors),
                None => errors.at(
                    span,
                    "`max_entries` takes a whole number of entries: `max_entries = 10_000`",
                ),
            },
            "backend" => {
                let choices = [
                    ("memory", Backend::Memory),
                    ("redis", Backend::Redis),
                    ("tiered", Backend::Tiered),
                ];
                if let Some(b) = choice(value, "backend", &choices, errors) {
                    set(&mut self.backend, At { value: b, span }, name, errors);
                }
            }
            "lock" => {
                let choices = [
                    ("none", LockKind::None),
                    ("local", LockKind::Local),
                    ("distributed", LockKind::Distributed),
                ];
                if let Some(l) = choice(value, "lock", &choices, errors) {
                    set(&mut self.lock, At { value: l, span }, name, errors);
                }
            }
            "codec" => {
                let choices = [
                    ("msgpack", CodecKind::MessagePack),
                    ("json", CodecKind::Json),
                ];
                if let Some(c) = choice(value, "codec", &choices, errors) {
                    set(&mut self.codec, At { value: c, span }, name, errors);
                }
            }
            "tags" => {
                if let Some(tags) = tags(value, errors) {
                    set(&mut self.tags, tags, name, errors);
                }
            }
            "record_keys" => match literal(value) {
                Some(Lit::Bool(b)) => set(
                    &mut self.record_keys,
                    At {
                        value: b.value,
                        span,
                    },
                    name,
                    errors,
                ),
                _ => errors.at(
                    span,
                    "`record_keys` takes `true` or `false`: `record_keys = true` records each \
                     load's key (its `Debug` text) in its `cache.load` span",
                ),
            },
            "crate" => {
                let example = "crate = \"my_crate::cache_runtime\"";
                if let Some(lit) = string(value, "crate", example, errors) {
                    match lit.parse::<syn::Path>() {
                        Ok(path) => set(&mut self.krate, path, name, errors),
                        Err(_) => errors.at(
                            span,
                            format!("`crate` must be a path to `cache_runtime`: `{example}`"),
                        ),
                    }
                }
            }
            other => errors.at(
                name.span(),
                format!("unknown argument `{other}`: expected one of {NAMES}"),
            ),
        }
    }
}

/// `tags = ["catalog", "product:{id}"]`: a non-empty list of distinct string templates.
fn tags(value: &Expr, errors: &mut Errors) -> Option<Vec<LitStr>> {
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
fn skip_value(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        let _: Expr = meta.value()?.parse()?;
    }
    Ok(())
}

fn literal(value: &Expr) -> Option<&Lit> {
    match value {
        Expr::Lit(ExprLit { lit, .. }) => Some(lit),
        Expr::Group(g) => literal(&g.expr),
        _ => None,
    }
}

fn integer(value: &Expr) -> Option<u64> {
    match literal(value)? {
        Lit::Int(i) => i.base10_parse().ok(),
        _ => None,
    }
}

/// Whole seconds (`3600`) or a duration string (`"1h"`), in milliseconds.
fn duration_ms(value: &Expr, name: &str, errors: &mut Errors) -> Option<u64> {
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

fn string(value: &Expr, name: &str, example: &str, errors: &mut Errors) -> Option<LitStr> {
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

fn jitter(value: &Expr, errors: &mut Errors) -> Option<f64> {
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
fn early_refresh(value: &Expr, errors: &mut Errors) -> Option<f64> {
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

impl Args {
    /// `l1_ttl` is the life of a tiered cache's in-process copies.
    pub(crate) fn check_tiers(&self, errors: &mut Errors) {
        if let Some(l1) = self.l1_ttl
            && self.backend.map(|b| b.value) != Some(Backend::Tiered)
        {
            errors.at(
                l1.span,
                "`l1_ttl` is the life of the in-process copies of `backend = \"tiered\"`: add \
                 `backend = \"tiered\"`, or remove `l1_ttl`",
            );
        }
    }

    /// The freshness arguments need `ttl`, and `load_timeout` needs a value to answer with.
    pub(crate) fn check_phases(&self, errors: &mut Errors) {
        let phases = [
            ("stale", self.stale.map(|a| a.span)),
            ("stale_if_error", self.stale_if_error.map(|a| a.span)),
            ("load_timeout", self.load_timeout.map(|a| a.span)),
            ("early_refresh", self.early_refresh.map(|a| a.span)),
        ];
        if self.ttl.is_none() {
            for (arg, span) in phases {
                if let Some(span) = span {
                    errors.at(
                        span,
                        format!(
                            "`{arg}` acts around an entry's expiry, and this function's entries \
                             never expire: add `ttl`, e.g. `ttl = 60`"
                        ),
                    );
                }
            }
            return;
        }
        if let Some(t) = self.load_timeout
            && self.stale.is_none()
            && self.stale_if_error.is_none()
        {
            errors.at(
                t.span,
                "`load_timeout` answers a slow load with a value kept past its expiry, and this \
                 function keeps none: add `stale_if_error = \"10m\"` (or `stale`)",
            );
        }
    }
}

fn choice<T: Copy>(
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
