use cache_runtime::cached;

#[cached]
fn explicit_lifetime<'a>(name: &'a str) -> String {
    name.to_uppercase()
}

#[cfg(any())]
#[cached]
fn compiled_out(x: NoSuchType) -> u32 {
    x
}

/// Docs stay on the cached function.
#[cached]
#[inline]
#[must_use]
fn documented(x: u32) -> u32 {
    x
}

fn main() {
    assert_eq!(explicit_lifetime("a"), "A");
    assert_eq!(documented(1), 1);
}
