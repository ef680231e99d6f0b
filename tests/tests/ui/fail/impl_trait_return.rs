use cache_runtime::cached;

#[cached]
fn f(x: u32) -> impl Clone { x }

fn main() {}
