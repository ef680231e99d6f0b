use cache_runtime::cached;

struct Report;

#[cached]
fn f(x: u32) -> Report { let _ = x; Report }

fn main() {}
