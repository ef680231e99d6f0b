//! The attribute's arguments: parsed into [`Args`], one field per argument with its span.
//!
//! Every mistake is recorded in [`Errors`] and parsing goes on, so one compile shows them all.
//! Here each argument is routed to the setter of its kind (durations, strings, numbers,
//! choices); `values.rs` reads one value each, and `validate.rs` holds the rules between
//! arguments.

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser as _;
use syn::spanned::Spanned as _;
use syn::{Expr, Lit, LitStr};

use crate::errors::Errors;

mod validate;
mod values;

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
pub(crate) enum CompressKind {
    None,
    Zstd,
    Lz4,
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
    /// Bytes.
    pub(crate) max_bytes: Option<At<u64>>,
    pub(crate) compress: Option<At<CompressKind>>,
    /// Bytes.
    pub(crate) compress_min: Option<At<u64>>,
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
    /// The fraction of hits verified, in `(0, 1]`.
    pub(crate) verify: Option<At<f64>>,
    /// Milliseconds.
    pub(crate) l1_ttl: Option<At<u64>>,
    /// The tag templates, in order.
    pub(crate) tags: Option<Vec<LitStr>>,
    /// Loads' spans record the key (`Debug`).
    pub(crate) record_keys: Option<At<bool>>,
    pub(crate) krate: Option<syn::Path>,
    /// A store of the user's (`store = path::ToStore`): a type implementing
    /// `cache_runtime::store::Store`.
    pub(crate) store: Option<syn::Path>,
    /// A function choosing each stored value's lifetime (`ttl_fn = path::to_fn`).
    pub(crate) ttl_fn: Option<syn::Path>,
    /// `batch`: the function loads many keys at once (`expand/batch.rs`).
    pub(crate) batch: Option<Span>,
}

const NAMES: &str = "`ttl`, `key`, `name`, `null_ttl`, `jitter`, `max_entries`, `max_bytes`, \
                     `backend`, `lock`, `lock_timeout`, `codec`, `compress`, `compress_min`, `stale`, `stale_if_error`, \
                     `load_timeout`, `early_refresh`, `verify`, `l1_ttl`, `tags`, `record_keys`, `store`, \
                     `ttl_fn`, `batch`, `crate`";

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
                return values::skip_value(&meta);
            };
            if name == "batch" {
                if meta.input.peek(syn::Token![=]) {
                    errors.at(
                        name.span(),
                        "`batch` takes no value: write `#[cached(batch, ttl = 60)]`",
                    );
                    return values::skip_value(&meta);
                }
                set(&mut args.batch, name.span(), &name, errors);
                return Ok(());
            }
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

    /// Routes `name = value` to the setter of its kind.
    fn parse_one(&mut self, name: &syn::Ident, value: &Expr, errors: &mut Errors) {
        match name.to_string().as_str() {
            "ttl" | "null_ttl" | "lock_timeout" | "stale" | "stale_if_error" | "load_timeout"
            | "l1_ttl" => self.set_duration(name, value, errors),
            "key" | "name" | "crate" => self.set_string(name, value, errors),
            "jitter" | "early_refresh" | "verify" | "max_entries" => {
                self.set_number(name, value, errors);
            }
            "backend" | "lock" | "codec" | "compress" => self.set_choice(name, value, errors),
            "max_bytes" | "compress_min" => self.set_size(name, value, errors),
            "store" => match value {
                Expr::Path(path) if path.qself.is_none() => {
                    set(&mut self.store, path.path.clone(), name, errors);
                }
                _ => errors.at(
                    value.span(),
                    "`store` takes the path of a type that implements \
                     `cache_runtime::store::Store`: `store = crate::MyStore`",
                ),
            },
            "ttl_fn" => match value {
                Expr::Path(path) if path.qself.is_none() => {
                    set(&mut self.ttl_fn, path.path.clone(), name, errors);
                }
                _ => errors.at(
                    value.span(),
                    "`ttl_fn` takes the path of a function from the stored value to its \
                     lifetime: `ttl_fn = token_ttl` with `fn token_ttl(t: &Token) -> Duration`",
                ),
            },
            "tags" => {
                if let Some(tags) = values::tags(value, errors) {
                    set(&mut self.tags, tags, name, errors);
                }
            }
            "record_keys" => match values::literal(value) {
                Some(Lit::Bool(b)) => {
                    let at = At {
                        value: b.value,
                        span: value.span(),
                    };
                    set(&mut self.record_keys, at, name, errors);
                }
                _ => errors.at(
                    value.span(),
                    "`record_keys` takes `true` or `false`: `record_keys = true` records each \
                     load's key (its `Debug` text) in its `cache.load` span",
                ),
            },
            other => errors.at(
                name.span(),
                format!("unknown argument `{other}`: expected one of {NAMES}"),
            ),
        }
    }

    /// The durations, in milliseconds. Only `null_ttl` may be zero (it turns null caching
    /// off).
    fn set_duration(&mut self, name: &syn::Ident, value: &Expr, errors: &mut Errors) {
        let arg = name.to_string();
        let slot = match arg.as_str() {
            "ttl" => &mut self.ttl,
            "null_ttl" => &mut self.null_ttl,
            "lock_timeout" => &mut self.lock_timeout,
            "stale" => &mut self.stale,
            "stale_if_error" => &mut self.stale_if_error,
            "load_timeout" => &mut self.load_timeout,
            "l1_ttl" => &mut self.l1_ttl,
            _ => return,
        };
        let span = value.span();
        match values::duration_ms(value, &arg, errors) {
            Some(0) if arg != "null_ttl" => errors.at(span, zero_duration(&arg)),
            Some(ms) => set(slot, At { value: ms, span }, name, errors),
            None => {}
        }
    }

    /// The strings: `key` (a template, read by `key.rs`), `name` and `crate`.
    fn set_string(&mut self, name: &syn::Ident, value: &Expr, errors: &mut Errors) {
        let span = value.span();
        match name.to_string().as_str() {
            "key" => {
                if let Some(lit) = values::string(value, "key", "key = \"user:{id}\"", errors) {
                    set(&mut self.key, lit, name, errors);
                }
            }
            "name" => match values::string(value, "name", "name = \"user:profile\"", errors) {
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
            "crate" => {
                let example = "crate = \"my_crate::cache_runtime\"";
                if let Some(lit) = values::string(value, "crate", example, errors) {
                    match lit.parse::<syn::Path>() {
                        Ok(path) => set(&mut self.krate, path, name, errors),
                        Err(_) => errors.at(
                            span,
                            format!("`crate` must be a path to `cache_runtime`: `{example}`"),
                        ),
                    }
                }
            }
            _ => {}
        }
    }

    /// The numbers: `jitter`, `early_refresh`, `verify` and `max_entries`.
    fn set_number(&mut self, name: &syn::Ident, value: &Expr, errors: &mut Errors) {
        let span = value.span();
        match name.to_string().as_str() {
            "jitter" => {
                if let Some(j) = values::jitter(value, errors) {
                    set(&mut self.jitter, At { value: j, span }, name, errors);
                }
            }
            "early_refresh" => {
                if let Some(beta) = values::early_refresh(value, errors) {
                    let at = At { value: beta, span };
                    set(&mut self.early_refresh, at, name, errors);
                }
            }
            "verify" => {
                if let Some(fraction) = values::verify(value, errors) {
                    let at = At {
                        value: fraction,
                        span,
                    };
                    set(&mut self.verify, at, name, errors);
                }
            }
            "max_entries" => match values::integer(value) {
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
            _ => {}
        }
    }

    /// The choices among named strings: `backend`, `lock` and `codec`.
    fn set_choice(&mut self, name: &syn::Ident, value: &Expr, errors: &mut Errors) {
        let span = value.span();
        match name.to_string().as_str() {
            "backend" => {
                let choices = [
                    ("memory", Backend::Memory),
                    ("redis", Backend::Redis),
                    ("tiered", Backend::Tiered),
                ];
                if let Some(b) = values::choice(value, "backend", &choices, errors) {
                    set(&mut self.backend, At { value: b, span }, name, errors);
                }
            }
            "lock" => {
                let choices = [
                    ("none", LockKind::None),
                    ("local", LockKind::Local),
                    ("distributed", LockKind::Distributed),
                ];
                if let Some(l) = values::choice(value, "lock", &choices, errors) {
                    set(&mut self.lock, At { value: l, span }, name, errors);
                }
            }
            "codec" => {
                let choices = [
                    ("msgpack", CodecKind::MessagePack),
                    ("json", CodecKind::Json),
                ];
                if let Some(c) = values::choice(value, "codec", &choices, errors) {
                    set(&mut self.codec, At { value: c, span }, name, errors);
                }
            }
            "compress" => {
                let choices = [
                    ("zstd", CompressKind::Zstd),
                    ("lz4", CompressKind::Lz4),
                    ("none", CompressKind::None),
                ];
                if let Some(c) = values::choice(value, "compress", &choices, errors) {
                    set(&mut self.compress, At { value: c, span }, name, errors);
                }
            }
            _ => {}
        }
    }

    /// The sizes in bytes: `max_bytes` (at least 1) and `compress_min`.
    fn set_size(&mut self, name: &syn::Ident, value: &Expr, errors: &mut Errors) {
        let arg = name.to_string();
        let span = value.span();
        let slot = match arg.as_str() {
            "max_bytes" => &mut self.max_bytes,
            _ => &mut self.compress_min,
        };
        match values::bytes(value, &arg, errors) {
            Some(0) if arg == "max_bytes" => errors.at(
                span,
                "`max_bytes` must be more than zero: write `max_bytes = \"256MiB\"`",
            ),
            Some(b) => set(slot, At { value: b, span }, name, errors),
            None => {}
        }
    }
}

/// The error of a duration `arg` written as zero (every duration but `null_ttl`).
fn zero_duration(arg: &str) -> String {
    match arg {
        "ttl" => "`ttl` must be more than zero: write `ttl = 60` (seconds) or \
                  `ttl = \"500ms\"`, or remove `ttl` to keep entries until they are evicted \
                  or invalidated"
            .to_owned(),
        "lock_timeout" => "`lock_timeout` must be more than zero: write `lock_timeout = \"5s\"`, \
                           or `lock = \"none\"` to never wait for another caller's load"
            .to_owned(),
        _ => format!("`{arg}` must be more than zero: write `{arg} = \"30s\"`, or remove it"),
    }
}
