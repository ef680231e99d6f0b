//! The static home of one cached function's caches.
//!
//! Generated code keeps one [`Cell`] in a `static` per cached function. The cache in it has a
//! type the macro cannot write (it depends on the return type's shape, which only the type
//! checker knows: see `shape.rs`), so the cell keeps it type-erased and hands it back typed.
//!
//! A cell holds one cache per *owner*: the `Self` type of a method (`()` for a free function).
//! A cached method in a generic `impl<T> Repo<T>` is one function per `T`, with a body that
//! may depend on `T`, so `Repo<Orders>` and `Repo<Users>` get caches of their own and never
//! read each other's entries.
//!
//! The first cache made is read with one atomic load and two type-id comparisons; the others
//! (the second and later types of a generic `impl`) behind a mutex.

use std::any::{Any, TypeId};
use std::sync::{Mutex, OnceLock, PoisonError};

type Erased = &'static (dyn Any + Send + Sync);

struct Owned {
    owner: TypeId,
    cache: Erased,
}

/// The caches of one cached function, one per owner type.
pub struct Cell {
    first: OnceLock<Owned>,
    others: Mutex<Vec<Owned>>,
}

impl Default for Cell {
    fn default() -> Self {
        Self::new()
    }
}

impl Cell {
    /// An empty cell, for a `static`.
    pub const fn new() -> Self {
        Cell {
            first: OnceLock::new(),
            others: Mutex::new(Vec::new()),
        }
    }

    /// The cache of `owner`, made by `init` on first use (and then passed to `made`).
    #[inline(always)]
    pub fn get_or_init<C: Any + Send + Sync>(
        &'static self,
        owner: TypeId,
        init: impl FnOnce() -> C,
        made: impl FnOnce(&'static C),
    ) -> &'static C {
        if let Some(first) = self.first.get()
            && first.owner == owner
            && let Some(cache) = first.cache.downcast_ref::<C>()
        {
            return cache;
        }
        self.slow(owner, init, made)
    }

    #[cold]
    fn slow<C: Any + Send + Sync>(
        &'static self,
        owner: TypeId,
        init: impl FnOnce() -> C,
        made: impl FnOnce(&'static C),
    ) -> &'static C {
        // Every cache is made under this lock, so each (owner, type) is made once.
        let mut others = self.others.lock().unwrap_or_else(PoisonError::into_inner);
        let found = self
            .first
            .get()
            .into_iter()
            .chain(others.iter())
            .filter(|o| o.owner == owner)
            .find_map(|o| o.cache.downcast_ref::<C>());
        if let Some(cache) = found {
            return cache;
        }
        let cache: &'static C = Box::leak(Box::new(init()));
        let owned = Owned { owner, cache };
        if let Err(owned) = self.first.set(owned) {
            others.push(owned);
        }
        made(cache);
        cache
    }
}

/// The name of a method's cache: given `name = "..."`, the name followed by the type arguments
/// of `Self` (`repo<app::Orders>` for `name = "repo"` in `Repo<app::Orders>`), so the caches
/// of a generic `impl` have names (and Redis keys) of their own, or the name alone when `Self`
/// has no type arguments; without a name, `Self`'s type name and the method's
/// (`app::Shop::find`). `{` and `}` of the type name (closure types print as `{{closure}}`)
/// are escaped as `%7B` and `%7D`: Redis Cluster would read them as a hash tag and move a key
/// away from its lock's slot.
pub fn method_name(given: Option<&str>, self_type: &str, method: &str) -> String {
    let name = match given {
        Some(name) => match self_type.find('<') {
            Some(at) => format!("{name}{}", &self_type[at..]),
            None => name.to_owned(),
        },
        None => format!("{self_type}::{method}"),
    };
    match name.contains(['{', '}']) {
        true => name.replace('{', "%7B").replace('}', "%7D"),
        false => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names_carry_the_type_arguments() {
        assert_eq!(
            method_name(Some("repo"), "app::Repo<app::Orders>", "find"),
            "repo<app::Orders>"
        );
        assert_eq!(method_name(Some("repo"), "app::Shop", "find"), "repo");
        assert_eq!(method_name(None, "app::Shop", "find"), "app::Shop::find");
    }

    /// Issue 14, found in review: `Self`'s type name can hold braces (`{{closure}}`, and newer
    /// compilers' `{closure@src/main.rs:3:5}`); in a cache name they would be a Redis Cluster
    /// hash tag. Every brace is escaped, with a name given or not.
    #[test]
    fn braces_of_type_names_are_escaped() {
        for (given, self_type) in [
            (Some("repo"), "app::Repo<app::main::{{closure}}>"),
            (Some("repo"), "app::Repo<{closure@src/main.rs:3:5}>"),
            (None, "app::Repo<app::main::{{closure}}>"),
            (None, "app::Repo<{async block@src/main.rs:9:1}>"),
        ] {
            let name = method_name(given, self_type, "find");
            assert!(!name.contains(['{', '}']), "{name}");
            assert!(name.contains("%7B") && name.contains("%7D"), "{name}");
        }
    }

    #[test]
    fn one_cache_per_owner_made_once() {
        static CELL: Cell = Cell::new();
        let a = CELL.get_or_init(TypeId::of::<u8>(), || String::from("u8"), drop);
        let b = CELL.get_or_init(TypeId::of::<u16>(), || String::from("u16"), drop);
        let a2 = CELL.get_or_init(TypeId::of::<u8>(), || String::from("again"), drop);
        let b2 = CELL.get_or_init(TypeId::of::<u16>(), || String::from("again"), drop);
        assert_eq!((a.as_str(), b.as_str()), ("u8", "u16"));
        assert!(std::ptr::eq(a, a2) && std::ptr::eq(b, b2));
    }

    #[test]
    fn concurrent_first_use_makes_one_cache() {
        static CELL: Cell = Cell::new();
        let made = std::sync::atomic::AtomicUsize::new(0);
        let ptrs: Vec<usize> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        let c = CELL.get_or_init(
                            TypeId::of::<()>(),
                            || {
                                made.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                5u64
                            },
                            drop,
                        );
                        std::ptr::from_ref(c) as usize
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(made.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(ptrs.windows(2).all(|w| w[0] == w[1]));
    }
}
