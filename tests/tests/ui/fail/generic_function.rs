use cache_runtime::cached;

#[cached]
fn f<T: Clone + Send + Sync + 'static>(x: T) -> T { x }

fn main() {}
