//! Compression of a value's bytes in an envelope (`compress = "zstd"` or `"lz4"`): the value
//! is compressed when its encoding is at least `compress_min` bytes and the result is
//! smaller; the envelope's kind says which (`msgpack.rs`, `json.rs`). Every build reads every
//! kind, whatever it writes.

use super::error::DecodeError;
use crate::policy::Compression;

/// What a store writes: the algorithm, the least size it compresses, and the size cap (a
/// value over it is left as it is, so that the writer's check of the envelope refuses it:
/// a reader could not decompress it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Packing {
    pub(crate) with: Compression,
    pub(crate) min: u64,
    pub(crate) cap: usize,
}

impl Packing {
    /// Writes values as they are.
    #[cfg(test)]
    pub(crate) const NONE: Packing = Packing {
        with: Compression::None,
        min: 0,
        cap: usize::MAX,
    };

    /// The compressed form of `bytes` and its algorithm, if this packing compresses them and
    /// they shrink once written: `written(n)` is what `n` compressed bytes take in the
    /// envelope (base64 and a field name in JSON).
    pub(crate) fn pack(
        self,
        bytes: &[u8],
        written: fn(usize) -> usize,
    ) -> Option<(Compression, Vec<u8>)> {
        if (bytes.len() as u64) < self.min || bytes.len() > self.cap {
            return None;
        }
        let packed = match self.with {
            Compression::None => return None,
            Compression::Zstd => {
                PACKER.with_borrow_mut(|packer| packer.as_mut()?.compress(bytes).ok())?
            }
            Compression::Lz4 => lz4_flex::block::compress_prepend_size(bytes),
        };
        (written(packed.len()) < bytes.len()).then_some((self.with, packed))
    }
}

/// Zstandard's level: its default (3).
const ZSTD_LEVEL: i32 = 3;

thread_local! {
    /// A context per thread and direction: making one costs more than compressing a page
    /// (`benches/compression.rs`).
    static PACKER: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        std::cell::RefCell::new(zstd::bulk::Compressor::new(ZSTD_LEVEL).ok());
    static UNPACKER: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        std::cell::RefCell::new(zstd::bulk::Decompressor::new().ok());
}

impl Compression {
    /// The envelope's kind of a value compressed this way (`msgpack.rs`); `None` for none.
    pub(crate) fn kind(self) -> Option<u8> {
        match self {
            Compression::None => None,
            Compression::Zstd => Some(2),
            Compression::Lz4 => Some(3),
        }
    }

    /// The compression of an envelope's `kind`, if it is one.
    pub(crate) fn of_kind(kind: u8) -> Option<Compression> {
        [Compression::Zstd, Compression::Lz4]
            .into_iter()
            .find(|c| c.kind() == Some(kind))
    }

    /// Its name in the JSON envelope's `"z"` and in the attribute.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Zstd => "zstd",
            Compression::Lz4 => "lz4",
        }
    }

    /// The compression named `name` in a JSON envelope.
    pub(crate) fn named(name: &str) -> Option<Compression> {
        [Compression::Zstd, Compression::Lz4]
            .into_iter()
            .find(|c| c.name() == name)
    }
}

/// The bytes `packed` holds, compressed with `with`; `TooLarge` if they would be more than
/// `cap` bytes (a decompression bomb is a miss, not an allocation), `BadValue` if they do not
/// decompress.
pub(crate) fn unpack(with: Compression, packed: &[u8], cap: usize) -> Result<Vec<u8>, DecodeError> {
    match with {
        // Not a kind an envelope names: nothing to unpack.
        Compression::None => Err(DecodeError::BadValue),
        Compression::Zstd => match zstd::zstd_safe::get_frame_content_size(packed) {
            // The frame's declared size (this library's writer always records it) is checked
            // before anything is allocated, and bounds the output.
            Ok(Some(n)) if n > cap as u64 => Err(DecodeError::TooLarge(
                usize::try_from(n).unwrap_or(usize::MAX),
            )),
            Ok(Some(n)) => UNPACKER
                .with_borrow_mut(|unpacker| {
                    let n = usize::try_from(n).unwrap_or(cap);
                    unpacker.as_mut()?.decompress(packed, n).ok()
                })
                .ok_or(DecodeError::BadValue),
            // A frame without its size (another writer): streamed, stopped past the cap.
            Ok(None) => {
                use std::io::Read as _;
                let decoder =
                    zstd::stream::read::Decoder::new(packed).map_err(|_| DecodeError::BadValue)?;
                let mut out = Vec::new();
                decoder
                    .take(cap as u64 + 1)
                    .read_to_end(&mut out)
                    .map_err(|_| DecodeError::BadValue)?;
                match out.len() > cap {
                    true => Err(DecodeError::TooLarge(out.len())),
                    false => Ok(out),
                }
            }
            Err(_) => Err(DecodeError::BadValue),
        },
        Compression::Lz4 => {
            let Some(size) = packed.get(..4) else {
                return Err(DecodeError::BadValue);
            };
            let size = u32::from_le_bytes([size[0], size[1], size[2], size[3]]) as usize;
            if size > cap {
                return Err(DecodeError::TooLarge(size));
            }
            lz4_flex::block::decompress(&packed[4..], size).map_err(|_| DecodeError::BadValue)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(n: usize) -> usize {
        n
    }

    fn page() -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..200 {
            out.extend_from_slice(
                format!(
                    "{{\"id\":{i},\"name\":\"product {i}\",\"price\":{}}},",
                    i * 7
                )
                .as_bytes(),
            );
        }
        out
    }

    #[test]
    fn both_round_trip_and_shrink_text() {
        let bytes = page();
        for with in [Compression::Zstd, Compression::Lz4] {
            let (algo, packed) = Packing {
                with,
                min: 1024,
                cap: 1 << 20,
            }
            .pack(&bytes, same)
            .unwrap();
            assert_eq!(algo, with);
            assert!(packed.len() * 3 < bytes.len(), "{with:?}: {}", packed.len());
            assert_eq!(unpack(with, &packed, 1 << 20).unwrap(), bytes);
        }
    }

    #[test]
    fn small_and_incompressible_values_are_left_as_they_are() {
        let zstd = Packing {
            with: Compression::Zstd,
            min: 1024,
            cap: 1 << 20,
        };
        assert!(
            zstd.pack(&page()[..1000], same).is_none(),
            "under compress_min"
        );
        let noise: Vec<u8> = (0..4096).map(|_| fastrand::u8(..)).collect();
        assert!(
            zstd.pack(&noise, same).is_none(),
            "random bytes do not shrink"
        );
        assert!(Packing::NONE.pack(&page(), same).is_none());
    }

    /// A value over the cap is left as it is (the writer then refuses the envelope: no
    /// reader could decompress it), and one that would not shrink once written is too.
    #[test]
    fn values_over_the_cap_or_that_grow_once_written_are_left_as_they_are() {
        let zstd = Packing {
            with: Compression::Zstd,
            min: 0,
            cap: 1000,
        };
        assert!(zstd.pack(&page(), same).is_none(), "over the cap");
        let roomy = Packing {
            cap: 1 << 20,
            ..zstd
        };
        assert!(roomy.pack(&page(), same).is_some());
        assert!(
            roomy.pack(&page(), |n| n * 100).is_none(),
            "grows once written"
        );
    }

    #[test]
    fn kinds_and_names_round_trip() {
        for c in [Compression::Zstd, Compression::Lz4] {
            assert_eq!(c.kind().and_then(Compression::of_kind), Some(c));
            assert_eq!(Compression::named(c.name()), Some(c));
        }
        assert_eq!(Compression::None.kind(), None);
        assert_eq!(Compression::of_kind(0), None);
        assert_eq!(Compression::named("none"), None);
    }

    #[test]
    fn bombs_and_garbage_are_errors_not_allocations() {
        let zeros = vec![0u8; 4 << 20];
        for with in [Compression::Zstd, Compression::Lz4] {
            let (_, packed) = Packing {
                with,
                min: 0,
                cap: 8 << 20,
            }
            .pack(&zeros, same)
            .unwrap();
            assert!(packed.len() < 64 << 10);
            assert!(
                matches!(
                    unpack(with, &packed, 1 << 20),
                    Err(DecodeError::TooLarge(_))
                ),
                "{with:?}"
            );
            assert_eq!(unpack(with, &packed, 8 << 20).unwrap().len(), 4 << 20);
            assert!(unpack(with, b"not compressed at all", 1 << 20).is_err());
        }
        // A forged LZ4 length far over the cap is refused before decompressing.
        let mut forged = u32::MAX.to_le_bytes().to_vec();
        forged.extend_from_slice(b"xx");
        assert_eq!(
            unpack(Compression::Lz4, &forged, 1 << 20),
            Err(DecodeError::TooLarge(u32::MAX as usize))
        );
    }
}
