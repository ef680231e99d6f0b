use cache_runtime::cached;

#[cached(codec = "xml")]
fn f(x: u32) -> u32 { x }

#[cached(backend = "memory", codec = "json")]
fn g(x: u32) -> u32 { x }

fn main() {}
