use cache_runtime::cached;

// Issue 8: the `f64` lacks `Hash` and `Eq`; the error names it, not `id` or internals.
#[cached]
fn f(id: u32, weight: f64) -> u32 {
    id + weight as u32
}

fn main() {}
