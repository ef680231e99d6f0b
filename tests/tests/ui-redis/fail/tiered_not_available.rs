use cache_runtime::cached;

#[cached(backend = "tiered")]
fn f(x: u32) -> u32 {
    x
}

fn main() {}
