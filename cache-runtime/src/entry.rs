//! The stored entry: a value or a null, with the times that decide its freshness.
//!
//! The same envelope will travel to Redis (serialized) and can carry more times later
//! (stale-while-revalidate, XFetch): everything that decides freshness lives here.

/// What a call left in the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Slot<V> {
    /// A real value (`T`, `Ok(T)`, `Some(T)`, `Ok(Some(T))`).
    Value(V),
    /// A null result (`None`, `Ok(None)`), cached for `null_ttl`.
    Null,
}

/// One cached result and its lifetime, in milliseconds on the cache clock.
#[derive(Clone, Debug)]
pub(crate) struct Entry<V> {
    pub(crate) slot: Slot<V>,
    /// Served while the clock is below this; `u64::MAX` for no expiry.
    pub(crate) fresh_until_ms: u64,
}

impl<V> Slot<V> {
    /// The slot borrowing its value.
    #[cfg(feature = "redis")]
    pub(crate) fn as_ref(&self) -> Slot<&V> {
        match self {
            Slot::Value(v) => Slot::Value(v),
            Slot::Null => Slot::Null,
        }
    }
}

impl<V> Slot<&V> {
    /// The owned slot: clones the value (the one clone a miss makes for the cache).
    pub(crate) fn cloned(self) -> Slot<V>
    where
        V: Clone,
    {
        match self {
            Slot::Value(v) => Slot::Value(v.clone()),
            Slot::Null => Slot::Null,
        }
    }
}

impl<V> Entry<V> {
    #[inline]
    pub(crate) fn is_fresh(&self) -> bool {
        crate::clock::before(self.fresh_until_ms)
    }
}
