//! Compression of a value's bytes in an envelope (`compress = "zstd"` or `"lz4"`): the value
//! is compressed when its encoding is at least `compress_min` bytes and the result is
//! smaller; the envelope's kind says which (`msgpack.rs`, `json.rs`). Every build reads every
//! kind, whatever it writes.

use super::error::DecodeError;
use crate::policy::Compression;

/// What a store writes: the algorithm and the least size it compresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Packing {
    pub(crate) with: Compression,
    pub(crate) min: u64,
}

impl Packing {
    /// Writes values as they are.
    #[cfg(test)]
    pub(crate) const NONE: Packing = Packing {
        with: Compression::None,
        min: 0,
    };

    /// The compressed form of `bytes` and its algorithm, if this packing compresses them and
    /// they shrink.
    pub(crate) fn pack(self, bytes: &[u8]) -> Option<(Compression, Vec<u8>)> {
        if self.with == Compression::None || (bytes.len() as u64) < self.min {
            return None;
        }
        let packed = match self.with {
            Compression::None => return None,
            Compression::Zstd => ZSTD.with_borrow_mut(|(packer, _)| match packer {
                Some(packer) => packer.compress(bytes).ok(),
                None => None,
            })?,
            Compression::Lz4 => lz4_flex::block::compress_prepend_size(bytes),
        };
        (packed.len() < bytes.len()).then_some((self.with, packed))
    }
}

/// Zstandard's level: its default (3).
const ZSTD_LEVEL: i32 = 3;

thread_local! {
    /// A context per thread: making one costs more than compressing a page
    /// (`benches/compression.rs`).
    static ZSTD: std::cell::RefCell<(Option<zstd::bulk::Compressor<'static>>, Option<zstd::bulk::Decompressor<'static>>)> =
        std::cell::RefCell::new((
            zstd::bulk::Compressor::new(ZSTD_LEVEL).ok(),
            zstd::bulk::Decompressor::new().ok(),
        ));
}

/// The bytes `packed` holds, compressed with `with`; `TooLarge` if they would be more than
/// `cap` bytes (a decompression bomb is a miss, not an allocation), `BadValue` if they do not
/// decompress.
pub(crate) fn unpack(with: Compression, packed: &[u8], cap: usize) -> Result<Vec<u8>, DecodeError> {
    match with {
        Compression::None => Ok(packed.to_vec()),
        Compression::Zstd => match zstd::zstd_safe::get_frame_content_size(packed) {
            // The frame's declared size (this library's writer always records it) is checked
            // before anything is allocated, and bounds the output.
            Ok(Some(n)) if n > cap as u64 => Err(DecodeError::TooLarge(
                usize::try_from(n).unwrap_or(usize::MAX),
            )),
            Ok(Some(n)) => ZSTD
                .with_borrow_mut(|(_, unpacker)| match unpacker {
                    Some(unpacker) => unpacker
                        .decompress(packed, usize::try_from(n).unwrap_or(cap))
                        .ok(),
                    None => None,
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
            let (algo, packed) = Packing { with, min: 1024 }.pack(&bytes).unwrap();
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
        };
        assert!(zstd.pack(&page()[..1000]).is_none(), "under compress_min");
        let noise: Vec<u8> = (0..4096).map(|_| fastrand::u8(..)).collect();
        assert!(zstd.pack(&noise).is_none(), "random bytes do not shrink");
        assert!(Packing::NONE.pack(&page()).is_none());
    }

    #[test]
    fn bombs_and_garbage_are_errors_not_allocations() {
        let zeros = vec![0u8; 4 << 20];
        for with in [Compression::Zstd, Compression::Lz4] {
            let (_, packed) = Packing { with, min: 0 }.pack(&zeros).unwrap();
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
