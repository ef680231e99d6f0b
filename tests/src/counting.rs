//! A global allocator that counts the live heap bytes of the process, for the memory figures
//! (`benches/memory.rs`) and the byte budget's test (`tests/max_bytes_heap.rs`). Install it
//! with `#[global_allocator] static A: Counting = Counting;` and read [`live`].

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

/// The system allocator, counting the bytes it hands out and takes back.
#[derive(Debug)]
pub struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

/// The heap bytes live now (allocated and not freed), as the program asked for them (the
/// allocator's own headers and rounding are not counted).
pub fn live() -> isize {
    LIVE.load(Relaxed)
}

// SAFETY: forwards every call to the system allocator, only counting sizes.
#[allow(unsafe_code, reason = "a counting allocator is the measurement")]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
