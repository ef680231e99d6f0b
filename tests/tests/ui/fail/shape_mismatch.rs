use cache_runtime::cached;

/// A type named `Result` that is not `core::result::Result`.
struct Result<T>(T);

#[cached]
fn f(x: u32) -> Result<u32> {
    Result(x)
}

fn main() {}
