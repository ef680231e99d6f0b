use cache_runtime::cached;

#[cached(ttl = 0)]
fn f(x: u32) -> u32 { x }

fn main() {}
