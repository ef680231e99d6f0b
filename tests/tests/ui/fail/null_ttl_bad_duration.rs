use cache_runtime::cached;

#[cached(ttl = 60, null_ttl = "1x")]
fn f(x: u32) -> Option<u32> { Some(x) }

fn main() {}
