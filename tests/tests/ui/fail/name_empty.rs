use cache_runtime::cached;

#[cached(name = "")]
fn f(x: u32) -> u32 { x }

fn main() {}
