use cache_runtime::cached;

#[cached(key = "user:{id")]
fn f(id: u32) -> u32 { id }

fn main() {}
