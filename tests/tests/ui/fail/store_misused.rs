use cache_runtime::cached;

#[cached(store = crate::Elsewhere, backend = "memory")]
fn one(id: u32) -> u32 {
    id
}

#[cached(store = "crate::Elsewhere")]
fn two(id: u32) -> u32 {
    id
}

fn main() {}
