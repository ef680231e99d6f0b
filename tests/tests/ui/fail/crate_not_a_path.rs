use cache_runtime::cached;

#[cached(crate = "not a path")]
fn f(x: u32) -> u32 { x }

fn main() {}
