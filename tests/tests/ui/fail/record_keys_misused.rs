use cache_runtime::cached;

#[derive(Hash, PartialEq, Eq, Clone)]
struct Email(String);

// A key part without `Debug`.
#[cached(record_keys = true)]
fn f(email: Email) -> u32 { email.0.len() as u32 }

// Not a bool.
#[cached(record_keys = "yes")]
fn g(x: u32) -> u32 { x }

fn main() {}
