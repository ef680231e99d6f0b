use cache_runtime::cached;

#[cached(key = "")]
fn f(x: u32) -> u32 { x }

fn main() {}
