#![deny(warnings)]
use cache_runtime::cached;

#[cached]
fn normalize(mut name: String, mut n: u32) -> String {
    name.make_ascii_lowercase();
    n += 1;
    format!("{name}{n}")
}

fn main() {
    assert_eq!(normalize("AB".into(), 1), "ab2");
    assert_eq!(normalize_refresh("AB".into(), 1), "ab2");
}
