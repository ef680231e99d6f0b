//! Issue 8: `#[deprecated]` stays on the cached function for its callers (and only for them:
//! its own definition does not warn).
#![deny(deprecated)]

use cache_runtime::cached;

#[deprecated(note = "use `rate_v2`")]
#[cached]
fn rate(x: u32) -> u32 {
    x
}

fn main() {
    let _ = rate(1);
}
