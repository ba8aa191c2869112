//! The bytes of one export, as the parts they already live in.
//!
//! An uncompressed batch is a list of slices of the received requests plus a few bytes of new keys and
//! lengths. Joining them into one buffer would copy every exported byte once more per pipeline;
//! instead the parts are handed to HTTP/2 (or HTTP/1.1) as one body whose [`Buf`] spans them all.
//! h2 cuts its DATA frames out of it and writes each with one vectored write over the parts, so the
//! bytes go from the request buffers to the socket without another copy.

use std::io::IoSlice;

use bytes::{Buf, Bytes};

/// An encoded, framed export body: its parts in order. Cloning copies reference counts, not bytes,
/// so every attempt sends the same body.
#[derive(Clone, Debug, Default)]
pub struct Payload {
    parts: Vec<Bytes>,
    /// Index of the first part not yet consumed.
    next: usize,
    /// Bytes not yet consumed, over all parts.
    remaining: usize,
}

// === impl Payload ===

impl Payload {
    /// A body made of `parts`, in order. Empty parts are left out.
    pub fn from_parts(parts: impl IntoIterator<Item = Bytes>) -> Self {
        let parts: Vec<Bytes> = parts.into_iter().filter(|p| !p.is_empty()).collect();
        let remaining = parts.iter().map(Bytes::len).sum();
        Self { parts, next: 0, remaining }
    }

    /// Length of the body in bytes.
    pub fn len(&self) -> usize {
        self.remaining
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }

    /// Buffers the body refers to.
    pub fn part_count(&self) -> usize {
        self.parts.len() - self.next
    }
}

impl From<Bytes> for Payload {
    fn from(bytes: Bytes) -> Self {
        Self::from_parts([bytes])
    }
}

impl Buf for Payload {
    fn remaining(&self) -> usize {
        self.remaining
    }

    fn chunk(&self) -> &[u8] {
        self.parts.get(self.next).map_or(&[], |p| p.as_ref())
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut filled = 0;
        for (slot, part) in dst.iter_mut().zip(&self.parts[self.next..]) {
            *slot = IoSlice::new(part);
            filled += 1;
        }
        filled
    }

    fn advance(&mut self, mut cnt: usize) {
        // `Buf` allows a panic when `cnt` exceeds what is left; clamping is as correct and cannot take
        // the process down.
        cnt = cnt.min(self.remaining);
        self.remaining -= cnt;
        while cnt > 0 {
            let Some(part) = self.parts.get_mut(self.next) else { return };
            if cnt < part.len() {
                part.advance(cnt);
                return;
            }
            cnt -= part.len();
            // Consumed parts are released at once: a body half sent pins only what is left of it.
            *part = Bytes::new();
            self.next += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use proptest::prelude::*;

    use super::*;

    /// What is left of a body, read from a clone.
    fn rest(payload: &Payload) -> Bytes {
        payload.clone().copy_to_bytes(payload.remaining())
    }

    proptest! {
        /// Scenario: a body of random parts (some empty) is read the way h2 and hyper read it, in
        /// steps of random size through `chunk` or `chunks_vectored`, with a clone taken midway.
        /// Guarantees: the bytes read are the concatenation of the parts, in order, exactly once;
        /// `remaining` is right at every step; the clone reads the rest independently.
        #[test]
        fn reads_the_concatenation(
            parts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..12),
            steps in proptest::collection::vec((1usize..50, any::<bool>()), 1..40),
        ) {
            let expected: Vec<u8> = parts.concat();
            let mut payload = Payload::from_parts(parts.into_iter().map(Bytes::from));
            prop_assert_eq!(payload.len(), expected.len());
            prop_assert_eq!(rest(&payload), Bytes::from(expected.clone()));
            let mut read = Vec::new();
            let mut clone_at = None;
            for (step, vectored) in steps {
                if payload.remaining() == 0 {
                    break;
                }
                if clone_at.is_none() && read.len() * 2 >= expected.len() {
                    clone_at = Some((read.len(), payload.clone()));
                }
                let mut slices = [IoSlice::new(&[]); 4];
                let available: Vec<u8> = if vectored {
                    let n = payload.chunks_vectored(&mut slices);
                    slices[..n].iter().flat_map(|s| s.iter().copied()).collect()
                } else {
                    payload.chunk().to_vec()
                };
                prop_assert!(!available.is_empty());
                let take = step.min(available.len());
                read.extend_from_slice(&available[..take]);
                payload.advance(take);
                prop_assert_eq!(payload.remaining(), expected.len() - read.len());
            }
            read.extend_from_slice(&payload.copy_to_bytes(payload.remaining()));
            prop_assert_eq!(&read, &expected);
            if let Some((at, clone)) = clone_at {
                prop_assert_eq!(rest(&clone), Bytes::copy_from_slice(&expected[at..]));
            }
        }
    }

    /// Scenario: a body is advanced past a part, and further than it holds.
    /// Guarantees: the consumed part is released (its buffer freed), and over-advancing empties the
    /// body instead of panicking.
    #[test]
    fn consumed_parts_are_released() {
        let first = Bytes::from(vec![1u8; 10]);
        let weak = first.clone();
        let mut payload = Payload::from_parts([first, Bytes::from_static(b"abc")]);
        payload.advance(10);
        assert!(weak.is_unique(), "the sent part is still referenced");
        assert_eq!(payload.chunk(), b"abc");
        payload.advance(100);
        assert_eq!(payload.remaining(), 0);
        assert!(payload.chunk().is_empty());
    }
}
