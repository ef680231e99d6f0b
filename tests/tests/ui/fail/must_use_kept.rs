//! Issue 8: `#[must_use]` stays on the cached function.
#![deny(unused_must_use)]

use cache_runtime::cached;

#[cached]
#[must_use]
fn total(x: u32) -> u32 {
    x
}

fn main() {
    total(1);
}
