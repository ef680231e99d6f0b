//! Keys of the in-process store, and looking them up without building one.
//!
//! A function's key is a tuple of owned key parts: `fn f(id: u64, name: &str)` is keyed by
//! `(u64, String)`. A hit must not allocate, so the wrapper looks up with a [`Lookup`] of
//! borrowed parts, `Lookup((&id, name))`, which hashes like the owned tuple (every part hashes
//! as its borrowed form, the contract of [`Borrow`]) and compares part by part. The owned key
//! is built only on a miss, for the insert.
//!
//! Distinct argument values never share a key: the tuple keeps the parts apart, so no value
//! can forge a separator. Template placeholders that name a field (`{req.user}`) are keyed by
//! the field's `Display` text.

use std::borrow::Borrow;
use std::fmt::{Display, Write as _};
use std::hash::{Hash, Hasher};

use quick_cache::Equivalent;

/// A key tuple made of borrowed parts, for lookups that must not allocate.
#[derive(Debug, Clone, Copy)]
pub struct Lookup<T>(pub T);

impl<T: Hash> Hash for Lookup<T> {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

macro_rules! lookup_tuple {
    ($($Q:ident $K:ident $i:tt),*) => {
        impl<$($Q: ?Sized + Eq, $K: Borrow<$Q>,)*> Equivalent<($($K,)*)> for Lookup<($(&$Q,)*)> {
            #[inline]
            #[allow(unused_variables, reason = "the empty tuple compares nothing")]
            fn equivalent(&self, key: &($($K,)*)) -> bool {
                true $(&& *self.0.$i == *key.$i.borrow())*
            }
        }
    };
}

lookup_tuple!();
lookup_tuple!(Q0 K0 0);
lookup_tuple!(Q0 K0 0, Q1 K1 1);
lookup_tuple!(Q0 K0 0, Q1 K1 1, Q2 K2 2);
lookup_tuple!(Q0 K0 0, Q1 K1 1, Q2 K2 2, Q3 K3 3);
lookup_tuple!(Q0 K0 0, Q1 K1 1, Q2 K2 2, Q3 K3 3, Q4 K4 4);
lookup_tuple!(Q0 K0 0, Q1 K1 1, Q2 K2 2, Q3 K3 3, Q4 K4 4, Q5 K5 5);
lookup_tuple!(Q0 K0 0, Q1 K1 1, Q2 K2 2, Q3 K3 3, Q4 K4 4, Q5 K5 5, Q6 K6 6);
lookup_tuple!(Q0 K0 0, Q1 K1 1, Q2 K2 2, Q3 K3 3, Q4 K4 4, Q5 K5 5, Q6 K6 6, Q7 K7 7);
lookup_tuple!(Q0 K0 0, Q1 K1 1, Q2 K2 2, Q3 K3 3, Q4 K4 4, Q5 K5 5, Q6 K6 6, Q7 K7 7, Q8 K8 8);
lookup_tuple!(
    Q0 K0 0, Q1 K1 1, Q2 K2 2, Q3 K3 3, Q4 K4 4, Q5 K5 5, Q6 K6 6, Q7 K7 7, Q8 K8 8, Q9 K9 9
);
lookup_tuple!(
    Q0 K0 0, Q1 K1 1, Q2 K2 2, Q3 K3 3, Q4 K4 4, Q5 K5 5, Q6 K6 6, Q7 K7 7, Q8 K8 8, Q9 K9 9,
    Q10 K10 10
);
lookup_tuple!(
    Q0 K0 0, Q1 K1 1, Q2 K2 2, Q3 K3 3, Q4 K4 4, Q5 K5 5, Q6 K6 6, Q7 K7 7, Q8 K8 8, Q9 K9 9,
    Q10 K10 10, Q11 K11 11
);

/// The key part of a field placeholder such as `{req.user}`: the field's `Display` text.
pub fn display_part(value: &dyn Display) -> String {
    let mut out = String::new();
    // Writing to a String only fails if `Display` itself fails; the text so far is kept.
    let _ = write!(out, "{value}");
    out
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn lookups_hash_and_compare_like_owned_keys() {
        let owned: (u64, String) = (7, "ab".to_owned());
        let id = 7u64;
        let lookup = Lookup((&id, "ab"));
        let hasher = quick_cache::DefaultHashBuilder::default();
        assert_eq!(hasher.hash_one(lookup), hasher.hash_one(&owned));
        assert!(lookup.equivalent(&owned));
        assert!(!Lookup((&id, "abc")).equivalent(&owned));
        assert!(Lookup(()).equivalent(&()));
    }

    #[test]
    fn parts_cannot_forge_a_separator() {
        let a: (String, String) = ("x:y".into(), "z".into());
        let b: (String, String) = ("x".into(), "y:z".into());
        assert!(!Lookup((a.0.as_str(), a.1.as_str())).equivalent(&b));
    }
}
