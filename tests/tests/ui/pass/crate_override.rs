/// A crate that re-exports the runtime under another path.
mod reexport {
    pub use cache_runtime as runtime;
}

#[reexport::runtime::cached(crate = "reexport::runtime", ttl = 60)]
fn through_reexport(x: u32) -> u32 {
    x
}

fn main() {
    assert_eq!(through_reexport(3), 3);
    assert_eq!(through_reexport_cache().stats().misses, 1);
}
