//! Charts' buffers, kept for the process in a [`Pool`] so drawing a chart rarely faults in
//! fresh memory: the PNG files' bytes, and the pixels, whose pages are put in memory by one
//! call as a buffer is made, in 4 KiB pages.
//!
//! Fresh memory is dear on virtual machines whose host takes back the memory the guest
//! frees. On the 2-core machine this project is measured on (2026-12-03), first writing 8 MiB
//! in a new process started 3 s after the one before took 4.6-7.1 ms in 4 KiB pages, 2.4-4.8
//! ms in 4 KiB pages put in memory by one `MADV_POPULATE_WRITE`, and in 2 MiB (transparent
//! huge) pages either about 1 ms or, in 4 of 8 tries, 8-28 ms: the host had the memory at
//! hand or not. The pixels were in huge pages until then (an earlier session measured
//! 0.13-0.52 ms for a 1440x800 chart's 3.4 MB in them); in 5 of 6 profiled runs of the digits
//! sweep the final report then spent 17-25 ms of CPU zeroing them. The final report draws its
//! summary charts on threads that drew nothing before, on the path between training's end
//! and the run's end; [`super::warm_up`] readies their buffers before.

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::Mutex;

/// The page size; buffers come in multiples of it.
const PAGE: usize = 4096;

/// A buffer of bytes aligned to and sized in multiples of [`PAGE`], its pages in memory.
pub(super) struct PixelBuffer {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: the buffer owns its allocation alone, as a `Vec<u8>` does, and hands out its bytes
// only through `&mut self`.
unsafe impl Send for PixelBuffer {}

impl PixelBuffer {
    /// A buffer of at least `len` bytes (its contents not yet set), every page of it already
    /// in memory.
    pub(super) fn new(len: usize) -> Self {
        let size = len.max(1).next_multiple_of(PAGE);
        let layout = Layout::from_size_align(size, PAGE).expect("a chart's pixels fit in memory");
        // SAFETY: the layout's size is not zero.
        let ptr = unsafe { std::alloc::alloc(layout) };
        let ptr = NonNull::new(ptr).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        populate(ptr, size);
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

/// Has the kernel put `size` bytes at `ptr` (page-aligned) in memory in 4 KiB pages, in one
/// call rather than a page fault per page. Only advice: where it is refused (not Linux, or a
/// kernel older than 5.14), the pages come in as they are first written, as before.
fn populate(ptr: NonNull<u8>, size: usize) {
    #[cfg(target_os = "linux")]
    // SAFETY: the range is one allocation this buffer owns, page-aligned. Neither advice
    // changes what the memory holds: MADV_NOHUGEPAGE changes how it is backed, and
    // MADV_POPULATE_WRITE faults it in as a write to each page would.
    unsafe {
        libc::madvise(ptr.as_ptr().cast(), size, libc::MADV_NOHUGEPAGE);
        libc::madvise(ptr.as_ptr().cast(), size, libc::MADV_POPULATE_WRITE);
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

/// Sees that `pool` holds `count` buffers of at least `len` bytes, their pages in memory:
/// those kept, and new ones for the rest.
pub(super) fn warm(pool: &Pool<PixelBuffer>, len: usize, count: usize) {
    let buffers: Vec<_> = (0..count)
        .map(|_| pool.take(len).unwrap_or_else(|| PixelBuffer::new(len)))
        .collect();
    for buffer in buffers {
        pool.give_back(buffer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_aligned_filled_and_reused_by_size() {
        let pool = Pool::new();
        let take = |len| pool.take(len).unwrap_or_else(|| PixelBuffer::new(len));
        let mut small = take(1_402_200);
        assert_eq!(small.capacity(), 1_404_928, "343 pages of 4 KiB");
        assert_eq!(small.ptr.as_ptr() as usize % PAGE, 0);
        let bytes = small.filled(1_402_200, 255);
        assert!(bytes.iter().all(|&b| b == 255));
        bytes[7] = 3;
        let small_at = small.ptr;
        pool.give_back(small);

        // Too big for the kept buffer: a new one, and the small one stays for small charts.
        let mut large = take(3_456_000);
        assert_eq!(large.capacity(), 3_457_024);
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
        warm(&pool, 3_456_000, 1);
        let made = pool.take(1).expect("a buffer was made");
        assert_eq!(made.capacity(), 3_457_024);
        let at = made.ptr;
        pool.give_back(made);
        warm(&pool, 3_456_000, 1);
        let kept = pool.take(3_456_000).expect("the same buffer");
        assert_eq!(kept.ptr, at);
        assert!(pool.take(1).is_none(), "no second buffer");
        // Too small a kept buffer is left for smaller charts.
        pool.give_back(PixelBuffer::new(1));
        warm(&pool, 3_456_000, 1);
        assert_eq!(pool.take(3_456_000).map(|b| b.capacity()), Some(3_457_024));
        assert_eq!(pool.take(1).map(|b| b.capacity()), Some(PAGE));

        // Two at once: the one kept and one more.
        let kept = PixelBuffer::new(3_456_000);
        let at = kept.ptr;
        pool.give_back(kept);
        warm(&pool, 3_456_000, 2);
        let two = [pool.take(3_456_000), pool.take(3_456_000)].map(|b| b.map(|b| b.ptr));
        assert!(two.contains(&Some(at)), "the kept one");
        assert!(two.iter().all(Option::is_some), "and one more");
        assert!(pool.take(1).is_none(), "no third buffer");
    }
}
