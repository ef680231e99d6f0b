//! Issue 8: every part of the signature and every attribute behaves as on an uncached
//! function, under `#![deny(warnings)]`.
#![deny(warnings)]

use cache_runtime::cached;

#[cached]
pub extern "C" fn checksum(x: u32) -> u32 {
    x.wrapping_mul(31)
}

/// Exported under its own name: the body (`_uncached`) is not exported a second time.
#[cached]
#[unsafe(no_mangle)]
pub extern "C" fn cache_runtime_test_exported(x: u32) -> u32 {
    x + 1
}

#[deprecated(note = "use `rate_v2`")]
#[cached]
pub fn rate(x: u32) -> u32 {
    x * 2
}

#[cached]
#[must_use]
#[inline]
#[cold]
pub fn annotated(x: u32) -> u32 {
    x
}

/// # Safety
/// `x` must be odd.
#[cached]
pub unsafe fn odd_only(x: u32) -> u32 {
    x / 2
}

#[cached]
pub fn bounded<'a, 'b>(x: &'a str, y: &'b str) -> usize
where
    'a: 'b,
{
    x.len() + y.len()
}

#[cached]
#[expect(clippy::needless_pass_by_value)]
pub fn expected(x: String) -> usize {
    x.len()
}

fn main() {
    let f: extern "C" fn(u32) -> u32 = checksum;
    assert_eq!(f(2), 62);
    let g: extern "C" fn(u32) -> u32 = cache_runtime_test_exported;
    assert_eq!(g(1), 2);
    #[allow(deprecated)]
    let r = rate(2);
    assert_eq!(r, 4);
    assert_eq!(annotated(3), 3);
    // SAFETY: 3 is odd.
    assert_eq!(unsafe { odd_only(3) }, 1);
    assert_eq!(bounded("ab", "c"), 3);
    assert_eq!(expected("abc".into()), 3);
}
