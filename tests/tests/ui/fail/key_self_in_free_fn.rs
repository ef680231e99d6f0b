use cache_runtime::cached;

#[cached(key = "{self.id}")]
fn f(x: u32) -> u32 { x }

fn main() {}
