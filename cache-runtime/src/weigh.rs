//! What an entry weighs, for `max_bytes`: [`Weigh`], its implementations for the standard
//! library's types, and the weigher the in-process store calls on insert.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::mem::size_of;
use std::rc::Rc;
use std::sync::Arc;

/// The bytes a value owns on the heap, for caches bounded by `max_bytes`.
///
/// `heap_bytes` counts what the value allocated, beyond its own `size_of` (which the cache
/// counts with the entry's slot): a `String`'s capacity, a `Vec`'s capacity times its
/// element's size plus what each element owns, and so on. The cache calls it when an entry
/// is stored, moved between S3-FIFO's queues or evicted (quick_cache asks for a weight
/// again each time), never on a hit, so it may walk the value.
///
/// Implemented for integers, floats, `bool`, `char`, `()`, `String`, `str` boxes and `Arc`s,
/// `Vec`, `VecDeque`, `Box`, `Arc` and `Rc` (the pointee counted in every entry that holds the
/// pointer: once per entry, not once per process), `Option`, `Result`, tuples up to 8,
/// arrays, `HashMap`/`HashSet` (capacity × (entry + 1 control byte)), `BTreeMap`/`BTreeSet`
/// (entries plus a node header every 11 entries), `Duration`, `SystemTime` and `Instant`.
/// For your own types, `#[derive(Weigh)]` adds up the fields (and for an enum the variant
/// held); or implement it by hand.
///
/// **How exact.** What the allocator itself adds (malloc's header and rounding: up to 16
/// bytes per allocation with glibc) is not counted, and the hash maps' and B-trees' layouts
/// are estimated from their documented structure; the figure is within a few percent for
/// values of more than a few hundred bytes (`tests/tests/max_bytes.rs` measures it with a
/// counting allocator). The weight must not change while the value is cached (no interior
/// mutability that allocates).
///
/// ```
/// use cache_runtime::Weigh;
///
/// #[derive(Clone, Weigh)]
/// struct Page {
///     id: u64,
///     title: String,
///     body: Vec<u8>,
/// }
///
/// let page = Page { id: 1, title: "Hello".to_owned(), body: vec![0; 1000] };
/// assert_eq!(page.heap_bytes(), 5 + 1000);
/// ```
#[diagnostic::on_unimplemented(
    message = "`max_bytes` weighs `{Self}`, which does not implement `Weigh`",
    label = "no `Weigh` for this type",
    note = "add `#[derive(cache_runtime::Weigh)]` to the type (or implement `Weigh` by hand); \
            the standard library's strings, collections, boxes and numbers implement it"
)]
pub trait Weigh {
    /// Bytes this value owns on the heap (not counting `size_of::<Self>()`).
    fn heap_bytes(&self) -> usize;
}

macro_rules! owns_nothing {
    ($($t:ty),*) => {$(
        impl Weigh for $t {
            #[inline]
            fn heap_bytes(&self) -> usize {
                0
            }
        }
    )*};
}

owns_nothing!(
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    bool,
    char,
    (),
    &'static str,
    std::time::Duration,
    std::time::SystemTime,
    std::time::Instant,
    std::net::IpAddr,
    std::net::SocketAddr
);

impl Weigh for String {
    fn heap_bytes(&self) -> usize {
        self.capacity()
    }
}

impl Weigh for Box<str> {
    fn heap_bytes(&self) -> usize {
        self.len()
    }
}

/// An `Arc`'s two counts, allocated with its value.
const COUNTS: usize = 2 * size_of::<usize>();

impl Weigh for Arc<str> {
    fn heap_bytes(&self) -> usize {
        COUNTS + self.len()
    }
}

/// What the elements of a sequence own, besides their slots.
fn owned<'a, T: Weigh + 'a>(items: impl IntoIterator<Item = &'a T>) -> usize {
    items.into_iter().map(Weigh::heap_bytes).sum()
}

impl<T: Weigh> Weigh for Vec<T> {
    fn heap_bytes(&self) -> usize {
        self.capacity() * size_of::<T>() + owned(self)
    }
}

impl<T: Weigh> Weigh for VecDeque<T> {
    fn heap_bytes(&self) -> usize {
        self.capacity() * size_of::<T>() + owned(self)
    }
}

impl<T: Weigh> Weigh for Box<[T]> {
    fn heap_bytes(&self) -> usize {
        self.len() * size_of::<T>() + owned(self.iter())
    }
}

impl<T: Weigh> Weigh for Arc<[T]> {
    fn heap_bytes(&self) -> usize {
        COUNTS + self.len() * size_of::<T>() + owned(self.iter())
    }
}

impl<T: Weigh, const N: usize> Weigh for [T; N] {
    fn heap_bytes(&self) -> usize {
        owned(self)
    }
}

impl<T: Weigh> Weigh for Box<T> {
    fn heap_bytes(&self) -> usize {
        size_of::<T>() + T::heap_bytes(self)
    }
}

impl<T: Weigh> Weigh for Arc<T> {
    fn heap_bytes(&self) -> usize {
        COUNTS + size_of::<T>() + T::heap_bytes(self)
    }
}

impl<T: Weigh> Weigh for Rc<T> {
    fn heap_bytes(&self) -> usize {
        COUNTS + size_of::<T>() + T::heap_bytes(self)
    }
}

impl<T: Weigh> Weigh for Option<T> {
    fn heap_bytes(&self) -> usize {
        self.as_ref().map_or(0, Weigh::heap_bytes)
    }
}

impl<T: Weigh, E: Weigh> Weigh for Result<T, E> {
    fn heap_bytes(&self) -> usize {
        match self {
            Ok(v) => v.heap_bytes(),
            Err(e) => e.heap_bytes(),
        }
    }
}

/// hashbrown's table: a slot and a control byte per bucket, plus a group of control bytes.
fn table(buckets: usize, slot: usize) -> usize {
    match buckets {
        0 => 0,
        n => n * (slot + 1) + 16,
    }
}

/// The buckets behind a `capacity` (hashbrown keeps them at most 7/8 full, a power of two).
fn buckets(capacity: usize) -> usize {
    match capacity {
        0 => 0,
        c if c < 4 => 4,
        c if c < 8 => 8,
        c => (c.saturating_mul(8) / 7).next_power_of_two(),
    }
}

impl<K: Weigh, V: Weigh, S> Weigh for HashMap<K, V, S> {
    fn heap_bytes(&self) -> usize {
        let owned: usize = self
            .iter()
            .map(|(k, v)| k.heap_bytes() + v.heap_bytes())
            .sum();
        table(buckets(self.capacity()), size_of::<(K, V)>()) + owned
    }
}

impl<T: Weigh, S> Weigh for HashSet<T, S> {
    fn heap_bytes(&self) -> usize {
        table(buckets(self.capacity()), size_of::<T>()) + owned(self)
    }
}

/// A B-tree's nodes: up to 11 entries each, with a header and, for inner nodes, 12 edges
/// (estimated as full leaves plus one header per 11 entries).
fn btree(len: usize, entry: usize) -> usize {
    len * entry + len.div_ceil(11) * (2 * size_of::<usize>() + 12 * size_of::<usize>() / 6)
}

impl<K: Weigh, V: Weigh> Weigh for BTreeMap<K, V> {
    fn heap_bytes(&self) -> usize {
        let owned: usize = self
            .iter()
            .map(|(k, v)| k.heap_bytes() + v.heap_bytes())
            .sum();
        btree(self.len(), size_of::<(K, V)>()) + owned
    }
}

impl<T: Weigh> Weigh for BTreeSet<T> {
    fn heap_bytes(&self) -> usize {
        btree(self.len(), size_of::<T>()) + owned(self)
    }
}

macro_rules! tuples {
    ($(($($n:tt $t:ident),+))*) => {$(
        impl<$($t: Weigh),+> Weigh for ($($t,)+) {
            fn heap_bytes(&self) -> usize {
                0 $(+ self.$n.heap_bytes())+
            }
        }
    )*};
}

tuples! {
    (0 A)
    (0 A, 1 B)
    (0 A, 1 B, 2 C)
    (0 A, 1 B, 2 C, 3 D)
    (0 A, 1 B, 2 C, 3 D, 4 E)
    (0 A, 1 B, 2 C, 3 D, 4 E, 5 F)
    (0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G)
    (0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H)
}

/// How the in-process store weighs an entry's key and value: `Weigh`'s, chosen where the
/// types are known (the generated code, a [`Cache`](crate::Cache)'s builder).
pub struct Weigher<K, V> {
    pub(crate) key: fn(&K) -> usize,
    pub(crate) value: fn(&V) -> usize,
}

impl<K, V> Clone for Weigher<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K, V> Copy for Weigher<K, V> {}

impl<K: Weigh, V: Weigh> Weigher<K, V> {
    /// `Weigh`'s weigher of keys `K` and values `V`.
    pub fn of() -> Self {
        Weigher {
            key: K::heap_bytes,
            value: V::heap_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_types_count_what_they_allocated() {
        assert_eq!(7u64.heap_bytes(), 0);
        assert_eq!(String::with_capacity(40).heap_bytes(), 40);
        assert_eq!(vec![0u32; 10].heap_bytes(), 40);
        let strings = vec!["ab".to_owned(), "cde".to_owned()];
        assert_eq!(strings.heap_bytes(), 2 * size_of::<String>() + 5);
        assert_eq!(Some("x".to_owned()).heap_bytes(), 1);
        assert_eq!(None::<String>.heap_bytes(), 0);
        assert_eq!(Box::new(5u64).heap_bytes(), 8);
        assert_eq!(Arc::new(5u64).heap_bytes(), 8 + COUNTS);
        assert_eq!((1u8, "ab".to_owned()).heap_bytes(), 2);
        let map: HashMap<u64, u64> = (0..100).map(|i| (i, i)).collect();
        let bytes = map.heap_bytes();
        assert!((100 * 17..=256 * 17 + 16).contains(&bytes), "{bytes}");
        let tree: BTreeMap<u64, u64> = (0..110).map(|i| (i, i)).collect();
        assert!(tree.heap_bytes() >= 110 * 16, "{}", tree.heap_bytes());
        assert_eq!(HashMap::<u8, u8>::new().heap_bytes(), 0);
    }
}
