//! Everything one connection sends, in order: the bytes of every frame and HTTP response it
//! queued, then (once the connection is over) the end of its output stream (TCP half-close).
//!
//! This is the one output path. Every byte a connection sends goes through its outbox and is
//! counted in [`Outbox::len`], so a limit on queued output applies to all of it: data, pongs,
//! close frames, shared broadcast frames and HTTP responses alike. The IO shell writes from it
//! ([`io_slices`](Outbox::io_slices) and [`advance`](Outbox::advance), or
//! [`write_to`](Outbox::write_to)) and shuts down its sending side when
//! [`take_eof`](Outbox::take_eof) says so.
//!
//! Pongs are bounded: at most [`MAX_PONGS_IN_FLIGHT`] queued and unwritten at once. Past that, a
//! newer ping's pong waits in a single slot, replacing any older one (RFC 6455 §5.5.3 lets an
//! endpoint answer only the most recent of several pings), so a client that sends pings and never
//! reads cannot grow the queue, while a client that sends a burst of pings and reads gets every
//! answer.
//!
//! The outbox owns no memory while it is empty, so an idle connection costs only the struct.

use bytes::{Buf, Bytes};
use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

/// One piece of queued output.
#[derive(Debug)]
enum Chunk {
    /// Frames encoded for this connection alone; consecutive ones share one buffer.
    Buffer(Vec<u8>),
    /// A payload or a whole frame held by reference: shared with other connections (a broadcast)
    /// or large and already owned (an assembled message being echoed). Never copied. Boxed, so
    /// that a chunk is 24 bytes and a short queue's allocation stays small (the allocator keeps
    /// small blocks in per-size lists instead of returning them to the system between turns).
    Shared(Box<Bytes>),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Buffer(bytes) => bytes,
            Chunk::Shared(bytes) => bytes,
        }
    }
}

/// The largest shared chunk that is copied into the contiguous buffer rather than queued by
/// reference (and the largest published frame the server gathers with others into one write
/// rather than queuing by reference). Measured with the broadcast benchmark, 100 senders to 1 000 (BENCHMARKS.md):
/// copying 256-byte frames costs about 30% less server CPU per delivery than sharing them, 1 KiB
/// frames cost the same either way, and copying 4 KiB frames costs three to four times more (each
/// recipient's buffer grows by kilobytes a turn).
pub const COPY_MAX: usize = 1024;

/// The largest buffer an empty queue keeps for its next output (see [`Outbox::take_spare`]).
pub const SPARE_MAX: usize = 64 * 1024;

/// The memory an emptied queue kept (its list of chunks, with its last buffer in it, both
/// empty), taken by the IO shell ([`Outbox::take_spare`]) for another queue to reuse
/// ([`Outbox::reuse`]): output costs no allocation once the loop is busy, while a connection with
/// nothing to send holds no buffer.
#[derive(Debug)]
pub struct Spare(VecDeque<Chunk>);

impl Spare {
    /// The bytes of memory it holds.
    pub fn capacity(&self) -> usize {
        let buffer = match self.0.front() {
            Some(Chunk::Buffer(buffer)) => buffer.capacity(),
            _ => 0,
        };
        self.0.capacity() * std::mem::size_of::<Chunk>() + buffer
    }
}

/// Where the output stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// More may be queued.
    Open,
    /// Nothing more will be queued: once the queue is written, the sending side is shut down.
    AfterQueued,
    /// The shell has been told to shut the sending side down.
    Reached,
}

/// Most pongs queued and not yet written at once; the next waits in one slot, replacing any that
/// waited before it. Sixteen answers a burst of pings in full (Autobahn|Testsuite's 2.10 sends
/// ten at once) and holds at most about 2 KiB of pongs for a client that never reads.
pub const MAX_PONGS_IN_FLIGHT: usize = 16;

/// The pongs in the queue that are not written yet, and the next one waiting for room.
#[derive(Debug, Default)]
struct PongsInFlight {
    /// For each queued pong, the queued bytes up to its end that are still unwritten.
    unwritten: VecDeque<usize>,
    /// The pong for the most recent ping that found no room, encoded.
    next: Option<Vec<u8>>,
}

/// An ordered queue of output bytes, ending with an optional end of stream.
#[derive(Debug)]
pub struct Outbox {
    /// What is left to write; a chunk partly written is cut to what is left of it.
    chunks: VecDeque<Chunk>,
    /// Bytes queued and not yet written.
    len: usize,
    pongs: Option<Box<PongsInFlight>>,
    end: End,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            chunks: VecDeque::new(),
            len: 0,
            pongs: None,
            end: End::Open,
        }
    }
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

    /// Whether the output stream is over: nothing more will be queued.
    pub fn is_ending(&self) -> bool {
        self.end != End::Open
    }

    /// Lets `write` append bytes to the buffer at the back of the queue (starting one if the
    /// back is a shared chunk), so that frames produced together leave in one write.
    #[inline(always)]
    pub(crate) fn append<R>(&mut self, write: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        debug_assert_eq!(
            self.end,
            End::Open,
            "output queued after the end of the stream"
        );
        let tail = match self.chunks.back_mut() {
            Some(Chunk::Buffer(tail)) => tail,
            _ => {
                self.chunks.push_back(Chunk::Buffer(Vec::new()));
                let Some(Chunk::Buffer(tail)) = self.chunks.back_mut() else {
                    unreachable!("a buffer was just pushed at the back");
                };
                tail
            }
        };
        let before = tail.len();
        let result = write(tail);
        self.len += tail.len() - before;
        result
    }

    /// Queues bytes held by reference. A chunk of at most [`COPY_MAX`] bytes is copied into the
    /// contiguous buffer instead: the kernel copies many small pieces of a vectored write more
    /// slowly than one contiguous buffer, so sharing a small frame costs more than copying it.
    pub(crate) fn push_shared(&mut self, bytes: &Bytes) {
        debug_assert_eq!(
            self.end,
            End::Open,
            "output queued after the end of the stream"
        );
        if bytes.len() <= COPY_MAX {
            self.append(|buf| buf.extend_from_slice(bytes));
            return;
        }
        self.len += bytes.len();
        self.chunks
            .push_back(Chunk::Shared(Box::new(bytes.clone())));
    }

    /// Queues a pong frame (already encoded), unless [`MAX_PONGS_IN_FLIGHT`] are still
    /// unwritten: then it waits, replacing any pong that was waiting before it.
    pub(crate) fn queue_pong(&mut self, frame: &[u8]) {
        let pongs = self.pongs.get_or_insert_with(Box::default);
        if pongs.unwritten.len() >= MAX_PONGS_IN_FLIGHT {
            pongs.next = Some(frame.to_vec());
            return;
        }
        self.append(|buf| buf.extend_from_slice(frame));
        let len = self.len;
        let pongs = self.pongs.as_mut().expect("just made");
        pongs.unwritten.push_back(len);
    }

    /// Ends the output stream: after the bytes queued so far, the sending side is shut down.
    pub(crate) fn finish(&mut self) {
        if self.end == End::Open {
            self.end = End::AfterQueued;
        }
        // A pong that waits for room is not sent after the end.
        if let Some(pongs) = &mut self.pongs {
            pongs.next = None;
        }
    }

    /// Whether the shell should now shut down the sending side of the transport (every queued
    /// byte is written and the stream is over). Returns `true` once.
    pub fn take_eof(&mut self) -> bool {
        if self.end == End::AfterQueued && self.len == 0 {
            self.end = End::Reached;
            return true;
        }
        false
    }

    /// Whether the end of the stream was handed to the shell ([`take_eof`](Self::take_eof)).
    pub fn eof_taken(&self) -> bool {
        self.end == End::Reached
    }

    /// Fills `slices` with the queued bytes, front first, and returns how many it filled.
    pub fn io_slices<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize {
        let mut filled = 0;
        for (slice, chunk) in slices.iter_mut().zip(&self.chunks) {
            *slice = IoSlice::new(chunk.bytes());
            filled += 1;
        }
        filled
    }

    /// Drops the first `written` queued bytes. Frees all memory once the queue is empty.
    pub fn advance(&mut self, written: usize) {
        assert!(written <= self.len, "advanced past the queued bytes");
        self.len -= written;
        let mut left_to_drop = written;
        let mut spare = None;
        while left_to_drop > 0 {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            let left = front.bytes().len();
            if left_to_drop < left {
                // Cut the chunk to what is left of it: a buffer becomes shared bytes (no copy),
                // which can drop a prefix in place.
                let mut rest = match std::mem::replace(front, Chunk::Buffer(Vec::new())) {
                    Chunk::Buffer(buffer) => Box::new(Bytes::from(buffer)),
                    Chunk::Shared(bytes) => bytes,
                };
                rest.advance(left_to_drop);
                *front = Chunk::Shared(rest);
                break;
            }
            left_to_drop -= left;
            if let Some(Chunk::Buffer(buffer)) = self.chunks.pop_front()
                && self.len == 0
                && buffer.capacity() <= SPARE_MAX
            {
                spare = Some(buffer);
            }
        }
        if self.len == 0 {
            // Keep the queue and its last buffer for the next frames, until the IO shell takes
            // them (`take_spare`) to reuse elsewhere: allocating and freeing them for every write
            // made the allocator hand memory back to the system and fault it in again.
            self.chunks.clear();
            if let Some(mut buffer) = spare {
                buffer.clear();
                self.chunks.push_back(Chunk::Buffer(buffer));
            }
        }
        self.advance_pongs(written);
    }

    /// Whether the queue is empty but keeps memory from its last output (see
    /// [`take_spare`](Self::take_spare)).
    pub fn holds_spare(&self) -> bool {
        self.len == 0 && self.chunks.capacity() > 0
    }

    /// Takes the memory an empty queue kept from its last output, so that the connection costs
    /// only the struct while it has nothing to send. The IO shell takes it as soon as it has
    /// emptied the queue, and hands it to the next queue it is about to fill
    /// ([`reuse`](Self::reuse)), or drops it.
    pub fn take_spare(&mut self) -> Option<Spare> {
        self.holds_spare()
            .then(|| Spare(std::mem::take(&mut self.chunks)))
    }

    /// Lets an empty queue that holds no memory fill `spare` with its next output instead of
    /// allocating. Gives `spare` back if the queue has memory of its own or bytes queued.
    pub fn reuse(&mut self, spare: Spare) -> Option<Spare> {
        if self.len != 0 || self.chunks.capacity() > 0 {
            return Some(spare);
        }
        self.chunks = spare.0;
        None
    }

    /// Counts written pongs out, and queues the one that waited once there is room.
    fn advance_pongs(&mut self, written: usize) {
        let Some(pongs) = &mut self.pongs else {
            return;
        };
        for unwritten in pongs.unwritten.iter_mut() {
            *unwritten = unwritten.saturating_sub(written);
        }
        while pongs.unwritten.front() == Some(&0) {
            pongs.unwritten.pop_front();
        }
        let waiting = match pongs.next.take() {
            Some(frame) if self.end == End::Open => Some(frame),
            _ => None,
        };
        if pongs.unwritten.is_empty() && waiting.is_none() {
            self.pongs = None;
        }
        if let Some(frame) = waiting {
            self.queue_pong(&frame);
        }
    }

    /// Writes as much of the queue as `writer` takes, in as few calls as possible, and returns
    /// how many bytes it took. Stops without error when the writer would block.
    pub fn write_to(&mut self, writer: &mut impl Write) -> io::Result<usize> {
        const SLICES: usize = 64;
        let mut total = 0;
        while !self.is_empty() {
            // One contiguous buffer (the common case) goes out with a plain write, which costs
            // the kernel less than a one-element writev, and needs no list of slices filled.
            let result = if self.chunks.len() == 1 {
                writer.write(self.chunks[0].bytes())
            } else {
                let mut slices = [IoSlice::new(&[]); SLICES];
                let count = self.io_slices(&mut slices);
                writer.write_vectored(&slices[..count])
            };
            match result {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.advance(n);
                    total += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_is_24_bytes() {
        assert_eq!(std::mem::size_of::<Chunk>(), 24);
    }

    fn contents(outbox: &Outbox) -> Vec<u8> {
        let mut slices = [IoSlice::new(&[]); 16];
        let n = outbox.io_slices(&mut slices);
        slices[..n].iter().flat_map(|s| s.iter().copied()).collect()
    }

    /// A writer that takes `budget` bytes, then says it would block.
    struct Choked {
        taken: Vec<u8>,
        budget: usize,
    }

    impl Write for Choked {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.budget == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.budget);
            self.budget -= n;
            self.taken.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn keeps_order_across_buffers_and_shared_chunks() {
        let mut outbox = Outbox::new();
        outbox.append(|v| v.extend_from_slice(b"ab"));
        outbox.append(|v| v.extend_from_slice(b"cd"));
        outbox.push_shared(&Bytes::from_static(b"EF"));
        outbox.append(|v| v.extend_from_slice(b"g"));
        assert_eq!(outbox.len(), 7);
        assert_eq!(contents(&outbox), b"abcdEFg");
        outbox.advance(3);
        assert_eq!(contents(&outbox), b"dEFg");
        outbox.advance(2);
        assert_eq!(contents(&outbox), b"Fg");
        outbox.advance(2);
        assert!(outbox.is_empty());
        assert!(outbox.holds_spare(), "kept for the next turn");
        outbox.append(|v| v.extend_from_slice(b"h"));
        assert_eq!(outbox.chunks.len(), 1, "the kept buffer is reused");
        outbox.advance(1);
        assert!(outbox.take_spare().is_some());
        assert_eq!(
            outbox.chunks.capacity(),
            0,
            "taken: an idle connection keeps nothing"
        );
    }

    #[test]
    fn small_shared_chunks_are_copied_into_one_buffer() {
        let mut outbox = Outbox::new();
        outbox.append(|v| v.extend_from_slice(b"ab"));
        outbox.push_shared(&Bytes::from_static(b"cd"));
        outbox.push_shared(&Bytes::from_static(b"ef"));
        assert_eq!(outbox.chunks.len(), 1, "one contiguous buffer");
        assert_eq!(contents(&outbox), b"abcdef");
    }

    #[test]
    fn large_shared_chunks_are_not_copied() {
        let frame = Bytes::from(vec![7u8; COPY_MAX + 1]);
        let mut a = Outbox::new();
        let mut b = Outbox::new();
        a.push_shared(&frame);
        b.push_shared(&frame);
        let mut slices = [IoSlice::new(&[])];
        a.io_slices(&mut slices);
        assert_eq!(slices[0].as_ptr(), frame.as_ptr());
        a.advance(COPY_MAX + 1);
        assert_eq!(contents(&b), frame);
    }

    #[test]
    fn writes_until_the_writer_blocks_and_resumes() {
        let mut outbox = Outbox::new();
        outbox.append(|v| v.extend_from_slice(b"hello "));
        outbox.push_shared(&Bytes::from_static(b"shared "));
        outbox.append(|v| v.extend_from_slice(b"world"));
        let mut writer = Choked {
            taken: Vec::new(),
            budget: 8,
        };
        assert_eq!(outbox.write_to(&mut writer).unwrap(), 8);
        assert_eq!(writer.taken, b"hello sh");
        assert_eq!(outbox.len(), 10);
        assert_eq!(outbox.write_to(&mut writer).unwrap(), 0, "still blocked");
        writer.budget = 3;
        assert_eq!(outbox.write_to(&mut writer).unwrap(), 3);
        writer.budget = 100;
        assert_eq!(outbox.write_to(&mut writer).unwrap(), 7);
        assert_eq!(writer.taken, b"hello shared world");
        assert!(outbox.is_empty());
    }

    #[test]
    fn a_writer_that_takes_nothing_is_an_error() {
        struct Zero;
        impl Write for Zero {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Ok(0)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut outbox = Outbox::new();
        outbox.append(|v| v.push(1));
        assert_eq!(
            outbox.write_to(&mut Zero).unwrap_err().kind(),
            io::ErrorKind::WriteZero
        );
    }

    #[test]
    fn eof_comes_after_the_queued_bytes_once() {
        let mut outbox = Outbox::new();
        outbox.append(|v| v.extend_from_slice(b"bye"));
        assert!(!outbox.is_ending(), "open until finished");
        outbox.finish();
        assert!(outbox.is_ending());
        assert!(!outbox.take_eof(), "bytes still queued");
        outbox.advance(3);
        assert!(outbox.take_eof());
        assert!(!outbox.take_eof(), "only once");
        assert!(outbox.eof_taken());
    }

    #[test]
    fn holds_a_bounded_number_of_pongs_and_the_latest_waiting() {
        let mut outbox = Outbox::new();
        outbox.append(|v| v.extend_from_slice(b"data"));
        for i in 0..MAX_PONGS_IN_FLIGHT + 3 {
            outbox.queue_pong(&[b'P', i as u8]);
        }
        assert_eq!(
            outbox.len(),
            4 + 2 * MAX_PONGS_IN_FLIGHT,
            "later pongs wait"
        );
        outbox.advance(4 + 1);
        assert_eq!(
            outbox.len(),
            2 * MAX_PONGS_IN_FLIGHT - 1,
            "the first pong is half written"
        );
        outbox.advance(1);
        // The first pong is written: the most recent waiting one takes its place.
        let queued = contents(&outbox);
        assert_eq!(queued.len(), 2 * MAX_PONGS_IN_FLIGHT);
        assert_eq!(
            &queued[queued.len() - 2..],
            [b'P', MAX_PONGS_IN_FLIGHT as u8 + 2]
        );
        outbox.advance(queued.len());
        assert!(outbox.is_empty());
        assert!(outbox.pongs.is_none());
        outbox.queue_pong(b"PZ");
        assert_eq!(contents(&outbox), b"PZ");
    }

    #[test]
    fn a_waiting_pong_is_dropped_at_the_end_of_the_stream() {
        let mut outbox = Outbox::new();
        for _ in 0..=MAX_PONGS_IN_FLIGHT {
            outbox.queue_pong(b"P1");
        }
        outbox.append(|v| v.extend_from_slice(b"close"));
        outbox.finish();
        outbox.advance(2 * MAX_PONGS_IN_FLIGHT + 5);
        assert!(outbox.is_empty());
        assert!(outbox.take_eof());
    }

    #[test]
    fn a_written_chunk_leaves_the_queue_and_the_rest_keeps_its_order() {
        let frame = Bytes::from(vec![7u8; COPY_MAX + 1]);
        let mut outbox = Outbox::new();
        outbox.append(|v| v.extend_from_slice(b"ab"));
        outbox.push_shared(&frame);
        outbox.append(|v| v.extend_from_slice(b"cd"));
        outbox.advance(2);
        let mut slices = [IoSlice::new(&[]); 4];
        assert_eq!(
            outbox.io_slices(&mut slices),
            2,
            "the written buffer is gone"
        );
        assert_eq!(
            slices[0].as_ptr(),
            frame.as_ptr(),
            "the shared frame is next"
        );
        outbox.advance(COPY_MAX + 1);
        assert_eq!(contents(&outbox), b"cd");
        outbox.advance(1);
        assert_eq!(contents(&outbox), b"d");
        assert_eq!(outbox.len(), 1);
    }

    #[test]
    fn advancing_by_nothing_changes_nothing() {
        let mut outbox = Outbox::new();
        outbox.append(|v| v.extend_from_slice(b"ab"));
        outbox.advance(0);
        outbox.append(|v| v.extend_from_slice(b"cd"));
        assert_eq!(
            outbox.chunks.len(),
            1,
            "frames queued together stay in one buffer"
        );
        assert_eq!(contents(&outbox), b"abcd");
    }

    /// The capacity of the buffer an empty queue kept, if it kept one.
    fn spare_capacity(outbox: &Outbox) -> Option<usize> {
        match (outbox.len(), outbox.chunks.front()) {
            (0, Some(Chunk::Buffer(buffer))) => {
                assert!(buffer.is_empty());
                Some(buffer.capacity())
            }
            _ => None,
        }
    }

    #[test]
    fn an_empty_queue_keeps_a_buffer_of_at_most_64_kib() {
        for (capacity, kept) in [(100, true), (64 * 1024, true), (64 * 1024 + 1, false)] {
            let mut outbox = Outbox::new();
            outbox.append(|v| {
                v.reserve_exact(capacity);
                v.resize(capacity, 1);
            });
            outbox.advance(capacity);
            assert!(outbox.is_empty());
            assert_eq!(
                spare_capacity(&outbox),
                kept.then_some(capacity),
                "{capacity}"
            );
        }
    }

    #[test]
    fn holds_spare_only_when_empty_with_memory_kept() {
        let mut outbox = Outbox::new();
        assert!(!outbox.holds_spare(), "a new outbox holds nothing");
        outbox.append(|v| v.extend_from_slice(b"ab"));
        assert!(!outbox.holds_spare(), "bytes are queued");
        outbox.advance(2);
        assert!(outbox.holds_spare());
        assert!(outbox.take_spare().is_some());
        assert!(!outbox.holds_spare());
        assert!(outbox.take_spare().is_none(), "taken once");
    }

    #[test]
    fn a_spare_is_reused_by_an_empty_queue_without_memory_only() {
        let mut first = Outbox::new();
        first.append(|v| v.extend_from_slice(&[b'a'; 300]));
        first.advance(300);
        let spare = first.take_spare().expect("emptied with memory kept");
        let Some(Chunk::Buffer(kept)) = spare.0.front() else {
            panic!("the spare keeps the last buffer");
        };
        assert!(kept.capacity() >= 300 && spare.0.capacity() > 0);
        assert_eq!(
            spare.capacity(),
            spare.0.capacity() * std::mem::size_of::<Chunk>() + kept.capacity()
        );
        // A queue with bytes queued, or memory of its own, gives it back.
        let mut busy = Outbox::new();
        busy.append(|v| v.push(b'x'));
        let spare = busy.reuse(spare).expect("bytes are queued");
        busy.advance(1);
        let spare = busy.reuse(spare).expect("it kept its own buffer");
        // An empty queue without memory fills the spare buffer: no allocation.
        let mut idle = Outbox::new();
        assert!(idle.reuse(spare).is_none());
        idle.append(|v| v.extend_from_slice(b"hello"));
        assert_eq!(idle.chunks.len(), 1);
        let Some(Chunk::Buffer(buffer)) = idle.chunks.front() else {
            panic!("the spare buffer is at the front");
        };
        assert!(buffer.capacity() >= 300, "the spare's buffer");
        assert_eq!(contents(&idle), b"hello");
    }

    #[test]
    fn the_pong_bound_counts_pongs_that_are_partly_written() {
        let mut outbox = Outbox::new();
        for _ in 0..MAX_PONGS_IN_FLIGHT {
            outbox.queue_pong(b"P1");
        }
        // The first pong is written, the second half written: fifteen still count.
        outbox.advance(3);
        outbox.queue_pong(b"P2");
        outbox.queue_pong(b"P3");
        assert_eq!(
            outbox.len(),
            2 * MAX_PONGS_IN_FLIGHT - 3 + 2,
            "one more fits, the next waits"
        );
        let queued = contents(&outbox);
        assert_eq!(&queued[queued.len() - 2..], b"P2");
    }

    #[test]
    fn a_pong_queued_after_the_end_is_never_sent() {
        let mut outbox = Outbox::new();
        for _ in 0..MAX_PONGS_IN_FLIGHT {
            outbox.queue_pong(b"P1");
        }
        outbox.finish();
        outbox.queue_pong(b"P2");
        outbox.advance(2 * MAX_PONGS_IN_FLIGHT);
        assert!(outbox.is_empty(), "nothing after the end of the stream");
        assert!(outbox.take_eof());
    }

    /// A writer that plays a script of results, then takes everything.
    #[derive(Default)]
    struct Scripted {
        script: VecDeque<io::Result<usize>>,
        taken: Vec<u8>,
        plain_writes: usize,
        vectored_writes: usize,
    }

    impl Write for Scripted {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.plain_writes += 1;
            let n = self.script.pop_front().unwrap_or(Ok(buf.len()))?;
            self.taken.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.vectored_writes += 1;
            self.script.pop_front().unwrap_or(Ok(0))?;
            let mut n = 0;
            for buf in bufs {
                self.taken.extend_from_slice(buf);
                n += buf.len();
            }
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn one_buffer_goes_out_with_a_plain_write_several_with_one_vectored_write() {
        let mut outbox = Outbox::new();
        outbox.append(|v| v.extend_from_slice(b"abc"));
        let mut writer = Scripted::default();
        assert_eq!(outbox.write_to(&mut writer).unwrap(), 3);
        assert_eq!((writer.plain_writes, writer.vectored_writes), (1, 0));

        let frame = Bytes::from(vec![7u8; COPY_MAX + 1]);
        outbox.append(|v| v.extend_from_slice(b"abc"));
        outbox.push_shared(&frame);
        let mut writer = Scripted::default();
        assert_eq!(outbox.write_to(&mut writer).unwrap(), 3 + frame.len());
        assert_eq!((writer.plain_writes, writer.vectored_writes), (0, 1));
    }

    #[test]
    fn an_interrupted_write_is_retried() {
        let mut outbox = Outbox::new();
        outbox.append(|v| v.extend_from_slice(b"abc"));
        let mut writer = Scripted {
            script: [Err(io::ErrorKind::Interrupted.into())].into(),
            ..Scripted::default()
        };
        assert_eq!(outbox.write_to(&mut writer).unwrap(), 3);
        assert_eq!(writer.taken, b"abc");
        assert!(outbox.is_empty());
    }

    #[test]
    fn a_write_error_is_returned_and_keeps_the_queue() {
        let mut outbox = Outbox::new();
        outbox.append(|v| v.extend_from_slice(b"abc"));
        let mut writer = Scripted {
            script: [Err(io::ErrorKind::BrokenPipe.into())].into(),
            ..Scripted::default()
        };
        assert_eq!(
            outbox.write_to(&mut writer).unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
        assert_eq!(outbox.len(), 3);
    }
}
