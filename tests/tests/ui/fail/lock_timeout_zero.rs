use cache_runtime::cached;

#[cached(lock_timeout = "0s")]
fn f(x: u32) -> u32 { x }

fn main() {}
