use cache_runtime::cached;

struct Filter { min: f64 }

#[cached]
fn f(filter: &Filter) -> u32 { filter.min as u32 }

fn main() {}
