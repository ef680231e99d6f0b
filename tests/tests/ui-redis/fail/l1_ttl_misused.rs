use cache_runtime::cached;

// `l1_ttl` is the life of a tiered cache's in-process copies.
#[cached(ttl = 60, l1_ttl = "5s")]
fn on_redis(id: u32) -> u32 {
    id
}

#[cached(ttl = 60, backend = "tiered", l1_ttl = 0)]
fn zero(id: u32) -> u32 {
    id
}

fn main() {}
