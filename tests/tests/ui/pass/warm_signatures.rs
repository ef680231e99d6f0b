//! Signatures with arguments that borrow higher-ranked (`&dyn Fn(&str)`, `fn(&str)`): `f`,
//! `f_entry` and the other companions compile; `f_warm` is left out, since its item type could
//! not be written. A function with plain references gets `f_warm`.
use cache_runtime::cached;

#[cached(key = "{id}")]
fn callback(id: u32, render: &dyn Fn(&str) -> String) -> String {
    render(&id.to_string())
}

#[cached(key = "{id}")]
fn pointer(id: u32, f: fn(&str) -> usize) -> usize {
    f("x") + id as usize
}

#[cached(key = "{id}")]
fn warmable(id: u32, label: &str) -> String {
    format!("{label}{id}")
}

fn main() {
    assert_eq!(callback_entry(2, &|s| s.to_owned()).into_inner(), "2");
    assert_eq!(callback(1, &|s| s.to_owned()), "1");
    assert_eq!(pointer(1, str::len), 2);
    let warmed = warmable_warm([(1, "a"), (2, "b")]);
    assert_eq!(warmed.loaded, 2);
}
