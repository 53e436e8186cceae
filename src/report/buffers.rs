//! Charts' buffers, kept for the process in a [`Pool`] so drawing a chart rarely faults in
//! fresh memory: the PNG files' bytes, and the pixels, which are aligned to 2 MiB and
//! advised as huge pages, so that fresh memory comes as a few large pages rather than
//! hundreds of small ones.
//!
//! Faulting in fresh memory is dear on virtual machines: on the 2-core machines this project
//! is measured on, first touching the 3.4 MB of a 1440x800 chart took 1.5-2.5 ms in 4 KiB
//! pages (median 1.6 ms of 60 runs, about 2 µs a page) and 0.13-0.52 ms (median 0.15) in
//! 2 MiB pages. The final report
//! draws its summary charts on threads that drew nothing before: their buffers' page faults
//! were 843 of the 4,223 of a whole digits sweep, on the path between training's end and the
//! run's end. Where the kernel gives no huge pages (not Linux, or transparent huge pages set
//! to `never`), the buffers are plain memory and work as before.

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::Mutex;

/// The huge page size on x86-64 and most arm64 kernels; buffers come in multiples of it.
const HUGE: usize = 2 << 20;

/// A buffer of bytes aligned to and sized in multiples of [`HUGE`].
pub(super) struct PixelBuffer {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: the buffer owns its allocation alone, as a `Vec<u8>` does, and hands out its bytes
// only through `&mut self`.
unsafe impl Send for PixelBuffer {}

impl PixelBuffer {
    /// A buffer of at least `len` bytes (its contents not yet set).
    pub(super) fn new(len: usize) -> Self {
        let size = len.max(1).next_multiple_of(HUGE);
        let layout = Layout::from_size_align(size, HUGE).expect("a chart's pixels fit in memory");
        // SAFETY: the layout's size is not zero.
        let ptr = unsafe { std::alloc::alloc(layout) };
        let ptr = NonNull::new(ptr).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        advise_huge_pages(ptr, size);
        Self { ptr, layout }
    }

    pub(super) fn capacity(&self) -> usize {
        self.layout.size()
    }

    /// The buffer's first `len` bytes, each set to `byte`.
    pub(super) fn filled(&mut self, len: usize, byte: u8) -> &mut [u8] {
        assert!(len <= self.capacity(), "the buffer holds {len} bytes");
        // SAFETY: the first `len` bytes lie inside the allocation (checked above); they are
        // all written before the slice over them is made, and `&mut self` keeps it unique.
        unsafe {
            self.ptr.as_ptr().write_bytes(byte, len);
            std::slice::from_raw_parts_mut(self.ptr.as_ptr(), len)
        }
    }
}

impl Drop for PixelBuffer {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this very layout, and freed only here.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

/// Asks the kernel to back `size` bytes at `ptr` (aligned to [`HUGE`]) with huge pages when
/// they are first touched. Only advice: where it is refused, the memory stays as it was.
fn advise_huge_pages(ptr: NonNull<u8>, size: usize) {
    #[cfg(target_os = "linux")]
    // SAFETY: the range is one allocation this buffer owns, page-aligned; MADV_HUGEPAGE
    // changes how its pages are backed, never what they hold.
    unsafe {
        libc::madvise(ptr.as_ptr().cast(), size, libc::MADV_HUGEPAGE);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (ptr, size);
}

/// A buffer a [`Pool`] keeps: how many bytes it holds.
pub(super) trait Capacity {
    fn capacity(&self) -> usize;
}

impl Capacity for Vec<u8> {
    fn capacity(&self) -> usize {
        Vec::capacity(self)
    }
}

impl Capacity for PixelBuffer {
    fn capacity(&self) -> usize {
        PixelBuffer::capacity(self)
    }
}

/// Buffers of charts drawn before, shared by every thread: the final report draws on threads
/// that have drawn nothing yet, and takes the buffers of the live chart thread, which by then
/// has stopped. It holds no more buffers than were in use at once, plus, where a chart needed
/// a larger one than any kept, the smaller ones kept then (for pixels, one per buffer size:
/// 2 MiB holds a trial chart, 4 MiB the digits sweep's largest chart).
pub(super) struct Pool<T>(Mutex<Vec<T>>);

impl<T: Capacity> Pool<T> {
    pub(super) const fn new() -> Self {
        Self(Mutex::new(Vec::new()))
    }

    /// The smallest buffer kept that holds `len` bytes.
    pub(super) fn take(&self, len: usize) -> Option<T> {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let fits = (0..kept.len())
            .filter(|&i| kept[i].capacity() >= len)
            .min_by_key(|&i| kept[i].capacity());
        fits.map(|i| kept.swap_remove(i))
    }

    /// The largest buffer kept.
    pub(super) fn take_largest(&self) -> Option<T> {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let largest = (0..kept.len()).max_by_key(|&i| kept[i].capacity());
        largest.map(|i| kept.swap_remove(i))
    }

    pub(super) fn give_back(&self, buffer: T) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(buffer);
    }
}

/// Sees that `pool` holds a buffer of at least `len` bytes with every page touched: the
/// one kept, else a new one, touched whole.
pub(super) fn warm(pool: &Pool<PixelBuffer>, len: usize) {
    let buffer = pool.take(len).unwrap_or_else(|| {
        let mut fresh = PixelBuffer::new(len);
        let capacity = fresh.capacity();
        fresh.filled(capacity, 255);
        fresh
    });
    pool.give_back(buffer);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_aligned_filled_and_reused_by_size() {
        let pool = Pool::new();
        let take = |len| pool.take(len).unwrap_or_else(|| PixelBuffer::new(len));
        let mut small = take(1_402_200);
        assert_eq!(small.capacity(), HUGE);
        assert_eq!(small.ptr.as_ptr() as usize % HUGE, 0);
        let bytes = small.filled(1_402_200, 255);
        assert!(bytes.iter().all(|&b| b == 255));
        bytes[7] = 3;
        let small_at = small.ptr;
        pool.give_back(small);

        // Too big for the kept buffer: a new one, and the small one stays for small charts.
        let mut large = take(3_456_000);
        assert_eq!(large.capacity(), 2 * HUGE);
        assert_ne!(large.ptr, small_at);
        assert!(large.filled(3_456_000, 0).iter().all(|&b| b == 0));
        let large_at = large.ptr;
        pool.give_back(large);

        // Each size takes the smallest buffer that holds it, filled afresh.
        let mut again = take(700_000);
        assert_eq!(again.ptr, small_at);
        assert!(again.filled(700_000, 255).iter().all(|&b| b == 255));
        assert_eq!(take(2_500_000).ptr, large_at);
        pool.give_back(again);
    }

    #[test]
    fn warming_uses_a_kept_buffer_again() {
        let pool = Pool::new();
        warm(&pool, 3_456_000);
        let made = pool.take(1).expect("a buffer was made");
        assert_eq!(made.capacity(), 2 * HUGE);
        let at = made.ptr;
        pool.give_back(made);
        warm(&pool, 3_456_000);
        let kept = pool.take(3_456_000).expect("the same buffer");
        assert_eq!(kept.ptr, at);
        assert!(pool.take(1).is_none(), "no second buffer");
        // Too small a kept buffer is left for smaller charts.
        pool.give_back(PixelBuffer::new(1));
        warm(&pool, 3_456_000);
        assert_eq!(pool.take(3_456_000).map(|b| b.capacity()), Some(2 * HUGE));
        assert_eq!(pool.take(1).map(|b| b.capacity()), Some(HUGE));
    }
}
