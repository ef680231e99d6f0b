//! Issue 25: `compress` on Redis. Prints, for 100,000 realistic JSON product pages (~8 KiB
//! each): the `used_memory` Redis reports after writing them through a `Cache` without
//! compression, with `zstd` and with `lz4`, and what each codec does to one page (ratio,
//! time to compress and decompress); then criterion compares the Redis hit of a 200 B value
//! with `compress` on and off (under `compress_min`: written as is), and the hit of a page
//! compressed and not. Starts its own `redis-server`. Run:
//! `cargo bench -p benches --features redis --bench compression`.

#![allow(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::hint::black_box;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use cache_runtime::{Backend, Cache, Compression};
use criterion::{Criterion, criterion_group, criterion_main};

/// Words in rough English frequency order (a Zipf draw over them reads like text).
const WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "a",
    "in",
    "for",
    "is",
    "on",
    "that",
    "with",
    "this",
    "it",
    "you",
    "as",
    "are",
    "be",
    "at",
    "from",
    "your",
    "or",
    "by",
    "can",
    "all",
    "more",
    "has",
    "one",
    "will",
    "new",
    "use",
    "our",
    "when",
    "which",
    "its",
    "made",
    "design",
    "quality",
    "easy",
    "light",
    "water",
    "steel",
    "cotton",
    "comfort",
    "perfect",
    "daily",
    "home",
    "kitchen",
    "outdoor",
    "travel",
    "durable",
    "premium",
    "soft",
    "strong",
    "classic",
    "modern",
    "fit",
    "size",
    "color",
    "black",
    "white",
    "blue",
    "natural",
    "wood",
    "glass",
    "battery",
    "power",
    "hours",
    "fast",
    "charging",
    "wireless",
    "sound",
    "screen",
    "display",
    "protection",
    "resistant",
    "warranty",
    "included",
    "package",
    "box",
    "set",
    "pieces",
    "compatible",
    "adjustable",
    "lightweight",
    "portable",
    "storage",
    "capacity",
    "temperature",
    "clean",
    "washable",
    "recycled",
    "material",
    "finish",
    "handle",
    "grip",
    "surface",
    "layer",
    "features",
    "technology",
    "performance",
    "professional",
    "gift",
    "family",
    "children",
    "safe",
    "certified",
    "organic",
    "fresh",
    "flavor",
    "blend",
    "roast",
    "coffee",
    "tea",
    "cup",
    "bottle",
    "bag",
    "shoe",
    "jacket",
    "shirt",
    "lamp",
    "chair",
    "table",
    "desk",
    "bed",
    "pillow",
    "blanket",
    "towel",
    "garden",
    "tool",
    "drill",
    "bike",
    "helmet",
    "ball",
    "game",
    "toy",
    "book",
    "camera",
    "lens",
    "phone",
    "case",
    "cable",
    "adapter",
    "speaker",
    "headphones",
    "watch",
    "band",
    "ring",
    "necklace",
    "silver",
    "gold",
    "leather",
    "wool",
    "silk",
    "linen",
    "ceramic",
    "plastic",
    "aluminum",
    "bamboo",
    "stone",
    "marble",
    "paper",
];

/// A deterministic draw in `0..n`, Zipf-like (s = 1), from `state`.
fn zipf(state: &mut u64, n: usize) -> usize {
    *state = state
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    let u = ((*state >> 11) as f64 / (1u64 << 53) as f64).max(1e-12);
    // Inverse of the continuous Zipf(1) CDF over 1..=n.
    ((n as f64).powf(u) - 1.0).floor().min(n as f64 - 1.0) as usize
}

fn text(state: &mut u64, words: usize) -> String {
    let mut out = String::new();
    for i in 0..words {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(WORDS[zipf(state, WORDS.len())]);
    }
    out
}

/// A product page as a shop's API would return it: ~8 KiB of JSON.
fn page(id: u64) -> String {
    let mut s = id.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let reviews: Vec<serde_json::Value> = (0..8)
        .map(|r| {
            serde_json::json!({
                "user": format!("user{}", (id * 31 + r) % 50_000),
                "rating": 1 + (id + r) % 5,
                "title": text(&mut s, 5),
                "body": text(&mut s, 70),
                "date": format!("2026-{:02}-{:02}", 1 + r % 12, 1 + id % 28),
                "helpful": (id * r) % 97,
            })
        })
        .collect();
    let value = serde_json::json!({
        "id": id,
        "sku": format!("SKU-{:08}", id * 7919 % 100_000_000),
        "name": text(&mut s, 6),
        "brand": WORDS[(id % 40) as usize + 40],
        "category": format!("category-{}", id % 120),
        "price": {"amount": (id * 37 % 50_000) as f64 / 100.0, "currency": "EUR"},
        "stock": id * 13 % 400,
        "description": text(&mut s, 560),
        "attributes": (0..12).map(|a| serde_json::json!({
            "name": WORDS[50 + a], "value": WORDS[(id as usize + a * 7) % WORDS.len()]
        })).collect::<Vec<_>>(),
        "images": (0..6).map(|i| format!("https://img.example.com/p/{id}/{i}.jpg")).collect::<Vec<_>>(),
        "reviews": reviews,
        "related": (1..=12).map(|r| (id * 17 + r * 101) % 1_000_000).collect::<Vec<_>>(),
    });
    value.to_string()
}

const PAGES: u64 = 100_000;

fn cache(name: &str, compress: Compression) -> Cache<u64, String> {
    Cache::builder(name)
        .backend(Backend::Redis)
        .ttl(Duration::from_secs(3600))
        .compress(compress)
        .build()
        .expect("valid settings")
}

static NONE: LazyLock<Cache<u64, String>> =
    LazyLock::new(|| cache("pages-none", Compression::None));
static ZSTD: LazyLock<Cache<u64, String>> =
    LazyLock::new(|| cache("pages-zstd", Compression::Zstd));
static LZ4: LazyLock<Cache<u64, String>> = LazyLock::new(|| cache("pages-lz4", Compression::Lz4));

fn used_memory(con: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO").arg("memory").query(con).expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory")
}

/// Writes every page through `cache` (1,000 at a time); the `used_memory` it added.
fn fill(
    rt: &tokio::runtime::Runtime,
    con: &mut redis::Connection,
    cache: &'static Cache<u64, String>,
) -> u64 {
    let _: () = redis::cmd("FLUSHALL").query(con).expect("FLUSHALL");
    let before = used_memory(con);
    for start in (0..PAGES).step_by(1000) {
        let ids: Vec<u64> = (start..start + 1000).collect();
        let found = rt.block_on(cache.get_many_or_load_async(ids, |missing| async move {
            missing.into_iter().map(|id| (id, page(id))).collect()
        }));
        assert_eq!(found.len(), 1000);
    }
    used_memory(con) - before
}

fn figures(rt: &tokio::runtime::Runtime, con: &mut redis::Connection) {
    let sample: Vec<String> = (0..200).map(page).collect();
    let raw: usize = sample.iter().map(String::len).sum();
    println!("pages: {} B on average (JSON)", raw / sample.len());
    for (name, level) in [("zstd -1", 1), ("zstd -3", 3), ("zstd -9", 9), ("lz4", 0)] {
        let mut packer = zstd::bulk::Compressor::new(level).expect("zstd");
        let mut unpacker = zstd::bulk::Decompressor::new().expect("zstd");
        let start = Instant::now();
        let packed: Vec<Vec<u8>> = sample
            .iter()
            .map(|p| match level {
                0 => lz4_flex::block::compress_prepend_size(p.as_bytes()),
                _ => packer.compress(p.as_bytes()).expect("zstd"),
            })
            .collect();
        let packing = start.elapsed() / sample.len() as u32;
        let start = Instant::now();
        for p in &packed {
            black_box(match level {
                0 => lz4_flex::block::decompress_size_prepended(p).expect("lz4"),
                _ => unpacker.decompress(p, 1 << 20).expect("zstd"),
            });
        }
        let unpacking = start.elapsed() / sample.len() as u32;
        let size: usize = packed.iter().map(Vec::len).sum();
        println!(
            "{name}: ratio {:.3}, compress {packing:?}, decompress {unpacking:?} per page",
            size as f64 / raw as f64
        );
    }
    let plain = fill(rt, con, &NONE);
    for (name, cache) in [("none", &NONE), ("zstd", &ZSTD), ("lz4", &LZ4)] {
        let used = if name == "none" {
            plain
        } else {
            fill(rt, con, cache)
        };
        println!(
            "used_memory for {PAGES} pages, compress = {name}: {used} B ({:.3}x of none; {} B a page)",
            used as f64 / plain as f64,
            used / PAGES
        );
    }
    let _: () = redis::cmd("FLUSHALL").query(con).expect("FLUSHALL");
}

fn small(name: &str, compress: Compression) -> Cache<u64, String> {
    cache(name, compress)
}

static SMALL_OFF: LazyLock<Cache<u64, String>> =
    LazyLock::new(|| small("small-off", Compression::None));
static SMALL_ON: LazyLock<Cache<u64, String>> =
    LazyLock::new(|| small("small-on", Compression::Zstd));

fn benches(c: &mut Criterion) {
    let Some((server, rt)) = benches::redis_bench("compression") else {
        return;
    };
    let mut con = redis::Client::open(server.url.as_str())
        .and_then(|c| c.get_connection())
        .expect("connection");
    if std::env::var_os("SKIP_FIGURES").is_none() {
        figures(&rt, &mut con);
    }
    let mut two_hundred = text(&mut 7, 60);
    two_hundred.truncate(200); // ASCII words: a char boundary
    assert_eq!(two_hundred.len(), 200);
    let the_page = page(1);
    rt.block_on(async {
        for cache in [&*SMALL_OFF, &*SMALL_ON] {
            let v = two_hundred.clone();
            cache.get_or_load_async(1, || async { v }).await;
        }
        for cache in [&*NONE, &*ZSTD, &*LZ4] {
            let v = the_page.clone();
            cache.get_or_load_async(1, || async { v }).await;
        }
    });
    let mut g = c.benchmark_group("redis hit, 200 B value");
    for (name, cache) in [("compress off", &SMALL_OFF), ("compress = zstd", &SMALL_ON)] {
        g.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                black_box(
                    cache
                        .get_or_load_async(1, || async { unreachable!() })
                        .await,
                )
            });
        });
    }
    g.finish();
    let mut g = c.benchmark_group("redis hit, 8 KiB page");
    for (name, cache) in [("uncompressed", &NONE), ("zstd", &ZSTD), ("lz4", &LZ4)] {
        g.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                black_box(
                    cache
                        .get_or_load_async(1, || async { unreachable!() })
                        .await,
                )
            });
        });
    }
    g.finish();
}

criterion_group!(group, benches);
criterion_main!(group);
