//! A socket adapter that reads ahead on receive connections. h2 reads into an 8–16 KiB buffer, so a
//! 50 KB request took five or six `recvfrom` calls; the adapter reads up to [`READ_AHEAD_BYTES`] at
//! once and serves h2's small reads from that (at 200k spans/s, 55k calls per 5 s became 12k).
//!
//! The buffer comes from a small process-wide pool and goes back as soon as it is empty, so an idle
//! connection holds none: ten thousand idle connections cost nothing extra.
//!
//! Writes pass straight through. Gathering an export's 16 KiB DATA frames into one write was tried:
//! it needs the connection task to yield once per frame (h2 flushes after every frame), and with
//! one worker at saturation those yields queued behind every receive task, exports fell behind and
//! half the offered spans were refused (PERF.md).

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::buffer::FreeList;

/// Bytes read from the socket at once.
pub const READ_AHEAD_BYTES: usize = 128 * 1024;
/// Free buffers kept for reuse. A buffer is held only between a read and h2 consuming it, so a few
/// per worker thread suffice.
const POOLED_BUFFERS: usize = 16;

/// A socket that reads ahead (see the module documentation).
#[derive(Debug)]
pub struct ReadAhead<T> {
    inner: T,
    /// Read-ahead buffer and the unread range in it; `None` when empty.
    buf: Option<Box<[u8]>>,
    start: usize,
    end: usize,
}

/// Free read-ahead buffers.
static BUFFERS: FreeList<Box<[u8]>> = FreeList::new(POOLED_BUFFERS);

// === impl ReadAhead ===

impl<T> ReadAhead<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> Self {
        Self { inner, buf: None, start: 0, end: 0 }
    }

    /// The wrapped socket.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    fn release(&mut self) {
        if let Some(buf) = self.buf.take() {
            BUFFERS.push(buf);
        }
        self.start = 0;
        self.end = 0;
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ReadAhead<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.start == this.end {
            if out.remaining() >= READ_AHEAD_BYTES {
                return Pin::new(&mut this.inner).poll_read(cx, out);
            }
            let mut buf = this.buf.take().unwrap_or_else(take);
            let mut ahead = ReadBuf::new(&mut buf);
            let polled = Pin::new(&mut this.inner).poll_read(cx, &mut ahead);
            let filled = ahead.filled().len();
            match polled {
                Poll::Ready(Ok(())) if filled > 0 => {
                    this.buf = Some(buf);
                    this.start = 0;
                    this.end = filled;
                }
                // End of stream, an error, or nothing yet: hold no buffer meanwhile.
                other => {
                    BUFFERS.push(buf);
                    return other;
                }
            }
        }
        let Some(buf) = &this.buf else {
            return Poll::Ready(Ok(()));
        };
        let n = out.remaining().min(this.end - this.start);
        out.put_slice(&buf[this.start..this.start + n]);
        this.start += n;
        if this.start == this.end {
            this.release();
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ReadAhead<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        slices: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, slices)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<T> Drop for ReadAhead<T> {
    fn drop(&mut self) {
        self.release();
    }
}

// === free functions ===

fn take() -> Box<[u8]> {
    BUFFERS.pop().unwrap_or_else(|| vec![0; READ_AHEAD_BYTES].into_boxed_slice())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    use super::*;

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(future)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Scenario: writes of any sizes into a pipe from 1 KiB to 512 KiB, read through the adapter
        /// with buffers of any size (smaller than, around and at the read-ahead size).
        /// Guarantees: the reader gets exactly the bytes written, in order, then the end of stream,
        /// and holds no buffer once drained.
        #[test]
        fn bytes_arrive_unchanged(
            writes in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40_000), 0..16),
            pipe_bytes in prop_oneof![Just(1024usize), Just(64 * 1024), Just(512 * 1024)],
            read_size in prop_oneof![1usize..100, 8 * 1024usize..20_000, Just(READ_AHEAD_BYTES)],
        ) {
            let (sent, received) = block_on(async {
                let (mut writer, b) = duplex(pipe_bytes);
                let mut reader = ReadAhead::new(b);
                let write = async {
                    let mut sent = Vec::new();
                    for data in writes {
                        writer.write_all(&data).await.unwrap();
                        sent.extend_from_slice(&data);
                    }
                    writer.shutdown().await.unwrap();
                    sent
                };
                let read = async {
                    let mut received = Vec::new();
                    let mut chunk = vec![0; read_size];
                    loop {
                        let n = reader.read(&mut chunk).await.unwrap();
                        if n == 0 {
                            break;
                        }
                        received.extend_from_slice(&chunk[..n]);
                    }
                    assert!(reader.buf.is_none(), "a drained reader holds no buffer");
                    received
                };
                tokio::join!(write, read)
            });
            prop_assert_eq!(sent.len(), received.len());
            prop_assert!(sent == received);
        }
    }

    /// Scenario: a 50 KB request sits in the socket and h2 reads it 8 KiB at a time.
    /// Guarantees: one read reaches the socket; the rest are served from the read-ahead buffer.
    #[test]
    fn small_reads_are_served_from_one_socket_read() {
        /// Hands out its bytes, counting the reads that reach it.
        struct Source {
            data: Vec<u8>,
            reads: usize,
        }
        impl AsyncRead for Source {
            fn poll_read(
                mut self: Pin<&mut Self>,
                _: &mut Context<'_>,
                out: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                self.reads += 1;
                let n = out.remaining().min(self.data.len());
                let rest = self.data.split_off(n);
                out.put_slice(&self.data);
                self.data = rest;
                Poll::Ready(Ok(()))
            }
        }
        block_on(async {
            let request: Vec<u8> = (0..50_000u32).map(|i| i as u8).collect();
            let mut reader = ReadAhead::new(Source { data: request.clone(), reads: 0 });
            let mut got = Vec::new();
            let mut chunk = vec![0; 8 * 1024];
            while got.len() < request.len() {
                let n = reader.read(&mut chunk).await.unwrap();
                got.extend_from_slice(&chunk[..n]);
            }
            assert_eq!(got, request);
            assert_eq!(reader.get_ref().reads, 1);
        });
    }

    /// Scenario: the peer writes, the adapter's side answers, over a real pipe.
    /// Guarantees: writes pass straight through: the peer reads the answer without any flush.
    #[test]
    fn writes_pass_through() {
        block_on(async {
            let (a, mut b) = duplex(1024);
            let mut socket = ReadAhead::new(a);
            socket.write_all(b"answer").await.unwrap();
            let mut got = [0; 6];
            tokio::time::timeout(Duration::from_secs(5), b.read_exact(&mut got)).await.unwrap().unwrap();
            assert_eq!(&got, b"answer");
        });
    }
}
