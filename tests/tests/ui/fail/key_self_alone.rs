use cache_runtime::cached;

struct S;
impl S {
    #[cached(key = "{self}:{x}")]
    fn f(&self, x: u32) -> u32 { x }
}

fn main() {}
