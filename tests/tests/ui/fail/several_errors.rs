use cache_runtime::cached;

#[cached(ttl = 0, jitter = 2.0, tll = 5, key = "{nope}")]
fn f(id: u32) -> u32 { id }

fn main() {
    // The function is still emitted beside the errors: calling it adds no error.
    let _ = f(1);
}
