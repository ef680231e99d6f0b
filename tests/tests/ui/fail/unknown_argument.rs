use cache_runtime::cached;

#[cached(tll = 60)]
fn f(x: u32) -> u32 { x }

fn main() {}
