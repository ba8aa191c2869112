//! Pooled receive buffers. A request body, gRPC or HTTP (and its decompressed form), is read into a
//! buffer taken from a bounded pool and frozen into `Bytes` that own it; spans then travel
//! as slices of it through batching and export. When the last slice is dropped, wherever that
//! happens, the buffer goes back to the pool instead of to the allocator, so the steady stream of
//! request-sized allocations neither reallocates nor faults in freshly returned pages.

use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;

use crate::budget::Reservation;

/// Buffers kept for reuse.
pub const DEFAULT_POOLED_BUFFERS: usize = 64;
/// A buffer that grew beyond this goes back to the allocator, so the pool's memory stays bounded
/// (at most `DEFAULT_POOLED_BUFFERS` × this).
pub const MAX_POOLED_BUFFER_BYTES: usize = 1024 * 1024;

/// A bounded pool of byte buffers.
#[derive(Debug)]
pub struct BufferPool {
    free: FreeList<Vec<u8>>,
}

/// A bounded free list, last in first out: what it hands out is what was freed most recently, still
/// in cache, rather than the coldest. Shared by every buffer pool of the gateway.
#[derive(Debug)]
pub(crate) struct FreeList<T> {
    items: Mutex<Vec<T>>,
    max: usize,
}

/// A buffer taken from the pool; returns there when dropped.
#[derive(Debug)]
pub struct PooledBuf {
    vec: Vec<u8>,
    pool: Arc<BufferPool>,
    /// The memory budget these bytes are counted against, released with the buffer.
    charge: Option<Reservation>,
}

// === impl BufferPool ===

impl BufferPool {
    /// A pool holding at most `buffers` free buffers.
    pub fn new(buffers: usize) -> Arc<Self> {
        Arc::new(Self { free: FreeList::new(buffers.max(1)) })
    }

    /// An empty buffer with room for at least `capacity` bytes.
    pub fn take(self: &Arc<Self>, capacity: usize) -> PooledBuf {
        let mut vec = self.free.pop().unwrap_or_default();
        vec.clear();
        vec.reserve(capacity);
        PooledBuf { vec, pool: Arc::clone(self), charge: None }
    }

    /// Free buffers waiting for reuse.
    pub fn available(&self) -> usize {
        self.free.len()
    }
}

// === impl FreeList ===

impl<T> FreeList<T> {
    /// A list keeping at most `max` items.
    pub(crate) const fn new(max: usize) -> Self {
        Self { items: Mutex::new(Vec::new()), max }
    }

    /// The item freed last, if any.
    pub(crate) fn pop(&self) -> Option<T> {
        self.lock().pop()
    }

    /// Keeps `item` for reuse; a full list lets it go back to the allocator.
    pub(crate) fn push(&self, item: T) {
        let mut items = self.lock();
        if items.len() < self.max {
            items.push(item);
        }
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<T>> {
        // The list is valid whatever a panicking holder was doing: it only pushes and pops.
        self.items.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// === impl PooledBuf ===

impl PooledBuf {
    /// Appends bytes.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.vec.extend_from_slice(bytes);
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.vec.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.vec.is_empty()
    }

    /// Counts the buffer against the memory budget until its last slice is dropped.
    pub fn charge(&mut self, reservation: Reservation) {
        self.charge = Some(reservation);
    }

    /// The reservation attached by [`PooledBuf::charge`], to grow as bytes arrive.
    pub fn reservation_mut(&mut self) -> Option<&mut Reservation> {
        self.charge.as_mut()
    }

    /// The buffer itself, for writers that need a `Vec` (compressors).
    pub fn as_mut_vec(&mut self) -> &mut Vec<u8> {
        &mut self.vec
    }

    /// Freezes into `Bytes` that own the buffer; slices of it keep it alive, the last drop returns it.
    pub fn freeze(self) -> Bytes {
        Bytes::from_owner(self)
    }
}

impl AsRef<[u8]> for PooledBuf {
    fn as_ref(&self) -> &[u8] {
        &self.vec
    }
}

impl Write for PooledBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.vec.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        let vec = std::mem::take(&mut self.vec);
        if vec.capacity() > 0 && vec.capacity() <= MAX_POOLED_BUFFER_BYTES {
            self.pool.free.push(vec);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: a pooled body is frozen, sliced, and the slices are dropped in any order.
    /// Guarantees: the buffer returns to the pool only after the last slice is gone, and is reused.
    #[test]
    fn buffer_returns_after_the_last_slice() {
        let pool = BufferPool::new(4);
        let mut buf = pool.take(1024);
        buf.extend_from_slice(b"hello world");
        let bytes = buf.freeze();
        let hello = bytes.slice(..5);
        drop(bytes);
        assert_eq!(pool.available(), 0, "a live slice must keep the buffer");
        assert_eq!(&hello[..], b"hello");
        drop(hello);
        assert_eq!(pool.available(), 1);
        let again = pool.take(10);
        assert!(again.is_empty() && again.vec.capacity() >= 1024, "the pooled allocation is reused");
    }

    /// Scenario: a buffer charged to the memory budget is frozen and sliced, and the slices are
    /// dropped.
    /// Guarantees: the budget stays charged while any slice lives and is released with the last.
    #[test]
    fn charge_is_released_with_the_last_slice() {
        let budget = crate::budget::MemoryBudget::unmetered(1000);
        let pool = BufferPool::new(4);
        let mut buf = pool.take(100);
        buf.extend_from_slice(&[1; 100]);
        buf.charge(budget.try_reserve(100).unwrap());
        let bytes = buf.freeze();
        let tail = bytes.slice(90..);
        drop(bytes);
        assert_eq!(budget.in_use(), 100);
        drop(tail);
        assert_eq!(budget.in_use(), 0);
    }

    /// Scenario: two buffers of different sizes are freed one after the other.
    /// Guarantees: the next one taken is the one freed last (the one most likely still in cache).
    #[test]
    fn the_last_buffer_freed_is_reused_first() {
        let pool = BufferPool::new(4);
        let (small, large) = (pool.take(1000), pool.take(100_000));
        drop(small);
        drop(large);
        assert!(pool.take(0).vec.capacity() >= 100_000);
        drop(pool.take(0));
        let (a, b) = (pool.take(0), pool.take(0));
        assert!(a.vec.capacity() >= 100_000 && b.vec.capacity() < 100_000);
    }

    /// Scenario: more buffers than the pool holds, and one grown past the size cap, are dropped.
    /// Guarantees: the pool keeps at most its bound and never a buffer over the cap.
    #[test]
    fn pool_is_bounded() {
        let pool = BufferPool::new(2);
        let bufs: Vec<PooledBuf> = (0..5).map(|_| pool.take(16)).collect();
        drop(bufs);
        assert_eq!(pool.available(), 2);
        let pool = BufferPool::new(2);
        drop(pool.take(MAX_POOLED_BUFFER_BYTES + 1));
        assert_eq!(pool.available(), 0);
    }
}
