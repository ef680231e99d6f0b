//! Reads a Redis entry as another service would, from the README's byte-by-byte description
//! (not through the library's code): so the tests check the documented format.

/// One entry, its header split into fields.
#[derive(Debug)]
pub struct Envelope {
    /// The envelope version (byte 2).
    pub version: u8,
    /// `false`: a value; `true`: a cached null.
    pub null: bool,
    /// The type fingerprint (bytes 4–11).
    pub fingerprint: u64,
    /// Fresh until, ms since the Unix epoch (bytes 12–19).
    pub fresh_until_ms: u64,
    /// The end of a fail-safe throttle, ms since the Unix epoch, or 0 (bytes 20–27).
    pub retry_at_ms: u64,
    /// The write time, ms since the Unix epoch (bytes 28–35).
    pub written_ms: u64,
    /// How long the load took, in ms (bytes 36–39).
    pub load_ms: u32,
    /// The tag versions (length at bytes 40–41, then the bytes).
    pub tags: Vec<u8>,
    /// The value's MessagePack (empty for a null).
    pub value: Vec<u8>,
}

impl Envelope {
    /// Splits `bytes`; `None` if they are not an envelope.
    pub fn parse(bytes: &[u8]) -> Option<Envelope> {
        if bytes.len() < 42 || &bytes[..2] != b"cr" {
            return None;
        }
        let u64_at = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap());
        let n = usize::from(u16::from_be_bytes([bytes[40], bytes[41]]));
        let tags = bytes.get(42..42 + n)?.to_vec();
        Some(Envelope {
            version: bytes[2],
            null: match bytes[3] {
                0 => false,
                1 => true,
                _ => return None,
            },
            fingerprint: u64_at(4),
            fresh_until_ms: u64_at(12),
            retry_at_ms: u64_at(20),
            written_ms: u64_at(28),
            load_ms: u32::from_be_bytes(bytes[36..40].try_into().unwrap()),
            tags,
            value: bytes[42 + n..].to_vec(),
        })
    }

    /// The value as JSON (MessagePack is self-describing), for assertions.
    pub fn json(&self) -> serde_json::Value {
        rmp_serde::from_slice(&self.value).expect("the value is MessagePack")
    }

    /// The value as `T`.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> T {
        rmp_serde::from_slice(&self.value).expect("the value is MessagePack")
    }
}

/// Parses `bytes`, failing the test if they are not an envelope.
pub fn parse(bytes: &[u8]) -> Envelope {
    Envelope::parse(bytes).unwrap_or_else(|| panic!("not an envelope: {bytes:?}"))
}

/// Writes an entry as another service (or another process of this library) would, from the
/// README: `type_name` is the Rust type name whose FNV-1a 64 is the fingerprint; fresh for an
/// hour.
pub fn build<T: serde::Serialize>(type_name: &str, value: &T) -> Vec<u8> {
    build_timed(type_name, value, now_ms() + 3_600_000)
}

/// The Unix time in milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// [`build`], fresh until `fresh_until_ms` (ms since the Unix epoch; in the past for an
/// expired entry), written now by a load of 7 ms.
pub fn build_timed<T: serde::Serialize>(
    type_name: &str,
    value: &T,
    fresh_until_ms: u64,
) -> Vec<u8> {
    build_tagged(type_name, value, fresh_until_ms, b"")
}

/// [`build_timed`], recording the tag versions `tags` (the values of its tag keys, in order).
pub fn build_tagged<T: serde::Serialize>(
    type_name: &str,
    value: &T,
    fresh_until_ms: u64,
    tags: &[u8],
) -> Vec<u8> {
    let mut fingerprint: u64 = 0xcbf2_9ce4_8422_2325;
    for b in type_name.bytes() {
        fingerprint ^= u64::from(b);
        fingerprint = fingerprint.wrapping_mul(0x0100_0000_01b3);
    }
    let written = now_ms();
    let mut out = b"cr\x04\x00".to_vec();
    out.extend_from_slice(&fingerprint.to_be_bytes());
    out.extend_from_slice(&fresh_until_ms.to_be_bytes());
    out.extend_from_slice(&0u64.to_be_bytes());
    out.extend_from_slice(&written.to_be_bytes());
    out.extend_from_slice(&7u32.to_be_bytes());
    let n = u16::try_from(tags.len()).expect("at most 65,535 bytes of tag versions");
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(tags);
    out.extend_from_slice(&rmp_serde::to_vec_named(value).expect("MessagePack"));
    out
}
