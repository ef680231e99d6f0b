use cache_runtime::cached;

#[cached(key = "user:{idd}")]
fn f(id: u32) -> u32 { id }

fn main() {}
