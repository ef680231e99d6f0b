use cache_runtime::cached;

#[cached(ttl = "10 minutes")]
fn f(x: u32) -> u32 { x }

fn main() {}
