//! Issue 8: the signatures users write get the right values, on every backend this build has
//! (in process without the `redis` feature, Redis with it).
//!
//! - Shapes are decided by the type checker: aliases, re-exports and paths of `Result` are
//!   `Result`s (an `Err` is never cached), and a type merely named `Result` is a plain value.
//! - A cached method in a generic `impl<T>` caches per `T`.
//! - Parameters with references inside (`Option<&str>`, `&[&str]`, `(&str, u32)`,
//!   `Option<&T>`, `Cow<str>`) are keyed by their owned form.

mod common;

use std::borrow::Cow;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

use cache_runtime::cached;
use serde::{Deserialize, Serialize};

// ---- 1. Shapes by the type checker ------------------------------------------------------

type Fallible<T> = Result<T, String>;
/// Like `anyhow::Result`: an alias with a default error type.
type AppResult<T, E = String> = Result<T, E>;

mod reexport {
    pub(crate) use std::result::Result as Outcome;
}

mod own {
    /// A type that is *named* `Result` but is not `core::result::Result`.
    #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    pub(crate) struct Result<T>(pub(crate) T);
}

static RATE: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 60)]
fn issue_8_rate(currency: &str) -> Fallible<u32> {
    RATE.fetch_add(1, SeqCst);
    match currency {
        "EUR" => Ok(108),
        other => Err(format!("no rate for {other}")),
    }
}

#[test]
fn issue_8_an_alias_of_result_never_caches_err() {
    if !common::backend_ready() {
        return;
    }
    assert!(issue_8_rate("XXX").is_err());
    assert!(issue_8_rate("XXX").is_err());
    assert_eq!(RATE.load(SeqCst), 2, "the Err was served from the cache");
    assert_eq!(issue_8_rate("EUR"), Ok(108));
    assert_eq!(issue_8_rate("EUR"), Ok(108));
    assert_eq!(RATE.load(SeqCst), 3, "the Ok was not cached");
}

static FMT: AtomicU32 = AtomicU32::new(0);

#[cached]
fn issue_8_fmt_result(fail: bool) -> std::fmt::Result {
    FMT.fetch_add(1, SeqCst);
    if fail { Err(std::fmt::Error) } else { Ok(()) }
}

#[test]
fn issue_8_std_fmt_result_is_a_result() {
    if !common::backend_ready() {
        return;
    }
    assert!(issue_8_fmt_result(true).is_err());
    assert!(issue_8_fmt_result(true).is_err());
    assert_eq!(FMT.load(SeqCst), 2);
    assert!(issue_8_fmt_result(false).is_ok());
    assert!(issue_8_fmt_result(false).is_ok());
    assert_eq!(FMT.load(SeqCst), 3);
}

static PATHS: AtomicU32 = AtomicU32::new(0);

#[cached]
fn issue_8_core_path(x: u32) -> core::result::Result<u32, String> {
    PATHS.fetch_add(1, SeqCst);
    if x == 0 { Err("zero".into()) } else { Ok(x) }
}

#[cached]
fn issue_8_reexported(x: u32) -> reexport::Outcome<u32, String> {
    PATHS.fetch_add(1, SeqCst);
    if x == 0 { Err("zero".into()) } else { Ok(x) }
}

#[cached]
fn issue_8_default_error(x: u32) -> AppResult<u32> {
    PATHS.fetch_add(1, SeqCst);
    if x == 0 { Err("zero".into()) } else { Ok(x) }
}

#[cached(null_ttl = 60)]
fn issue_8_io_option(x: u32) -> std::io::Result<Option<u32>> {
    PATHS.fetch_add(1, SeqCst);
    match x {
        0 => Err(std::io::Error::other("zero")),
        1 => Ok(None),
        x => Ok(Some(x)),
    }
}

#[test]
fn issue_8_paths_reexports_and_defaults_are_results() {
    if !common::backend_ready() {
        return;
    }
    let before = PATHS.load(SeqCst);
    for _ in 0..2 {
        assert!(issue_8_core_path(0).is_err());
        assert!(issue_8_reexported(0).is_err());
        assert!(issue_8_default_error(0).is_err());
        assert!(issue_8_io_option(0).is_err());
    }
    assert_eq!(PATHS.load(SeqCst) - before, 8, "an Err was cached");
    for _ in 0..2 {
        assert_eq!(issue_8_io_option(1).unwrap(), None);
        assert_eq!(issue_8_io_option(5).unwrap(), Some(5));
    }
    assert_eq!(PATHS.load(SeqCst) - before, 10, "Ok(None) is a cached null");
    assert_eq!(issue_8_io_option_cache().stats().null_hits, 1);
}

static OWN: AtomicU32 = AtomicU32::new(0);

#[cached]
fn issue_8_named_result(x: u32) -> own::Result<u32> {
    OWN.fetch_add(1, SeqCst);
    own::Result(x)
}

#[test]
fn issue_8_a_type_named_result_is_a_plain_value() {
    if !common::backend_ready() {
        return;
    }
    assert_eq!(issue_8_named_result(3), own::Result(3));
    assert_eq!(issue_8_named_result(3), own::Result(3));
    assert_eq!(OWN.load(SeqCst), 1);
}

// ---- 2. Generic impls cache per type ---------------------------------------------------

trait Table {
    const NAME: &'static str;
}
struct Users;
struct Orders;
impl Table for Users {
    const NAME: &'static str = "users";
}
impl Table for Orders {
    const NAME: &'static str = "orders";
}

struct Repo<T>(PhantomData<T>);

impl<T: Table> Repo<T> {
    fn new() -> Self {
        Repo(PhantomData)
    }

    #[cached(ttl = 60)]
    fn describe(&self, id: u64) -> String {
        format!("{}#{id}", T::NAME)
    }

    #[cached(ttl = 60, name = "repo:count")]
    fn count(&self, id: u64) -> u64 {
        T::NAME.len() as u64 * id
    }
}

#[test]
fn issue_8_generic_impls_never_share_entries() {
    if !common::backend_ready() {
        return;
    }
    let (users, orders) = (Repo::<Users>::new(), Repo::<Orders>::new());
    assert_eq!(users.describe(1), "users#1");
    assert_eq!(orders.describe(1), "orders#1");
    assert_eq!(users.describe(1), "users#1");
    assert_eq!(orders.describe(1), "orders#1");
    let (u, o) = (
        Repo::<Users>::describe_cache(),
        Repo::<Orders>::describe_cache(),
    );
    assert_ne!(u.name(), o.name());
    assert!(u.name().contains("Users") && o.name().contains("Orders"));
    assert_eq!((u.stats().loads, u.stats().hits), (1, 1));
    assert_eq!((o.stats().loads, o.stats().hits), (1, 1));
    assert!(Repo::<Users>::describe_invalidate(1).is_done());
    assert_eq!(orders.describe(1), "orders#1");
    assert_eq!(
        o.stats().hits,
        2,
        "invalidating Users' entry left Orders' alone"
    );

    // A given name gets the type arguments of `Self`.
    assert_eq!(users.count(2), 10);
    assert_eq!(orders.count(2), 12);
    assert_eq!(users.count(2), 10);
    let (u, o) = (Repo::<Users>::count_cache(), Repo::<Orders>::count_cache());
    assert_eq!(u.name(), "repo:count<signatures::Users>");
    assert_eq!(o.name(), "repo:count<signatures::Orders>");
}

/// `Self` with a lifetime: keyed per type without needing `Self: 'static`.
struct View<'a> {
    text: &'a str,
}

impl<'a> View<'a> {
    #[cached(key = "{n}")]
    fn prefix(&self, n: usize) -> String {
        self.text.chars().take(n).collect()
    }
}

#[test]
fn issue_8_methods_of_types_with_lifetimes() {
    if !common::backend_ready() {
        return;
    }
    let owned = String::from("hello");
    let view = View { text: &owned };
    assert_eq!(view.prefix(2), "he");
    assert_eq!(view.prefix(2), "he");
    assert_eq!(View::prefix_cache().stats().hits, 1);
}

// ---- 3. References inside parameter types -----------------------------------------------

static GREET: AtomicU32 = AtomicU32::new(0);

#[cached]
fn issue_8_greet(name: Option<&str>) -> String {
    GREET.fetch_add(1, SeqCst);
    format!("hello {}", name.unwrap_or("you"))
}

#[cached]
fn issue_8_join(parts: &[&str]) -> String {
    GREET.fetch_add(1, SeqCst);
    parts.join("+")
}

#[cached]
fn issue_8_pair(pair: (&str, u32), times: &&str) -> String {
    GREET.fetch_add(1, SeqCst);
    format!("{}{}{}", pair.0, pair.1, times)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, Serialize, Deserialize)]
struct User {
    id: u32,
}

#[cached]
fn issue_8_user(user: Option<&User>, tags: Vec<&str>) -> u32 {
    GREET.fetch_add(1, SeqCst);
    user.map_or(0, |u| u.id) + tags.len() as u32
}

#[cached]
fn issue_8_cow(text: Cow<'_, str>, arr: [&str; 2]) -> usize {
    GREET.fetch_add(1, SeqCst);
    text.len() + arr.len()
}

#[test]
fn issue_8_references_inside_parameters_key_by_the_owned_form() {
    if !common::backend_ready() {
        return;
    }
    let loads = || GREET.load(SeqCst);
    let start = loads();
    let ann = String::from("ann");
    assert_eq!(issue_8_greet(Some(&ann)), "hello ann");
    assert_eq!(issue_8_greet(Some("ann")), "hello ann");
    assert_eq!(issue_8_greet(None), "hello you");
    assert_eq!(issue_8_greet(Some("bob")), "hello bob");
    assert_eq!(loads() - start, 3);

    assert_eq!(issue_8_join(&["a", "b"]), "a+b");
    assert_eq!(issue_8_join(&["a", "b"]), "a+b");
    assert_eq!(issue_8_join(&["a+b"]), "a+b");
    assert_eq!(
        loads() - start,
        5,
        "[\"a\", \"b\"] and [\"a+b\"] are distinct keys"
    );

    assert_eq!(issue_8_pair(("x", 1), &"!"), "x1!");
    assert_eq!(issue_8_pair(("x", 1), &"!"), "x1!");
    assert_eq!(issue_8_pair(("x", 2), &"!"), "x2!");
    assert_eq!(loads() - start, 7);

    let user = User { id: 4 };
    assert_eq!(issue_8_user(Some(&user), vec!["a"]), 5);
    assert_eq!(issue_8_user(Some(&user), vec!["a"]), 5);
    assert_eq!(issue_8_user(None, vec!["a"]), 1);
    assert_eq!(loads() - start, 9);

    assert_eq!(issue_8_cow(Cow::Borrowed("abc"), ["p", "q"]), 5);
    assert_eq!(issue_8_cow(Cow::Owned("abc".into()), ["p", "q"]), 5);
    assert_eq!(issue_8_cow(Cow::Borrowed("abc"), ["p", "r"]), 5);
    assert_eq!(
        loads() - start,
        11,
        "Borrowed and Owned of one text are one key"
    );
}
