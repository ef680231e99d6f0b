use cache_runtime::cached;

#[cached(lock = "distributed")]
fn f(x: u32) -> u32 { x }

fn main() {}
