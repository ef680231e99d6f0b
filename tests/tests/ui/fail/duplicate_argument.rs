use cache_runtime::cached;

#[cached(ttl = 60, ttl = 120)]
fn f(x: u32) -> u32 { x }

fn main() {}
