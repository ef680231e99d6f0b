use cache_runtime::cached;

#[derive(Hash, PartialEq, Eq, Clone)]
struct Id(u32);

#[cached(key = "user:{id}")]
fn f(id: Id) -> u32 { id.0 }

fn main() {}
