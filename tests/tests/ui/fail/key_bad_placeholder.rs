use cache_runtime::cached;

#[cached(key = "user:{id-1}")]
fn f(id: u32) -> u32 { id }

fn main() {}
