//! A global allocator that forwards every call to the system allocator and
//! keeps, per thread, the net bytes that thread has allocated (allocated
//! minus freed, by the thread that does it). rivr's script runner reads it
//! to bound a script's memory: each script runs on its own OS thread, so
//! "what this thread holds" is "what this script holds".
//!
//! This is the only `unsafe` rivr needs for it, kept in its own small crate
//! so the `rivr` library keeps `#![forbid(unsafe_code)]`.
//!
//! ```
//! #[global_allocator]
//! static ALLOC: alloc_meter::Meter = alloc_meter::Meter;
//!
//! fn main() {
//!     let before = alloc_meter::thread_held();
//!     let v = vec![0u8; 4096];
//!     assert_eq!(alloc_meter::thread_held() - before, 4096);
//!     drop(v);
//! }
//! ```
//!
//! Memory freed by another thread than the one that allocated it is counted
//! where it is freed, so a thread's figure drifts by what it hands over to
//! (or receives from) other threads; for a script thread that is a few
//! bytes per message it sends or receives. The figure is signed for that
//! reason.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::OnceLock;

/// The system allocator, metered per thread.
pub struct Meter;

thread_local! {
    /// Net bytes this thread allocated. Const-initialised and without a
    /// destructor, so reading it never allocates and never fails, even
    /// while the thread is being torn down.
    static HELD: Cell<isize> = const { Cell::new(0) };
    /// Allocations (and reallocations) this thread made: for tests that
    /// show a path allocates nothing, which a net figure cannot.
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

#[inline]
fn add(bytes: isize) {
    let _ = HELD.try_with(|h| h.set(h.get().wrapping_add(bytes)));
    if bytes > 0 {
        let _ = ALLOCS.try_with(|n| n.set(n.get().wrapping_add(1)));
    }
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the bookkeeping only touches a thread-local
// `Cell<isize>` that never allocates.
unsafe impl GlobalAlloc for Meter {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        add(-(layout.size() as isize));
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            add(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Net bytes the current thread has allocated since it started (or since
/// the last [`set_thread_held`]); 0 forever when `Meter` is not the global
/// allocator.
#[inline]
pub fn thread_held() -> isize {
    HELD.try_with(Cell::get).unwrap_or(0)
}

/// Allocations the current thread has made since it started (each
/// `alloc` and each growing `realloc`); 0 forever when `Meter` is not the
/// global allocator.
#[inline]
pub fn thread_allocs() -> u64 {
    ALLOCS.try_with(Cell::get).unwrap_or(0)
}

/// Overwrites the current thread's figure: to forgive what some code
/// allocated on behalf of the whole process (a shared cache), save it
/// before and put it back after.
#[inline]
pub fn set_thread_held(bytes: isize) {
    let _ = HELD.try_with(|h| h.set(bytes));
}

/// Whether `Meter` is this process's global allocator (probed once).
pub fn is_installed() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        let before = thread_held();
        let probe = std::hint::black_box(Box::new([0u8; 64]));
        let during = thread_held();
        drop(probe);
        during != before
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[global_allocator]
    static ALLOC: Meter = Meter;

    #[test]
    fn counts_what_this_thread_holds() {
        assert!(is_installed());
        let before = thread_held();
        let v = std::hint::black_box(vec![0u8; 100_000]);
        assert_eq!(thread_held() - before, 100_000);
        let mut v2 = std::hint::black_box(Vec::<u8>::with_capacity(10));
        v2.reserve_exact(1000);
        assert_eq!(thread_held() - before, 100_000 + v2.capacity() as isize);
        drop(v);
        drop(v2);
        assert_eq!(thread_held(), before);
    }

    #[test]
    fn other_threads_do_not_count_here() {
        let before = thread_held();
        std::thread::spawn(|| {
            let start = thread_held();
            let v = std::hint::black_box(vec![0u8; 1 << 20]);
            assert_eq!(thread_held() - start, 1 << 20);
            drop(v);
        })
        .join()
        .unwrap();
        assert!(
            (thread_held() - before).abs() < 4096,
            "spawning costs a little, not the thread's MiB"
        );
    }

    #[test]
    fn set_thread_held_forgives() {
        let saved = thread_held();
        let kept = std::hint::black_box(vec![1u8; 50_000]);
        set_thread_held(saved);
        assert_eq!(thread_held(), saved);
        drop(kept);
        assert_eq!(thread_held(), saved - 50_000);
        set_thread_held(saved);
    }
}
