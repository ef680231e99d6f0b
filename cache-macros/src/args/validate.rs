//! The rules between arguments, checked once all are read: what `l1_ttl`, the freshness
//! arguments, `lock = "distributed"` and `codec` need of the others.

use super::{Args, Backend, LockKind};
use crate::errors::Errors;

impl Args {
    /// Records every rule between arguments that these break.
    pub(crate) fn validate(&self, errors: &mut Errors) {
        self.check_phases(errors);
        self.check_tiers(errors);
        self.check_memory(errors);
        self.check_store(errors);
    }

    /// `store` names the shared store: `backend` may only say to put an L1 in front of it.
    fn check_store(&self, errors: &mut Errors) {
        let (Some(store), Some(b)) = (&self.store, self.backend) else {
            return;
        };
        let _ = store;
        let named = match b.value {
            Backend::Tiered => return,
            Backend::Memory => "memory",
            Backend::Redis => "redis",
        };
        errors.at(
            b.span,
            format!(
                "`store` names where entries live, and `backend = \"{named}\"` names another: \
                 keep `store`, with `backend = \"tiered\"` to put an in-process L1 in front of \
                 it, or remove `store`"
            ),
        );
    }

    /// `lock = "distributed"` and `codec` concern Redis, not `backend = "memory"`.
    fn check_memory(&self, errors: &mut Errors) {
        if self.backend.map(|b| b.value) != Some(Backend::Memory) {
            return;
        }
        if let Some(l) = self.lock
            && l.value == LockKind::Distributed
        {
            errors.at(
                l.span,
                "`lock = \"distributed\"` coordinates processes through Redis, but this function \
                 uses `backend = \"memory\"`: write `lock = \"local\"`, or `backend = \"redis\"`",
            );
        }
        if let Some(c) = self.codec {
            errors.at(
                c.span,
                "`codec` chooses how values are written to Redis, but this function uses \
                 `backend = \"memory\"`, which keeps values as they are: remove `codec`",
            );
        }
        for (arg, at) in [
            ("compress", self.compress.map(|c| c.span)),
            ("compress_min", self.compress_min.map(|c| c.span)),
        ] {
            if let Some(span) = at {
                errors.at(
                    span,
                    format!(
                        "`{arg}` concerns values written to Redis, but this function uses \
                         `backend = \"memory\"`, which keeps values as they are: remove `{arg}` \
                         (bound memory with `max_bytes`)"
                    ),
                );
            }
        }
    }

    /// `l1_ttl` is the life of a tiered cache's in-process copies.
    fn check_tiers(&self, errors: &mut Errors) {
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

    /// The freshness arguments need `ttl` (or `ttl_fn`), and `load_timeout` needs a value to
    /// answer with.
    fn check_phases(&self, errors: &mut Errors) {
        let phases = [
            ("stale", self.stale.map(|a| a.span)),
            ("stale_if_error", self.stale_if_error.map(|a| a.span)),
            ("load_timeout", self.load_timeout.map(|a| a.span)),
            ("early_refresh", self.early_refresh.map(|a| a.span)),
        ];
        if self.ttl.is_none() && self.ttl_fn.is_none() {
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
