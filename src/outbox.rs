//! Bytes queued for one peer: frames this connection produced (owned) and broadcast frames shared
//! with other connections, in order, drained with vectored writes.
//!
//! The outbox owns no memory while it is empty, so an idle connection costs only the struct.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::rc::Rc;

#[derive(Debug)]
enum Chunk {
    /// Bytes produced for this peer alone; consecutive frames share one buffer.
    Owned(Vec<u8>),
    /// An encoded frame shared with every other recipient (never copied per peer).
    Shared(Rc<[u8]>),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Owned(bytes) => bytes,
            Chunk::Shared(bytes) => bytes,
        }
    }
}

/// An ordered queue of output bytes.
#[derive(Debug, Default)]
pub struct Outbox {
    chunks: VecDeque<Chunk>,
    /// Bytes of the front chunk already written.
    front_written: usize,
    /// Bytes queued and not yet written.
    len: usize,
}

impl Outbox {
    /// An empty outbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether nothing is waiting to be written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many bytes are waiting to be written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Lets `write` append bytes to the owned buffer at the back of the queue (starting one if the
    /// back is a shared frame), so that frames produced together leave in one write.
    pub fn append<R>(&mut self, write: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        if !matches!(self.chunks.back(), Some(Chunk::Owned(_))) {
            self.chunks.push_back(Chunk::Owned(Vec::new()));
        }
        let Some(Chunk::Owned(tail)) = self.chunks.back_mut() else {
            unreachable!("an owned chunk was just ensured at the back");
        };
        let before = tail.len();
        let result = write(tail);
        self.len += tail.len() - before;
        result
    }

    /// Queues bytes this peer alone will get, taking the buffer as it is (no copy): for a large
    /// payload that is already owned, such as an assembled message being echoed.
    pub fn push_owned(&mut self, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        self.len += bytes.len();
        self.chunks.push_back(Chunk::Owned(bytes));
    }

    /// Queues a frame shared with other peers.
    pub fn push_shared(&mut self, frame: Rc<[u8]>) {
        self.len += frame.len();
        self.chunks.push_back(Chunk::Shared(frame));
    }

    /// Fills `slices` with the queued bytes, front first, and returns how many it filled.
    pub fn io_slices<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize {
        let mut filled = 0;
        for (i, chunk) in self.chunks.iter().enumerate().take(slices.len()) {
            let bytes = chunk.bytes();
            let start = if i == 0 { self.front_written } else { 0 };
            slices[i] = IoSlice::new(&bytes[start..]);
            filled += 1;
        }
        filled
    }

    /// Drops the first `written` queued bytes. Frees all memory once the queue is empty.
    pub fn advance(&mut self, mut written: usize) {
        debug_assert!(written <= self.len);
        self.len -= written;
        while written > 0 {
            let Some(front) = self.chunks.front() else {
                break;
            };
            let left = front.bytes().len() - self.front_written;
            if written < left {
                self.front_written += written;
                return;
            }
            written -= left;
            self.front_written = 0;
            self.chunks.pop_front();
        }
        if self.len == 0 {
            // Release the queue's own buffer too: idle connections must cost only the struct.
            self.chunks = VecDeque::new();
            self.front_written = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents(outbox: &Outbox) -> Vec<u8> {
        let mut slices = [IoSlice::new(&[]); 16];
        let n = outbox.io_slices(&mut slices);
        slices[..n].iter().flat_map(|s| s.iter().copied()).collect()
    }

    #[test]
    fn keeps_order_across_owned_and_shared() {
        let mut outbox = Outbox::new();
        outbox.append(|v| v.extend_from_slice(b"ab"));
        outbox.append(|v| v.extend_from_slice(b"cd"));
        outbox.push_shared(Rc::from(&b"EF"[..]));
        outbox.append(|v| v.extend_from_slice(b"g"));
        assert_eq!(outbox.len(), 7);
        assert_eq!(contents(&outbox), b"abcdEFg");
        outbox.advance(3);
        assert_eq!(contents(&outbox), b"dEFg");
        outbox.advance(2);
        assert_eq!(contents(&outbox), b"Fg");
        outbox.advance(2);
        assert!(outbox.is_empty());
        assert_eq!(outbox.chunks.capacity(), 0);
    }

    #[test]
    fn shared_frames_are_not_copied() {
        let frame: Rc<[u8]> = Rc::from(&b"xyz"[..]);
        let mut a = Outbox::new();
        let mut b = Outbox::new();
        a.push_shared(frame.clone());
        b.push_shared(frame.clone());
        assert_eq!(Rc::strong_count(&frame), 3);
        a.advance(3);
        assert_eq!(Rc::strong_count(&frame), 2);
        assert_eq!(contents(&b), b"xyz");
    }
}
