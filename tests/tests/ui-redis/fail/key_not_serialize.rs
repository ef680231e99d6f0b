use cache_runtime::cached;

#[derive(Clone, Hash, PartialEq, Eq)]
struct Filter(u32);

#[cached(ttl = 60)]
fn search(filter: Filter) -> Vec<u32> {
    vec![filter.0]
}

fn main() {}
