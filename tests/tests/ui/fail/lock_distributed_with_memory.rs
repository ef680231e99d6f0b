use cache_runtime::cached;

#[cached(backend = "memory", lock = "distributed")]
fn f(x: u32) -> u32 { x }

fn main() {}
