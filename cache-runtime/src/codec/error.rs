//! Why bytes read from a store are not a usable entry.

/// Why bytes read from Redis are not a usable entry.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DecodeError {
    TooLarge(usize),
    NotAnEnvelope,
    OtherVersion(u8),
    OtherType,
    BadValue,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::TooLarge(n) => write!(f, "entry of {n} bytes is over the size cap"),
            DecodeError::NotAnEnvelope => f.write_str("entry is not a cache envelope"),
            DecodeError::OtherVersion(v) => write!(f, "entry has envelope version {v}"),
            DecodeError::OtherType => f.write_str("entry was written for another value type"),
            DecodeError::BadValue => f.write_str("entry's value does not decode"),
        }
    }
}
