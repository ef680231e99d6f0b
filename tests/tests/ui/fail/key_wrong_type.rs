use cache_runtime::cached;

#[cached(key = 5)]
fn f(x: u32) -> u32 { x }

fn main() {}
