//! What a store's operations answer besides their values: [`StoreError`], and the estimate of
//! what a cache takes in a shared store ([`SharedMemory`]).

/// A failed operation of a store. Its text never holds a secret (a password).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// The store failed or timed out (an outage: counts towards a circuit breaker).
    Failed(String),
    /// The store answered and refused this one operation (a script error, a reply of another
    /// shape): the cache's own failure, not an outage.
    Refused(String),
    /// Not tried: the store is known to be unavailable (its circuit breaker is open), or its
    /// settings name no usable server. Counted as a skip, never logged.
    Unavailable,
    /// The data, not the store, is at fault: an entry that does not decode, a value that does
    /// not encode, a key part that does not render.
    Data(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Failed(why) | StoreError::Refused(why) | StoreError::Data(why) => {
                f.write_str(why)
            }
            StoreError::Unavailable => f.write_str("the store is unavailable"),
        }
    }
}

impl std::error::Error for StoreError {}

/// What a cache's entries take in a shared store, estimated from a sample
/// ([`CacheHandle::shared_memory`](crate::CacheHandle::shared_memory)). On Redis: the cache's
/// value keys counted with `SCAN` (on every primary of a cluster), `MEMORY USAGE … SAMPLES 0`
/// of the first `sample` of them, and `estimated_bytes = keys × sampled_bytes / sampled`.
/// Locks and tag keys are not counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SharedMemory {
    /// The cache's entries found.
    pub keys: u64,
    /// How many of them were sized.
    pub sampled: u64,
    /// What those took, in bytes (Redis's own accounting: key, value and overhead).
    pub sampled_bytes: u64,
    /// The estimate for all `keys`, in bytes.
    pub estimated_bytes: u64,
}
