//! The envelope of a value in Redis: a fixed 40-byte header, the tag versions, then the value
//! in MessagePack.
//!
//! ```text
//! offset  size  field
//!      0     2  magic: the bytes `c` `r` (0x63 0x72)
//!      2     1  envelope version: 4
//!      3     1  kind: 0 = a value follows, 1 = a cached null (nothing follows),
//!               2 = a value compressed with Zstandard follows (one RFC 8878 frame, its
//!               content size recorded), 3 = a value compressed with LZ4 follows (the
//!               uncompressed length as 4 bytes little-endian, then one LZ4 block)
//!      4     8  type fingerprint: FNV-1a 64 of the Rust type name of the value, big-endian
//!     12     8  fresh until: ms since the Unix epoch, big-endian (2^64−1: no expiry)
//!     20     8  retry at: ms since the Unix epoch, big-endian; 0, or the end of the
//!               throttle of a value kept after a failed load (`stale_if_error`)
//!     28     8  write time: ms since the Unix epoch, big-endian
//!     36     4  load time: ms the load that produced the value took (XFetch's δ), big-endian
//!     40     2  n: length of the tag versions, big-endian (0 for an untagged function)
//!     42     n  tag versions: the values of the entry's tag keys when its load started,
//!               concatenated in the order of `tags` (16 hex digits each, `tags.rs`)
//!   42+n     …  the value in MessagePack (rmp-serde; structs as maps with field names),
//!               compressed if the kind says so
//! ```
//!
//! A writer with `compress` compresses a value whose MessagePack is at least `compress_min`
//! bytes, and only if that makes it smaller (`compress.rs`); every reader reads every kind.
//! Decompression stops at the size cap: a value that would be larger is a miss.
//!
//! Every process reads the phase of an entry from its times (DESIGN §10); the key itself
//! lives `ttl + max(stale, stale_if_error)` (`PX`). The scripts that read an entry compare its
//! tag versions with the tag keys' values (DESIGN §11). Entries of versions 2 (before the
//! times) and 3 (before the tag versions) are misses, overwritten by the next load.
//!
//! MessagePack is exact for what JSON is not: NaN, ±infinity and −0.0 are written as the
//! IEEE 754 floats they are, maps keep non-string keys, `i128`/`u128` and byte strings are
//! kept. A deploy that changes the value's type reads the old entries as misses (another
//! fingerprint); so does an entry of another version (the JSON envelope of version 1 included).
//! Known gap (as in every self-describing format with serde): a `Some` whose content is itself
//! written as nil (`Some(None)` of a nested `Option`, `Some(())`) reads back as `None`.
//! An entry that is larger than the cap, too short, of another magic, version or fingerprint,
//! or whose value does not decode, is a miss, and the load that follows overwrites it.

use super::compress::{Packing, unpack};
pub(crate) use super::error::DecodeError;
use crate::entry::Slot;
use crate::policy::Compression;

const MAGIC: [u8; 2] = *b"cr";
const VERSION: u8 = 4;
const VALUE: u8 = 0;
const NULL: u8 = 1;
/// The header's length: magic, version, kind, fingerprint, four times.
pub(crate) const HEADER: usize = 2 + 1 + 1 + 8 + 8 + 8 + 8 + 4;

/// The times an envelope carries, in milliseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) fresh_until: u64,
    pub(crate) retry_at: u64,
    pub(crate) written: u64,
    pub(crate) load_ms: u32,
}

/// The version of an entry read from Redis: a 64-bit hash of its bytes (never 0), FNV-1a's
/// multiply taken a word at a time with a xor-shift between (8 bytes a step: a hash on every
/// read must stay far below the read itself). The bytes hold the value and its write time, so
/// two writes of a key are told apart.
pub(crate) fn version_of(bytes: &[u8]) -> u64 {
    const PRIME: u64 = 0x0100_0000_01b3;
    let mut h = 0xcbf2_9ce4_8422_2325 ^ bytes.len() as u64;
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(PRIME);
        h ^= h >> 29;
    }
    for &b in words.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(PRIME);
    }
    (h ^ (h >> 32)).max(1)
}

/// A 64-bit FNV-1a hash of a type name.
pub(crate) fn fingerprint(type_name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in type_name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Writes the envelope of `slot` with its tag `versions`; `encode` appends a value's
/// MessagePack, compressed as `packing` says. Versions longer than 65,535 bytes are refused
/// (the macro allows far fewer tags).
pub(crate) fn encode<V, E: From<String>>(
    slot: Slot<&V>,
    stamp: Stamp,
    (versions, packing): (&[u8], Packing),
    fingerprint: u64,
    encode: impl FnOnce(&V, &mut Vec<u8>) -> Result<(), E>,
) -> Result<Vec<u8>, E> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(match slot {
        Slot::Null => NULL,
        Slot::Value(_) => VALUE,
    });
    out.extend_from_slice(&fingerprint.to_be_bytes());
    out.extend_from_slice(&stamp.fresh_until.to_be_bytes());
    out.extend_from_slice(&stamp.retry_at.to_be_bytes());
    out.extend_from_slice(&stamp.written.to_be_bytes());
    out.extend_from_slice(&stamp.load_ms.to_be_bytes());
    let n = u16::try_from(versions.len())
        .map_err(|_| E::from(format!("{} bytes of tag versions", versions.len())))?;
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(versions);
    if let Slot::Value(v) = slot {
        let body = out.len();
        encode(v, &mut out)?;
        if let Some((with, packed)) = packing.pack(&out[body..], |n| n) {
            out.truncate(body);
            out.extend_from_slice(&packed);
            out[3] = with.kind().unwrap_or(VALUE);
        }
    }
    Ok(out)
}

/// Reads an envelope; `decode` reads a value's MessagePack.
pub(crate) fn decode<V, E>(
    bytes: &[u8],
    fingerprint: u64,
    max_bytes: usize,
    decode: impl FnOnce(&[u8]) -> Result<V, E>,
) -> Result<(Slot<V>, Stamp), DecodeError> {
    if bytes.len() > max_bytes {
        return Err(DecodeError::TooLarge(bytes.len()));
    }
    if bytes.len() < HEADER || bytes[..2] != MAGIC {
        return Err(DecodeError::NotAnEnvelope);
    }
    let (head, rest) = bytes.split_at(HEADER);
    if head[2] != VERSION {
        return Err(DecodeError::OtherVersion(head[2]));
    }
    // The tag versions were compared by the script that read the entry.
    let Some(n) = rest
        .get(..2)
        .map(|n| usize::from(u16::from_be_bytes([n[0], n[1]])))
    else {
        return Err(DecodeError::NotAnEnvelope);
    };
    let Some(body) = rest.get(2 + n..) else {
        return Err(DecodeError::NotAnEnvelope);
    };
    if be_u64(&head[4..12]) != fingerprint {
        return Err(DecodeError::OtherType);
    }
    let stamp = Stamp {
        fresh_until: be_u64(&head[12..20]),
        retry_at: be_u64(&head[20..28]),
        written: be_u64(&head[28..36]),
        load_ms: u32::from_be_bytes([head[36], head[37], head[38], head[39]]),
    };
    let slot = match head[3] {
        NULL if body.is_empty() => Slot::Null,
        VALUE => decode(body)
            .map(Slot::Value)
            .map_err(|_| DecodeError::BadValue)?,
        kind => match Compression::of_kind(kind) {
            Some(with) => decode(&unpack(with, body, max_bytes)?)
                .map(Slot::Value)
                .map_err(|_| DecodeError::BadValue)?,
            None => return Err(DecodeError::NotAnEnvelope),
        },
    };
    Ok((slot, stamp))
}

/// Eight big-endian bytes (the caller passes exactly eight).
fn be_u64(bytes: &[u8]) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&bytes[..8]);
    u64::from_be_bytes(b)
}

/// The value codec: MessagePack through rmp-serde, structs as maps with their field names (so
/// other languages can read them, and a field added later does not shift the others).
pub(crate) fn write_value<V: serde::Serialize + ?Sized>(
    value: &V,
    out: &mut Vec<u8>,
) -> Result<(), rmp_serde::encode::Error> {
    rmp_serde::encode::write_named(out, value)
}

/// Reads what [`write_value`] wrote; trailing bytes are an error.
pub(crate) fn read_value<V: serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> Result<V, rmp_serde::decode::Error> {
    let mut de = rmp_serde::Deserializer::new(bytes);
    let value = V::deserialize(&mut de)?;
    let rest = de.get_ref().len();
    if rest != 0 {
        return Err(rmp_serde::decode::Error::Syntax(format!(
            "{rest} bytes after the value"
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_tell_bytes_apart() {
        let a = b"cr\x04\x00 some value bytes, long enough for several words".to_vec();
        assert_eq!(version_of(&a), version_of(&a.clone()));
        for at in [0, 7, 8, 20, a.len() - 1] {
            let mut b = a.clone();
            b[at] ^= 1;
            assert_ne!(version_of(&a), version_of(&b), "a change at byte {at}");
        }
        let mut longer = a.clone();
        longer.push(0);
        assert_ne!(version_of(&a), version_of(&longer));
        assert_ne!(version_of(&[]), 0);
    }

    use std::collections::{BTreeMap, HashMap};
    use std::fmt::Debug;

    use serde::Serialize;
    use serde::de::DeserializeOwned;

    use super::*;

    const PRINT: u64 = 0x00ff;

    const STAMP: Stamp = Stamp {
        fresh_until: 0x0102,
        retry_at: 0,
        written: 0x0304,
        load_ms: 0x05,
    };

    fn msgpack<V: Serialize>(v: &V, out: &mut Vec<u8>) -> Result<(), String> {
        write_value(v, out).map_err(|e| e.to_string())
    }

    fn enc<V: Serialize>(slot: Slot<&V>) -> Vec<u8> {
        encode(slot, STAMP, (b"", Packing::NONE), PRINT, msgpack).unwrap()
    }

    fn dec<V: DeserializeOwned>(bytes: &[u8]) -> Result<Slot<V>, DecodeError> {
        decode(bytes, PRINT, 1 << 20, read_value).map(|(slot, stamp)| {
            assert_eq!(stamp, STAMP);
            slot
        })
    }

    fn round_trip<V: Serialize + DeserializeOwned>(v: &V) -> V {
        match dec::<V>(&enc(Slot::Value(v))) {
            Ok(Slot::Value(back)) => back,
            other => panic!("no value back: {:?}", other.err()),
        }
    }

    fn exact<V: Serialize + DeserializeOwned + PartialEq + Debug>(v: V) {
        assert_eq!(round_trip(&v), v);
    }

    #[test]
    fn the_header_is_as_documented() {
        let bytes = enc(Slot::Value(&7u8));
        assert_eq!(&bytes[..4], b"cr\x04\x00");
        assert_eq!(&bytes[4..12], &0x00ffu64.to_be_bytes());
        assert_eq!(&bytes[12..20], &0x0102u64.to_be_bytes(), "fresh until");
        assert_eq!(&bytes[20..28], &0u64.to_be_bytes(), "retry at");
        assert_eq!(&bytes[28..36], &0x0304u64.to_be_bytes(), "written");
        assert_eq!(&bytes[36..40], &5u32.to_be_bytes(), "load time");
        assert_eq!(&bytes[40..42], &[0, 0], "no tag versions");
        assert_eq!(&bytes[42..], &[7], "7 is a MessagePack positive fixint");
        let null = enc::<u8>(Slot::Null);
        assert_eq!(&null[..4], b"cr\x04\x01");
        assert_eq!(null.len(), HEADER + 2);
        let versions = b"0123456789abcdef";
        let tagged = encode(
            Slot::Value(&7u8),
            STAMP,
            (versions, Packing::NONE),
            PRINT,
            msgpack,
        )
        .unwrap();
        assert_eq!(&tagged[40..42], &[0, 16]);
        assert_eq!(&tagged[42..58], b"0123456789abcdef");
        assert_eq!(dec::<u8>(&tagged), Ok(Slot::Value(7)));
    }

    #[test]
    fn values_and_nulls_round_trip() {
        exact(vec!["a".to_string()]);
        assert_eq!(
            dec::<Vec<String>>(&enc::<Vec<String>>(Slot::Null)),
            Ok(Slot::Null)
        );
    }

    /// Issue 10 (#4): what JSON changed or refused reads back exactly.
    #[test]
    fn floats_maps_and_wide_integers_are_exact() {
        let back = round_trip(&vec![Some(f64::NAN), None, Some(1.5)]);
        assert!(back[0].is_some_and(f64::is_nan), "NaN stays NaN: {back:?}");
        assert_eq!(&back[1..], &[None, Some(1.5)]);
        exact(f64::INFINITY);
        exact(f64::NEG_INFINITY);
        let zero = round_trip(&-0.0f64);
        assert!(
            zero == 0.0 && zero.is_sign_negative(),
            "−0.0 keeps its sign"
        );
        exact(f32::MIN_POSITIVE);
        exact(HashMap::from([((1u32, 2u32), "a".to_string())]));
        #[derive(Serialize, serde::Deserialize, PartialEq, Eq, PartialOrd, Ord, Debug)]
        struct StructKey {
            id: u32,
            tag: String,
        }
        let key = StructKey {
            id: 1,
            tag: "x".into(),
        };
        exact(BTreeMap::from([(key, 9u64)]));
        exact(u128::MAX);
        exact(i128::MIN);
        exact(u64::MAX);
        exact(vec![0u8, 255, 7]);
        exact(String::from("naïve ✓"));
        exact((1u8, 'c', "s".to_string(), true));
    }

    #[test]
    fn a_value_that_is_nil_is_not_a_null() {
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
        assert_eq!(
            dec::<u8>(b"garbage that is long enough"),
            Err(DecodeError::NotAnEnvelope)
        );
        assert_eq!(dec::<u8>(b""), Err(DecodeError::NotAnEnvelope));
        assert_eq!(dec::<u8>(b"cr\x03"), Err(DecodeError::NotAnEnvelope));
        // Issue 11: an entry of version 2 (before the times) is a miss.
        let mut old = b"cr\x02\x00".to_vec();
        old.extend_from_slice(&[0; 36]);
        old.push(7);
        assert_eq!(dec::<u8>(&old), Err(DecodeError::OtherVersion(2)));
        // The JSON envelope of version 1 is a miss, overwritten by the next load.
        assert_eq!(
            dec::<u8>(b"{\"v\":1,\"t\":\"00000000000000ff\",\"w\":1,\"d\":1}"),
            Err(DecodeError::NotAnEnvelope)
        );
        let mut other = enc(Slot::Value(&1u8));
        other[2] = 3;
        assert_eq!(dec::<u8>(&other), Err(DecodeError::OtherVersion(3)));
        let typed = encode(
            Slot::Value(&1u8),
            STAMP,
            (b"", Packing::NONE),
            0xbeef,
            msgpack,
        )
        .unwrap();
        assert_eq!(dec::<u8>(&typed), Err(DecodeError::OtherType));
        assert_eq!(
            dec::<u8>(&enc(Slot::Value(&"x"))),
            Err(DecodeError::BadValue)
        );
        let mut trailing = enc(Slot::Value(&1u8));
        trailing.push(2);
        assert_eq!(dec::<u8>(&trailing), Err(DecodeError::BadValue));
        let mut kind = enc(Slot::Value(&1u8));
        kind[3] = 9;
        assert_eq!(dec::<u8>(&kind), Err(DecodeError::NotAnEnvelope));
        let big = vec![b' '; 100];
        assert_eq!(
            decode(&big, PRINT, 10, read_value::<u8>),
            Err(DecodeError::TooLarge(100))
        );
    }

    /// Issue 25: a compressed value reads back in every reader, whatever it writes; the kind
    /// says which algorithm; a value that does not shrink, or is under `compress_min`, is
    /// written as it is; a bomb is a miss.
    #[test]
    fn compressed_values_read_back_and_say_so() {
        let page: Vec<String> = (0..300)
            .map(|i| format!("product {i}: a fine thing"))
            .collect();
        for (with, kind) in [(Compression::Zstd, 2), (Compression::Lz4, 3)] {
            let packing = Packing {
                with,
                min: 1024,
                cap: 1 << 20,
            };
            let bytes =
                encode(Slot::Value(&page), STAMP, (b"ab", packing), PRINT, msgpack).unwrap();
            assert_eq!(bytes[3], kind);
            assert!(
                bytes.len() * 3 < enc(Slot::Value(&page)).len(),
                "{with:?} shrinks it"
            );
            assert_eq!(
                &bytes[40..44],
                &[0, 2, b'a', b'b'],
                "the header and versions stay readable"
            );
            assert_eq!(dec::<Vec<String>>(&bytes), Ok(Slot::Value(page.clone())));
            assert!(bytes.len() < 4096);
            assert!(
                matches!(
                    decode(&bytes, PRINT, 4096, read_value::<Vec<String>>),
                    Err(DecodeError::TooLarge(_))
                ),
                "decompression stops at the size cap"
            );
            let small = encode(Slot::Value(&7u8), STAMP, (b"", packing), PRINT, msgpack).unwrap();
            assert_eq!(small[3], VALUE, "under compress_min");
            let null =
                encode::<u8, String>(Slot::Null, STAMP, (b"", packing), PRINT, msgpack).unwrap();
            assert_eq!(dec::<u8>(&null), Ok(Slot::Null));
        }
    }

    #[test]
    fn fingerprints_differ_by_type() {
        assert_ne!(fingerprint("u32"), fingerprint("u64"));
    }
}
