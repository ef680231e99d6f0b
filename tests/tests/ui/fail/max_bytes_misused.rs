use cache_runtime::cached;

#[derive(Clone)]
struct Report {
    rows: Vec<String>,
}

#[cached(backend = "memory", ttl = 60, max_bytes = "64MiB")]
fn report(id: u64) -> Report {
    Report { rows: vec![id.to_string()] }
}

#[cached(backend = "memory", ttl = 60, max_bytes = "64 parsecs")]
fn sized(id: u64) -> u64 {
    id
}

#[cached(backend = "memory", ttl = 60, max_bytes = 0)]
fn empty(id: u64) -> u64 {
    id
}

#[cached(backend = "memory", ttl = 60, compress = "zstd")]
fn packed(id: u64) -> u64 {
    id
}

#[cached(ttl = 60, compress = "brotli")]
fn brotli(id: u64) -> u64 {
    id
}

fn main() {
    let _ = (report(1).rows, sized(1), empty(1), packed(1), brotli(1));
}
