//! The one entry format of every store that serializes: the binary envelope (MessagePack,
//! `msgpack.rs`) and the JSON envelope (`json.rs`), the value's type fingerprint and an entry's
//! version (a hash of its bytes, the same in every process that reads them).

pub(crate) mod compress;
pub(crate) mod error;
pub(crate) mod json;
pub(crate) mod msgpack;

pub(crate) use compress::Packing;
pub(crate) use msgpack::{DecodeError, Stamp, decode, encode, fingerprint, version_of};
