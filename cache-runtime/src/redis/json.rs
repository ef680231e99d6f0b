//! The JSON envelope of `codec = "json"`: one JSON object that any service can read.
//!
//! ```text
//! {"v":1,"t":"9f2c61a0d4e8b7c3","w":1732700000000,"d":{"name":"Ada"}}   a value
//! {"v":1,"t":"9f2c61a0d4e8b7c3","w":1732700000000,"n":true}             a cached null
//! ```
//!
//! `v` is the envelope version, `t` the type fingerprint (FNV-1a 64 of the Rust type name, 16
//! hex digits), `w` the write time (ms since the Unix epoch), `d` the value as JSON, `n` the
//! null marker. JSON cannot hold NaN or ±infinity (serde_json would write `null`, and a
//! `vec![Some(f64::NAN)]` would come back as `[None]`): a value holding one is refused at
//! write (counted in `store_errors`, logged; the caller still gets its result), never written
//! changed. Maps whose keys are not strings or integers are refused by serde_json itself.

use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::codec::DecodeError;
use crate::entry::Slot;

const VERSION: u32 = 1;

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

/// Writes the JSON envelope of `slot`; `write` appends the value (see [`write_value`]).
pub(crate) fn encode<V>(
    slot: Slot<&V>,
    fingerprint: u64,
    now_ms: u64,
    write: impl FnOnce(&V, &mut Vec<u8>) -> Result<(), String>,
) -> Result<Vec<u8>, String> {
    let mut head = String::with_capacity(64);
    let _ = write!(
        head,
        "{{\"v\":{VERSION},\"t\":\"{fingerprint:016x}\",\"w\":{now_ms},"
    );
    let mut out = head.into_bytes();
    match slot {
        Slot::Null => out.extend_from_slice(b"\"n\":true}"),
        Slot::Value(v) => {
            out.extend_from_slice(b"\"d\":");
            write(v, &mut out)?;
            out.push(b'}');
        }
    }
    Ok(out)
}

/// Reads a JSON envelope; `read` reads the value.
pub(crate) fn decode<V, E>(
    bytes: &[u8],
    fingerprint: u64,
    read: impl FnOnce(&str) -> Result<V, E>,
) -> Result<Slot<V>, DecodeError> {
    let envelope: Envelope<'_> =
        serde_json::from_slice(bytes).map_err(|_| DecodeError::NotAnEnvelope)?;
    if envelope.v != VERSION {
        return Err(DecodeError::OtherVersion(
            envelope.v.try_into().unwrap_or(u8::MAX),
        ));
    }
    if u64::from_str_radix(envelope.t, 16) != Ok(fingerprint) {
        return Err(DecodeError::OtherType);
    }
    if envelope.n {
        return Ok(Slot::Null);
    }
    // `"d":null` is a value whose JSON is `null` (such as `()` or `None`), not a null.
    let json = envelope.d.map_or("null", RawValue::get);
    read(json)
        .map(Slot::Value)
        .map_err(|_| DecodeError::BadValue)
}

/// Appends `value` as JSON, refusing what JSON would change (NaN, ±infinity).
pub(crate) fn write_value<V: serde::Serialize>(value: &V, out: &mut Vec<u8>) -> Result<(), String> {
    refuse_non_finite(value)?;
    serde_json::to_writer(out, value).map_err(|e| e.to_string())
}

/// `Err` if `value` holds a float JSON cannot represent (NaN, ±infinity). Found on the
/// value's exact MessagePack form, read as an `rmpv` tree.
fn refuse_non_finite<V: serde::Serialize>(value: &V) -> Result<(), String> {
    let bytes = rmp_serde::to_vec(value).map_err(|e| e.to_string())?;
    let tree = rmpv::decode::read_value(&mut bytes.as_slice()).map_err(|e| e.to_string())?;
    let mut stack = vec![&tree];
    while let Some(v) = stack.pop() {
        match v {
            rmpv::Value::F32(f) if !f.is_finite() => return Err(non_finite(f64::from(*f))),
            rmpv::Value::F64(f) if !f.is_finite() => return Err(non_finite(*f)),
            rmpv::Value::Array(items) => stack.extend(items),
            rmpv::Value::Map(pairs) => stack.extend(pairs.iter().flat_map(|(k, v)| [k, v])),
            _ => {}
        }
    }
    Ok(())
}

fn non_finite(f: f64) -> String {
    format!(
        "JSON cannot represent {f} (it would read back as null): use the default codec \
         (MessagePack), or keep such floats out of the value"
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn enc<V: serde::Serialize>(slot: Slot<&V>) -> Result<Vec<u8>, String> {
        encode(slot, 0xff, 1, write_value)
    }

    fn dec<V: serde::de::DeserializeOwned>(
        bytes: &[u8],
        print: u64,
    ) -> Result<Slot<V>, DecodeError> {
        decode(bytes, print, |j| serde_json::from_str::<V>(j))
    }

    #[test]
    fn values_and_nulls_round_trip_as_readable_json() {
        let bytes = enc(Slot::Value(&vec![1.5f64, -0.0])).unwrap();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            r#"{"v":1,"t":"00000000000000ff","w":1,"d":[1.5,-0.0]}"#
        );
        let back: Vec<f64> = match dec(&bytes, 0xff) {
            Ok(Slot::Value(v)) => v,
            other => panic!("{:?}", other.err()),
        };
        assert!(back[1] == 0.0 && back[1].is_sign_negative());
        let null = enc::<u8>(Slot::Null).unwrap();
        assert_eq!(dec::<u8>(&null, 0xff), Ok(Slot::Null));
        let unit = enc(Slot::Value(&None::<u8>)).unwrap();
        assert_eq!(dec::<Option<u8>>(&unit, 0xff), Ok(Slot::Value(None)));
        let wide = enc(Slot::Value(&(u128::MAX, i128::MIN))).unwrap();
        assert_eq!(
            dec::<(u128, i128)>(&wide, 0xff),
            Ok(Slot::Value((u128::MAX, i128::MIN)))
        );
    }

    /// Issue 10 (#4): what JSON cannot hold is refused, never written changed.
    #[test]
    fn non_finite_floats_and_structured_keys_are_refused() {
        assert!(enc(Slot::Value(&vec![Some(f64::NAN), None])).is_err());
        assert!(enc(Slot::Value(&f64::INFINITY)).is_err());
        assert!(enc(Slot::Value(&BTreeMap::from([("x", f32::NEG_INFINITY)]))).is_err());
        assert!(enc(Slot::Value(&BTreeMap::from([((1u8, 2u8), 3u8)]))).is_err());
        assert!(enc(Slot::Value(&BTreeMap::from([(1u8, 3u8)]))).is_ok());
        assert!(enc(Slot::Value(&vec![f64::MAX, f64::MIN_POSITIVE])).is_ok());
    }

    #[test]
    fn other_envelopes_are_misses() {
        assert_eq!(
            dec::<u8>(b"cr\x02\x00", 0xff),
            Err(DecodeError::NotAnEnvelope)
        );
        let other = enc(Slot::Value(&1u8)).unwrap();
        assert_eq!(dec::<u8>(&other, 0xee), Err(DecodeError::OtherType));
        assert_eq!(
            dec::<u8>(br#"{"v":2,"t":"00000000000000ff","d":1}"#, 0xff),
            Err(DecodeError::OtherVersion(2))
        );
        assert_eq!(
            dec::<u8>(br#"{"v":1,"t":"00000000000000ff","d":"x"}"#, 0xff),
            Err(DecodeError::BadValue)
        );
    }
}
