//! Issue 25: `compress` on Redis. A value written compressed says so in its envelope's kind
//! (2 zstd, 3 lz4; `"z"` in the JSON envelope) and is read by a cache of the same name with
//! any setting, or none; values under `compress_min`, or that do not shrink, are written as
//! they are; a decompression bomb is a counted miss; the bytes written and the sampled memory
//! of a cache are reported.
#![cfg(feature = "redis")]

mod common;

use std::time::Duration;

use cache_runtime::{Backend, Cache, Codec, Compression};
use redis::Commands;

fn cache(name: &str, codec: Codec, compress: Compression) -> Cache<u64, String> {
    Cache::builder(name)
        .backend(Backend::Redis)
        .ttl(Duration::from_secs(600))
        .codec(codec)
        .compress(compress)
        .build()
        .expect("valid settings")
}

/// A page of text that compresses well.
fn page(id: u64) -> String {
    (0..400)
        .map(|i| format!("item {} of page {id}; ", i % 37))
        .collect()
}

fn prefix() -> String {
    format!("t{}:", std::process::id())
}

fn raw() -> tests::redis_server::Raw {
    tests::redis_server::raw(tests::redis_server::url().expect("a server"))
}

#[test]
fn readers_of_every_setting_read_every_kind() {
    if !common::backend_ready() {
        return;
    }
    let mut con = raw();
    for (codec, with, name) in [
        (Codec::MessagePack, Compression::Zstd, "rc.zstd"),
        (Codec::MessagePack, Compression::Lz4, "rc.lz4"),
        (Codec::Json, Compression::Zstd, "rc.json_zstd"),
        (Codec::Json, Compression::Lz4, "rc.json_lz4"),
    ] {
        // One cache of a name per process: the reader of the other setting is another
        // cache, and the entries are copied between their keys (the envelope does not name
        // its cache), as another process of the other setting would read them.
        let plain_name = format!("{name}.plain");
        let writer = cache(name, codec, with);
        let plain = cache(&plain_name, codec, Compression::None);
        let key = |cache: &str, id: u64| format!("{}{cache}:[{id}]", prefix());
        assert_eq!(writer.get_or_load(1, || page(1)), page(1));
        let bytes: Vec<u8> = con.get(key(name, 1)).unwrap();
        assert!(
            bytes.len() * 3 < page(1).len(),
            "{name}: {} bytes",
            bytes.len()
        );
        match codec {
            Codec::MessagePack => {
                let kind = if with == Compression::Zstd { 2 } else { 3 };
                assert_eq!(bytes[3], kind, "{name}");
            }
            _ => {
                let text = String::from_utf8(bytes.clone()).unwrap();
                let z = if with == Compression::Zstd {
                    "zstd"
                } else {
                    "lz4"
                };
                assert!(
                    text.contains(&format!("\"z\":\"{z}\"")),
                    "{name}: {text:.100}"
                );
            }
        }
        // A reader without compression reads the compressed entry.
        let () = con.set(key(&plain_name, 1), &bytes).unwrap();
        assert_eq!(plain.get(&1), Some(page(1)), "{name}");
        // A compressing reader reads a plain entry.
        assert_eq!(plain.get_or_load(2, || page(2)), page(2));
        let plain_bytes: Vec<u8> = con.get(key(&plain_name, 2)).unwrap();
        assert!(
            plain_bytes.len() > page(2).len(),
            "{name}: written as it is"
        );
        let () = con.set(key(name, 2), &plain_bytes).unwrap();
        assert_eq!(writer.get(&2), Some(page(2)), "{name}");
        // A value under `compress_min` is written as it is.
        assert_eq!(writer.get_or_load(3, || "short".to_owned()), "short");
        let short: Vec<u8> = con.get(key(name, 3)).unwrap();
        assert!(
            short.ends_with(b"short") || short.ends_with(b"\"short\"}"),
            "{name}"
        );
        for c in [&writer, &plain] {
            assert_eq!(c.stats().store_errors, 0, "{name}");
        }
        // What was written is counted after compression.
        let written = writer.stats().bytes_written;
        assert!(
            written > 0 && written < page(1).len() as u64,
            "{name}: {written}"
        );
    }
}

#[test]
fn a_decompression_bomb_is_a_counted_miss() {
    if !common::backend_ready() {
        return;
    }
    let bombs = cache("rc.bomb", Codec::MessagePack, Compression::Zstd);
    assert_eq!(bombs.get_or_load(1, || page(1)), page(1));
    let mut con = raw();
    let key = format!("{}rc.bomb:[1]", prefix());
    let mut bytes: Vec<u8> = con.get(&key).unwrap();
    assert_eq!(bytes[3], 2);
    // The same header, and a frame that would grow to 64 MiB: over the 16 MiB cap.
    let at = 42 + usize::from(u16::from_be_bytes([bytes[40], bytes[41]]));
    bytes.truncate(at);
    bytes.extend(zstd_frame_of_zeros(64 << 20));
    let () = con.set(&key, bytes).unwrap();
    let errors = bombs.stats().store_errors;
    assert_eq!(bombs.get_or_load(1, || "reloaded".to_owned()), "reloaded");
    assert_eq!(bombs.stats().store_errors, errors + 1, "a counted miss");
}

/// A zstd frame of `n` zeros, with its content size, as the library writes them.
fn zstd_frame_of_zeros(n: usize) -> Vec<u8> {
    zstd::bulk::compress(&vec![0u8; n], 3).unwrap()
}

#[test]
fn the_memory_a_cache_holds_in_redis_is_sampled() {
    if !common::backend_ready() {
        return;
    }
    let pages = cache("rc.sampled", Codec::MessagePack, Compression::None);
    for id in 0..50 {
        pages.get_or_load(id, || page(id));
    }
    let used = pages
        .handle()
        .shared_memory(10)
        .expect("a shared store")
        .expect("Redis");
    assert_eq!(used.keys, 50, "{used:?}");
    assert_eq!(used.sampled, 10, "{used:?}");
    let each = page(1).len() as u64;
    assert!(used.sampled_bytes >= 10 * each, "{used:?}");
    assert!(
        used.estimated_bytes >= 50 * each && used.estimated_bytes < 50 * 2 * each,
        "{used:?}"
    );
    let memory = Cache::<u64, String>::builder("rc.memory")
        .backend(Backend::Memory)
        .build()
        .unwrap();
    assert!(
        memory.handle().shared_memory(10).is_none(),
        "no shared store"
    );
}
