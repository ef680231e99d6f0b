use cache_runtime::cached;

#[cached(jitter = "10%")]
fn f(x: u32) -> u32 { x }

fn main() {}
