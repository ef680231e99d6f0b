use cache_runtime::cached;

#[cached]
fn f(x: &str) -> &str { x }

fn main() {}
