//! Issue 11: every freshness argument, on every kind of body: owned arguments (run in the
//! background), borrowed ones, `Cow<'_, str>` and a type of ours with its lifetime written
//! `'_` (revalidated in place), methods, async, a body that holds something not `Send`.

use std::borrow::Cow;
use std::rc::Rc;

use cache_runtime::cached;

#[cached(ttl = 60, stale = "30s", stale_if_error = "1h", load_timeout = "200ms", early_refresh = 1.0)]
fn owned(id: u64, tags: Vec<String>) -> Result<u64, String> {
    Ok(id + tags.len() as u64)
}

#[cached(ttl = 60, stale = 30, early_refresh = 2)]
fn borrowed(name: &str) -> String {
    name.to_owned()
}

#[cached(ttl = 60, stale = 30, load_timeout = "1s")]
fn cow(name: Cow<'_, str>) -> usize {
    name.len()
}

pub struct Row<'a>(pub &'a str);

#[cached(ttl = 60, stale = 30, key = "{id}")]
fn row(id: u32, row: Row<'_>) -> usize {
    row.0.len() + id as usize
}

#[cached(ttl = 60, early_refresh = 0.5)]
async fn owned_async(id: u64) -> u64 {
    id
}

#[cached(ttl = 60, stale = 30)]
async fn borrowed_async(name: &str) -> String {
    name.to_owned()
}

#[cached(ttl = 60, stale = 30, key = "{id}", backend = "memory")]
fn not_send(id: u64, extra: Rc<u64>) -> u64 {
    id + *extra
}

#[cached(ttl = 60, stale = 30)]
async fn holds_rc_across_await(id: u64) -> u64 {
    let rc = Rc::new(id);
    std::future::ready(()).await;
    *rc
}

struct Repo;

impl Repo {
    #[cached(ttl = 60, stale = 30, stale_if_error = 60, load_timeout = "1s")]
    fn method(&self, id: u64) -> u64 {
        id
    }
}

fn main() {
    assert_eq!(owned(1, vec!["a".into()]), Ok(2));
    assert_eq!(borrowed("x"), "x");
    assert_eq!(cow(Cow::Borrowed("abc")), 3);
    assert_eq!(row(1, Row("ab")), 3);
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    assert_eq!(rt.block_on(owned_async(4)), 4);
    assert_eq!(rt.block_on(borrowed_async("y")), "y");
    assert_eq!(rt.block_on(holds_rc_across_await(6)), 6);
    assert_eq!(Repo.method(5), 5);
    assert_eq!(not_send(1, Rc::new(2)), 3);
}
