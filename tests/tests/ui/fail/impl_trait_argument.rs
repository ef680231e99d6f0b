use cache_runtime::cached;

#[cached]
fn f(x: impl Into<u32>) -> u32 { x.into() }

fn main() {}
