//! The JSON envelope of `codec = "json"`: one JSON object that any service can read.
//!
//! ```text
//! {"v":3,"t":"9f2c61a0d4e8b7c3","f":1732700060000,"r":0,"g":"","w":1732700000000,"l":12,"d":{"name":"Ada"}}
//! {"v":3,"t":"9f2c61a0d4e8b7c3","f":1732700060000,"r":0,"g":"","w":1732700000000,"l":12,"n":true}
//! ```
//!
//! `v` is the envelope version, `t` the type fingerprint (FNV-1a 64 of the Rust type name, 16
//! hex digits), `f` the end of freshness and `r` the end of a fail-safe throttle (0 for none),
//! `g` the tag versions (the bytes of the binary envelope's, in hex; empty for an untagged
//! function), `w` the write time (all ms since the Unix epoch), `l` the load time in ms, `d`
//! the value as JSON, `n` the null marker. With `compress`, a value whose JSON is at least
//! `compress_min` bytes and shrinks once written is an envelope of version 4 (the same fields,
//! `"v":4`) with `"z":"zstd"` (or `"lz4"`, the formats of the binary envelope's kinds 2 and 3)
//! followed by `"d"`: the compressed JSON as a base64 string (RFC 4648, with padding). A
//! reader of version 3 alone counts it a miss, never reads the base64 text as the value. The fields come in this order (the scripts read
//! `f`, `r` and `g` by position). Entries of versions 1 (before the times) and 2 (before the
//! tag versions) are misses. JSON cannot hold NaN or ±infinity (serde_json would write `null`, and a
//! `vec![Some(f64::NAN)]` would come back as `[None]`): a value holding one is refused at
//! write (counted in `store_errors`, logged; the caller still gets its result), never written
//! changed. Maps whose keys are not strings or integers are refused by serde_json itself.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::compress::{Packing, unpack};
use super::error::DecodeError;
use super::msgpack::Stamp;
use crate::entry::Slot;
use crate::policy::Compression;

const VERSION: u32 = 3;
/// The version of an envelope whose value is compressed (`"z"`): readers of version 3 alone
/// (before compression) count it a miss instead of reading the base64 text as the value.
const COMPRESSED: u32 = 4;
/// How an envelope of either version opens, as the writer writes it (read on every decode
/// and every tagged read: constants, not strings formatted per call).
const HEAD: &[u8] = b"{\"v\":3,\"t\":\"";
const HEAD_COMPRESSED: &[u8] = b"{\"v\":4,\"t\":\"";
const _: () = assert!(
    VERSION == 3 && COMPRESSED == 4,
    "the heads spell the versions"
);
/// Where the version's digit is in a head.
const VERSION_AT: usize = 5;

#[derive(Deserialize)]
struct Envelope<'a> {
    v: u32,
    #[serde(borrow)]
    t: &'a str,
    #[serde(default)]
    f: u64,
    #[serde(default)]
    r: u64,
    #[serde(default)]
    w: u64,
    #[serde(default)]
    l: u32,
    #[serde(default)]
    n: bool,
    #[serde(borrow, default)]
    z: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    d: Option<&'a RawValue>,
}

/// Writes the JSON envelope of `slot`; `write` appends the value (see [`write_value`]).
pub(crate) fn encode<V>(
    slot: Slot<&V>,
    stamp: Stamp,
    (versions, packing): (&[u8], Packing),
    fingerprint: u64,
    write: impl FnOnce(&V, &mut Vec<u8>) -> Result<(), String>,
) -> Result<Vec<u8>, String> {
    let mut head = String::with_capacity(96);
    let Stamp {
        fresh_until: f,
        retry_at: r,
        written: w,
        load_ms: l,
    } = stamp;
    let _ = write!(
        head,
        "{{\"v\":{VERSION},\"t\":\"{fingerprint:016x}\",\"f\":{f},\"r\":{r},\"g\":\""
    );
    for b in versions {
        let _ = write!(head, "{b:02x}");
    }
    let _ = write!(head, "\",\"w\":{w},\"l\":{l},");
    let mut out = head.into_bytes();
    let Slot::Value(v) = slot else {
        out.extend_from_slice(b"\"n\":true}");
        return Ok(out);
    };
    out.extend_from_slice(b"\"d\":");
    let value = out.len();
    write(v, &mut out)?;
    // Compressed: `"z":"<name>","d":"<base64>"`, and the version that says so.
    let base64_of = |n: usize| base64::encoded_len(n, true).unwrap_or(usize::MAX) + 14;
    if let Some((with, packed)) = packing.pack(&out[value..], base64_of) {
        use base64::Engine as _;
        out.truncate(value - b"\"d\":".len());
        out[VERSION_AT] = b'4';
        let _ = write!(str_of(&mut out), "\"z\":\"{}\",\"d\":\"", with.name());
        let start = out.len();
        out.resize(
            start + base64::encoded_len(packed.len(), true).unwrap_or(0),
            0,
        );
        let written =
            base64::engine::general_purpose::STANDARD.encode_slice(&packed, &mut out[start..]);
        out.truncate(start + written.unwrap_or(0));
        out.push(b'"');
    }
    out.push(b'}');
    Ok(out)
}

/// `out` as a `fmt::Write` (it holds only what this module wrote: UTF-8).
fn str_of(out: &mut Vec<u8>) -> impl std::fmt::Write + '_ {
    struct Bytes<'a>(&'a mut Vec<u8>);
    impl std::fmt::Write for Bytes<'_> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.extend_from_slice(s.as_bytes());
            Ok(())
        }
    }
    Bytes(out)
}

/// Reads a JSON envelope; `read` reads the value; a compressed value is decompressed up to
/// `cap` bytes.
pub(crate) fn decode<V, E>(
    bytes: &[u8],
    (fingerprint, cap): (u64, usize),
    read: impl FnOnce(&str) -> Result<V, E>,
) -> Result<(Slot<V>, Stamp), DecodeError> {
    let envelope: Envelope<'_> =
        serde_json::from_slice(bytes).map_err(|_| DecodeError::NotAnEnvelope)?;
    // Version 3 holds the value as JSON, version 4 compressed: nothing else.
    match (envelope.v, &envelope.z) {
        (VERSION, None) | (COMPRESSED, Some(_)) => {}
        (VERSION | COMPRESSED, _) => return Err(DecodeError::NotAnEnvelope),
        (v, _) => return Err(DecodeError::OtherVersion(v.try_into().unwrap_or(u8::MAX))),
    }
    // The scripts and a tagged read find `f`, `r` and `g` by position: an envelope written in
    // another order (or without `g`) would be current to serde and unknown to them, and a
    // tagged read could not check its versions. One definition of this version: the writer's.
    if tag_hex(bytes).is_none() {
        return Err(DecodeError::NotAnEnvelope);
    }
    if u64::from_str_radix(envelope.t, 16) != Ok(fingerprint) {
        return Err(DecodeError::OtherType);
    }
    let stamp = Stamp {
        fresh_until: envelope.f,
        retry_at: envelope.r,
        written: envelope.w,
        load_ms: envelope.l,
    };
    if envelope.n {
        return Ok((Slot::Null, stamp));
    }
    // `"d":null` is a value whose JSON is `null` (such as `()` or `None`), not a null.
    let json = envelope.d.map_or("null", RawValue::get);
    let value = match envelope.z {
        None => read(json),
        Some(name) => {
            use base64::Engine as _;
            let with = Compression::named(&name).ok_or(DecodeError::BadValue)?;
            // Owned when the writer escaped it (`\/`, as PHP's `json_encode` does).
            let text: Cow<'_, str> =
                serde_json::from_str(json).map_err(|_| DecodeError::BadValue)?;
            let packed = base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
                .map_err(|_| DecodeError::BadValue)?;
            let plain = unpack(with, &packed, cap)?;
            let plain = std::str::from_utf8(&plain).map_err(|_| DecodeError::BadValue)?;
            read(plain)
        }
    }
    .map_err(|_| DecodeError::BadValue)?;
    Ok((Slot::Value(value), stamp))
}

/// The tag versions an entry of this version records (its `g`, hex-decoded); `None` for
/// bytes of another format.
pub(crate) fn recorded(bytes: &[u8]) -> Option<Vec<u8>> {
    let digit = |b: u8| {
        char::from(b)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    tag_hex(bytes)?
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? * 16 + digit(pair[1])?))
        .collect()
}

/// The hex digits of `g` in an envelope of this version whose fields come in the writer's
/// order (`v`, `t`, `f`, `r`, `g`, as the scripts read them); `None` for anything else.
fn tag_hex(bytes: &[u8]) -> Option<&[u8]> {
    let rest = bytes
        .strip_prefix(HEAD)
        .or_else(|| bytes.strip_prefix(HEAD_COMPRESSED))?;
    let rest = skip(rest, |b| b.is_ascii_hexdigit())?.strip_prefix(b"\",\"f\":")?;
    let rest = skip(rest, |b| b.is_ascii_digit())?.strip_prefix(b",\"r\":")?;
    let rest = skip(rest, |b| b.is_ascii_digit())?.strip_prefix(b",\"g\":\"")?;
    let end = rest.iter().position(|&b| b == b'"')?;
    let hex = &rest[..end];
    (hex.len() % 2 == 0 && hex.iter().all(u8::is_ascii_hexdigit)).then_some(hex)
}

/// `bytes` after a non-empty run of bytes that satisfy `keep`.
fn skip(bytes: &[u8], keep: impl Fn(&u8) -> bool) -> Option<&[u8]> {
    let n = bytes.iter().take_while(|b| keep(b)).count();
    (n > 0).then(|| &bytes[n..])
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

    const STAMP: Stamp = Stamp {
        fresh_until: 9,
        retry_at: 0,
        written: 1,
        load_ms: 3,
    };

    fn enc<V: serde::Serialize>(slot: Slot<&V>) -> Result<Vec<u8>, String> {
        encode(slot, STAMP, (b"", Packing::NONE), 0xff, write_value)
    }

    fn dec<V: serde::de::DeserializeOwned>(
        bytes: &[u8],
        print: u64,
    ) -> Result<Slot<V>, DecodeError> {
        decode(bytes, (print, 1 << 20), |j| serde_json::from_str::<V>(j)).map(|(slot, _)| slot)
    }

    #[test]
    fn values_and_nulls_round_trip_as_readable_json() {
        let bytes = enc(Slot::Value(&vec![1.5f64, -0.0])).unwrap();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            r#"{"v":3,"t":"00000000000000ff","f":9,"r":0,"g":"","w":1,"l":3,"d":[1.5,-0.0]}"#
        );
        let back: Vec<f64> = match dec(&bytes, 0xff) {
            Ok(Slot::Value(v)) => v,
            other => panic!("{:?}", other.err()),
        };
        assert!(back[1] == 0.0 && back[1].is_sign_negative());
        let null = enc::<u8>(Slot::Null).unwrap();
        assert_eq!(dec::<u8>(&null, 0xff), Ok(Slot::Null));
        let tagged = encode(
            Slot::Value(&1u8),
            STAMP,
            (b"\x00a", Packing::NONE),
            0xff,
            write_value,
        )
        .unwrap();
        assert!(
            String::from_utf8(tagged.clone())
                .unwrap()
                .contains(r#""r":0,"g":"0061","w":1"#)
        );
        assert_eq!(dec::<u8>(&tagged, 0xff), Ok(Slot::Value(1)));
        assert_eq!(recorded(&tagged), Some(b"\x00a".to_vec()));
        assert_eq!(recorded(&null), Some(Vec::new()));
        assert_eq!(recorded(br#"{"v":2,"g":"00"}"#), None);
        assert_eq!(recorded(br#"{"v":3,"t":"ff","f":1,"r":0,"g":"+1"}"#), None);
        assert_eq!(
            recorded(br#"{"v":3,"t":"ff","f":1,"r":0,"g":"0a"}"#),
            Some(vec![10])
        );
        assert_eq!(recorded(br#"{"v":3,"d":{"x":",\"g\":\"00"}}"#), None);
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
        // Issue 11: version 1 (before the times) is a miss.
        assert_eq!(
            dec::<u8>(br#"{"v":1,"t":"00000000000000ff","w":1,"d":1}"#, 0xff),
            Err(DecodeError::OtherVersion(1))
        );
        // Issue 13: version 2 (before the tag versions) is a miss.
        assert_eq!(
            dec::<u8>(br#"{"v":2,"t":"00000000000000ff","f":1,"r":0,"d":1}"#, 0xff),
            Err(DecodeError::OtherVersion(2))
        );
        assert_eq!(
            dec::<u8>(
                br#"{"v":3,"t":"00000000000000ff","f":1,"r":0,"g":"","d":"x"}"#,
                0xff
            ),
            Err(DecodeError::BadValue)
        );
        // A valid version-3 object in another shape than the writer's: serde would read it,
        // the scripts (and a tagged read) could not. Each is a miss, never a hit.
        for other in [
            &br#"{"v":3,"t":"00000000000000ff","r":0,"f":1,"g":"","d":1}"#[..],
            br#"{"v":3,"t":"00000000000000ff","f":1,"r":0,"d":1}"#,
            br#"{"v": 3, "t": "00000000000000ff", "f": 1, "r": 0, "g": "", "d": 1}"#,
            br#"{"t":"00000000000000ff","v":3,"f":1,"r":0,"g":"","d":1}"#,
            br#"{"v":3,"t":"00000000000000ff","f":1,"r":0,"g":"0","d":1}"#,
        ] {
            assert_eq!(
                dec::<u8>(other, 0xff),
                Err(DecodeError::NotAnEnvelope),
                "{}",
                String::from_utf8_lossy(other)
            );
        }
        assert_eq!(
            dec::<u8>(
                br#"{"v":3,"t":"00000000000000ff","f":1,"r":0,"g":"","w":1,"l":0,"d":1}"#,
                0xff
            ),
            Ok(Slot::Value(1)),
            "the writer's shape"
        );
    }

    /// Issue 25: with `compress`, a large value is a base64 string after `"z"`, read back by
    /// every reader; the fields the scripts read by position stay in place.
    #[test]
    fn compressed_values_read_back() {
        let page: Vec<String> = (0..300)
            .map(|i| format!("product {i}: a fine thing"))
            .collect();
        for (with, name) in [(Compression::Zstd, "zstd"), (Compression::Lz4, "lz4")] {
            let packing = Packing {
                with,
                min: 1024,
                cap: 1 << 20,
            };
            let bytes = encode(
                Slot::Value(&page),
                STAMP,
                (b"\x01", packing),
                0xff,
                write_value,
            )
            .unwrap();
            let text = String::from_utf8(bytes.clone()).unwrap();
            assert!(
                text.contains(&format!(",\"l\":3,\"z\":\"{name}\",\"d\":\"")),
                "{text:.120}"
            );
            assert_eq!(recorded(&bytes), Some(vec![1]));
            assert!(
                bytes.len() * 2
                    < encode(
                        Slot::Value(&page),
                        STAMP,
                        (b"", Packing::NONE),
                        0xff,
                        write_value
                    )
                    .unwrap()
                    .len()
            );
            let back = decode(&bytes, (0xff, 1 << 20), |j| {
                serde_json::from_str::<Vec<String>>(j)
            });
            assert_eq!(back.map(|(slot, _)| slot), Ok(Slot::Value(page.clone())));
            let capped = decode(&bytes, (0xff, 100), |j| {
                serde_json::from_str::<Vec<String>>(j)
            });
            assert!(matches!(capped, Err(DecodeError::TooLarge(_))));
        }
    }
}
