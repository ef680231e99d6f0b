//! The envelope of a value in Redis: one JSON object that other services can read.
//!
//! ```text
//! {"v":1,"t":"9f2c61a0d4e8b7c3","w":1732700000000,"d":{"name":"Ada"}}   a value
//! {"v":1,"t":"9f2c61a0d4e8b7c3","w":1732700000000,"n":true}             a cached null
//! ```
//!
//! `v` is the format version, `t` a fingerprint of the Rust type of the value (a hash of its
//! type name: a deploy that changes the type reads the old entries as misses), `w` the write
//! time in milliseconds since the Unix epoch, `d` the value as serde_json, `n` the null marker.
//! An entry that is larger than the cap, does not parse, has another version or fingerprint,
//! or whose `d` does not decode, is a miss, and the load that follows overwrites it.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::entry::Slot;

const VERSION: u32 = 1;

/// Why bytes read from Redis are not a usable entry.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DecodeError {
    TooLarge(usize),
    NotAnEnvelope,
    OtherVersion(u32),
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

#[derive(Deserialize)]
struct Envelope<'a> {
    v: u32,
    #[serde(borrow)]
    t: &'a str,
    #[serde(default)]
    n: bool,
    #[serde(borrow, default)]
    d: Option<&'a RawValue>,
}

/// A 64-bit FNV-1a hash of a type name, as 16 hex digits.
pub(crate) fn fingerprint(type_name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in type_name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// Writes the envelope of `slot`; `encode` writes a value's JSON.
pub(crate) fn encode<V>(
    slot: Slot<&V>,
    fingerprint: &str,
    encode: impl FnOnce(&V, &mut Vec<u8>) -> serde_json::Result<()>,
) -> serde_json::Result<Vec<u8>> {
    let mut head = String::with_capacity(64);
    let _ = write!(
        head,
        "{{\"v\":{VERSION},\"t\":\"{fingerprint}\",\"w\":{},",
        now_ms()
    );
    let mut out = head.into_bytes();
    match slot {
        Slot::Null => out.extend_from_slice(b"\"n\":true}"),
        Slot::Value(v) => {
            out.extend_from_slice(b"\"d\":");
            encode(v, &mut out)?;
            out.push(b'}');
        }
    }
    Ok(out)
}

/// Reads an envelope; `decode` reads a value's JSON.
pub(crate) fn decode<V>(
    bytes: &[u8],
    fingerprint: &str,
    max_bytes: usize,
    decode: impl FnOnce(&[u8]) -> serde_json::Result<V>,
) -> Result<Slot<V>, DecodeError> {
    if bytes.len() > max_bytes {
        return Err(DecodeError::TooLarge(bytes.len()));
    }
    let envelope: Envelope<'_> =
        serde_json::from_slice(bytes).map_err(|_| DecodeError::NotAnEnvelope)?;
    if envelope.v != VERSION {
        return Err(DecodeError::OtherVersion(envelope.v));
    }
    if envelope.t != fingerprint {
        return Err(DecodeError::OtherType);
    }
    if envelope.n {
        return Ok(Slot::Null);
    }
    // `"d":null` reads as `None`: a value whose JSON is `null` (such as `()`).
    let json = envelope.d.map_or("null", RawValue::get);
    decode(json.as_bytes())
        .map(Slot::Value)
        .map_err(|_| DecodeError::BadValue)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc<V: serde::Serialize>(slot: Slot<&V>) -> Vec<u8> {
        encode(slot, "00ff", |v, out| serde_json::to_writer(out, v)).unwrap()
    }

    fn dec<V: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<Slot<V>, DecodeError> {
        decode(bytes, "00ff", 1 << 20, |b| serde_json::from_slice(b))
    }

    #[test]
    fn values_and_nulls_round_trip() {
        let bytes = enc(Slot::Value(&vec!["a".to_string()]));
        assert!(String::from_utf8_lossy(&bytes).starts_with("{\"v\":1,\"t\":\"00ff\",\"w\":"));
        assert_eq!(
            dec::<Vec<String>>(&bytes),
            Ok(Slot::Value(vec!["a".to_string()]))
        );
        assert_eq!(
            dec::<Vec<String>>(&enc::<Vec<String>>(Slot::Null)),
            Ok(Slot::Null)
        );
    }

    #[test]
    fn a_value_that_is_json_null_is_not_a_null() {
        assert_eq!(dec::<()>(&enc(Slot::Value(&()))), Ok(Slot::Value(())));
        assert_eq!(
            dec::<Option<u8>>(&enc(Slot::Value(&None::<u8>))),
            Ok(Slot::Value(None))
        );
        assert_eq!(
            dec::<Option<u8>>(&enc::<Option<u8>>(Slot::Null)),
            Ok(Slot::Null)
        );
    }

    #[test]
    fn bad_entries_are_errors_not_panics() {
        assert_eq!(dec::<u8>(b"garbage"), Err(DecodeError::NotAnEnvelope));
        assert_eq!(dec::<u8>(b""), Err(DecodeError::NotAnEnvelope));
        assert_eq!(
            dec::<u8>(b"{\"v\":2,\"t\":\"00ff\",\"d\":1}"),
            Err(DecodeError::OtherVersion(2))
        );
        assert_eq!(
            dec::<u8>(b"{\"v\":1,\"t\":\"beef\",\"d\":1}"),
            Err(DecodeError::OtherType)
        );
        assert_eq!(
            dec::<u8>(b"{\"v\":1,\"t\":\"00ff\",\"d\":\"x\"}"),
            Err(DecodeError::BadValue)
        );
        let big = vec![b' '; 100];
        assert_eq!(
            decode(&big, "00ff", 10, |b| serde_json::from_slice::<u8>(b)),
            Err(DecodeError::TooLarge(100))
        );
    }

    #[test]
    fn fingerprints_differ_by_type() {
        assert_ne!(fingerprint("u32"), fingerprint("u64"));
        assert_eq!(fingerprint("u32").len(), 16);
    }
}
