use cache_runtime::cached;

#[cached(max_entries = 0)]
fn f(x: u32) -> u32 { x }

fn main() {}
