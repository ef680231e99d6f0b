use cache_runtime::cached;

#[derive(Clone)]
struct Page(String);

// `verify` compares a fresh value with the served one: `PartialEq` in process.
#[cached(ttl = 60, verify = 0.01, backend = "memory")]
fn page(id: u64) -> Page {
    Page(format!("{id}"))
}

#[cached(ttl = 60, verify = 2.0, backend = "memory")]
fn too_much(id: u64) -> u64 {
    id
}

#[cached(ttl = 60, verify = "often", backend = "memory")]
fn not_a_number(id: u64) -> u64 {
    id
}

// A body that borrows cannot run after its caller has the answer.
#[cached(ttl = 60, verify = 0.5, backend = "memory", key = "{name}")]
fn borrowed(name: &str) -> usize {
    name.len()
}

fn main() {}
