//! RFC 6455 §5.4 Fragmentation: the messages a connection delivers, and the assembly of a message
//! that arrives in several frames (or one frame in several reads), within the size limits.
//!
//! <https://www.rfc-editor.org/rfc/rfc6455#section-5.4>

use crate::deflate::{self, Deflate, Inflation, SharedDeflate};
use crate::error::ProtocolError;
use crate::frame::Opcode;
use crate::limits::Limits;
use crate::mask::{apply_mask, copy_masked};
use crate::utf8::Utf8Validator;
use std::borrow::Cow;

/// The type of a data message, from the opcode of its first frame (§5.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// Opcode %x1: UTF-8 text.
    Text,
    /// Opcode %x2: arbitrary bytes.
    Binary,
}

impl MessageKind {
    /// The opcode of a message's first frame (§5.2).
    pub fn opcode(self) -> Opcode {
        match self {
            MessageKind::Text => Opcode::Text,
            MessageKind::Binary => Opcode::Binary,
        }
    }
}

/// A complete data message. A message that arrived in one frame within one read borrows the
/// (unmasked in place) input; an assembled one owns its buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    kind: MessageKind,
    payload: Cow<'a, [u8]>,
}

impl<'a> Message<'a> {
    /// A message of `kind` with `payload`. A text payload must be valid UTF-8: the connection only
    /// builds messages it has validated.
    pub(crate) fn new(kind: MessageKind, payload: Cow<'a, [u8]>) -> Self {
        debug_assert!(kind == MessageKind::Binary || std::str::from_utf8(&payload).is_ok());
        Message { kind, payload }
    }

    /// Text or binary.
    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    /// The payload bytes (for text, its UTF-8 encoding).
    pub fn as_bytes(&self) -> &[u8] {
        &self.payload
    }

    /// The text of a text message, `None` for a binary one. The connection validated the UTF-8
    /// already; converting checks it once more, so code that only forwards bytes should use
    /// [`as_bytes`](Self::as_bytes).
    pub fn as_text(&self) -> Option<&str> {
        match self.kind {
            MessageKind::Text => std::str::from_utf8(&self.payload).ok(),
            MessageKind::Binary => None,
        }
    }

    /// The payload as it is held: borrowed from the input, or owned (assembled or inflated).
    pub fn into_cow(self) -> Cow<'a, [u8]> {
        self.payload
    }

    /// Takes ownership of the payload, copying it only if it was borrowed.
    pub fn into_payload(self) -> Vec<u8> {
        self.payload.into_owned()
    }

    /// The same message, owning its payload (copied only if it was borrowed), so that it can
    /// outlive the input it came from.
    pub fn into_owned(self) -> Message<'static> {
        Message {
            kind: self.kind,
            payload: Cow::Owned(self.payload.into_owned()),
        }
    }
}

/// The most bytes of a compressed message inflated in one call. A message that inflates to
/// megabytes is spread over many calls, so that the IO shell can serve other connections between
/// them (its budget of work per turn counts each such call).
pub const INFLATE_PER_CALL: usize = 256 * 1024;

/// How far ahead of the bytes it holds a message's buffer may reserve, as a multiple of them:
/// in its final frame the buffer goes straight to the message's end once that is at most this
/// many times what it holds (with the next piece).
const RESERVE_AHEAD: usize = 4;

/// A message whose frames (or whose one frame) are still arriving. There is at most one per
/// connection, and it holds the payload received so far in one contiguous buffer.
#[derive(Debug)]
pub(crate) struct Assembler {
    kind: MessageKind,
    /// Frames received for this message, the first included.
    fragments: u32,
    /// Payload bytes received on the wire (compressed ones for a compressed message), against
    /// the frame and message limits.
    wire_len: u64,
    /// The payload so far (inflated, for a compressed message), followed by `room` zeroed bytes
    /// lent for the next payload to be read into (see [`room`](Self::room)).
    buffer: Vec<u8>,
    room: usize,
    utf8: Utf8Validator,
    /// RFC 7692 §6: RSV1 on the first frame marks a compressed message, inflated as its frames
    /// arrive, at most [`INFLATE_PER_CALL`] bytes at a time.
    inflation: Option<Box<Inflation>>,
}

impl Assembler {
    /// Starts a message of `kind` with its first frame; a compressed one starts inflating with
    /// the connection's `deflate` state.
    pub(crate) fn new(
        kind: MessageKind,
        compressed: Option<(&mut Deflate, &mut SharedDeflate)>,
    ) -> Self {
        Assembler {
            kind,
            fragments: 1,
            wire_len: 0,
            buffer: Vec::new(),
            room: 0,
            utf8: Utf8Validator::new(),
            inflation: compressed
                .map(|(deflate, shared)| Box::new(deflate.start_inflation(shared))),
        }
    }

    /// Checks a continuation frame of `payload_len` bytes against the limits before any of its
    /// payload is read, and counts it.
    pub(crate) fn add_fragment(
        &mut self,
        payload_len: u64,
        limits: &Limits,
    ) -> Result<(), ProtocolError> {
        // Our choice, not the RFC's: a cap on frames per message, so that empty continuations
        // cannot keep a connection busy forever at no memory cost to the sender.
        if self.fragments >= limits.max_fragments {
            return Err(ProtocolError::TooManyFragments {
                limit: limits.max_fragments,
            });
        }
        self.fragments += 1;
        check_message_size(self.wire_len, payload_len, self.inflation.is_some(), limits)
    }

    /// Bytes held so far: the payload (inflated), and compressed bytes not inflated yet.
    pub(crate) fn len(&self) -> usize {
        self.buffer.len() + self.inflation.as_ref().map_or(0, |i| i.held())
    }

    /// Appends unmasked payload bytes, validating text as it arrives (§8.1: fail fast). The
    /// bytes of a compressed message wait for [`inflate`](Self::inflate).
    ///
    /// `message_rest` is how many bytes of the message are still to come after these, when this
    /// is its final frame (`None` before that). The buffer grows twofold, as a `Vec` does, but
    /// in the final frame straight to the message's end once that is at most [`RESERVE_AHEAD`]
    /// times what it will hold: a large message then ends in a buffer of exactly its size, moved
    /// at most once or twice on the way, without a last doubling that copied the whole payload
    /// once more and left up to half the memory unused. A peer that announces a large frame and
    /// sends little of it still makes the receiver reserve at most four times what it sent, and
    /// messages of many frames still grow geometrically (a buffer fitted to each frame would be
    /// copied once per frame).
    ///
    /// `mask` is the masking key and the offset of `bytes[0]` in its frame's payload, for bytes
    /// still masked: they are unmasked as they are copied into the message (in place first, for
    /// a compressed message).
    pub(crate) fn push(
        &mut self,
        bytes: &mut [u8],
        mask: Option<([u8; 4], usize)>,
        message_rest: Option<u64>,
    ) -> Result<(), ProtocolError> {
        self.wire_len += bytes.len() as u64;
        if let Some(inflation) = &mut self.inflation {
            if let Some((key, offset)) = mask {
                apply_mask(bytes, key, offset);
            }
            inflation.push(bytes);
            return Ok(());
        }
        self.return_room();
        if bytes.is_empty() {
            return Ok(()); // an empty fragment adds nothing (a peer may send many)
        }
        self.reserve(bytes.len(), message_rest);
        let start = self.buffer.len();
        match mask {
            Some((key, offset)) => {
                self.buffer.resize(start + bytes.len(), 0);
                copy_masked(&mut self.buffer[start..], bytes, key, offset);
            }
            None => self.buffer.extend_from_slice(bytes),
        }
        if self.kind == MessageKind::Text {
            self.utf8
                .feed(&self.buffer[start..])
                .map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        Ok(())
    }

    /// Makes the buffer's capacity hold `additional` more bytes after those it holds.
    fn reserve(&mut self, additional: usize, message_rest: Option<u64>) {
        let needed = self.buffer.len() + additional;
        if needed > self.buffer.capacity() {
            let doubled = needed.max(2 * self.buffer.capacity());
            let target = match message_rest {
                Some(rest) => {
                    let end = needed.saturating_add(usize::try_from(rest).unwrap_or(usize::MAX));
                    if end <= needed.saturating_mul(RESERVE_AHEAD) {
                        end
                    } else {
                        doubled
                    }
                }
                None => doubled,
            };
            self.buffer.reserve_exact(target - self.buffer.len());
        }
    }

    /// The payload bytes held so far (not counting lent room).
    pub(crate) fn payload_len(&self) -> usize {
        self.buffer.len() - self.room
    }

    /// The capacity of the payload's buffer.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.buffer.capacity()
    }

    /// Whether the message is compressed (its payload is inflated, never read in place).
    pub(crate) fn is_compressed(&self) -> bool {
        self.inflation.is_some()
    }

    /// Lends `len` zeroed bytes at the end of an uncompressed payload for the next payload bytes
    /// to be read into where they belong, instead of into a read buffer and then copied here.
    /// [`fill`](Self::fill) takes what was read. Bytes lent before and not filled are lent
    /// again, not zeroed twice. `message_rest` is as for [`push`](Self::push), after these.
    pub(crate) fn room(&mut self, len: usize, message_rest: Option<u64>) -> &mut [u8] {
        debug_assert!(self.inflation.is_none(), "a compressed payload is inflated");
        let start = self.payload_len();
        self.reserve(len.saturating_sub(self.room), message_rest);
        self.room = self.room.max(len);
        self.buffer.resize(start + self.room, 0);
        &mut self.buffer[start..start + len]
    }

    /// Takes the first `len` bytes of the lent room as payload: unmasks them with `mask` (the
    /// key, and the offset of the first of them in its frame's payload) and validates text
    /// (§8.1: fail fast).
    pub(crate) fn fill(
        &mut self,
        len: usize,
        mask: Option<([u8; 4], usize)>,
    ) -> Result<(), ProtocolError> {
        assert!(len <= self.room, "filled more than the room lent");
        let start = self.payload_len();
        let piece = &mut self.buffer[start..start + len];
        if let Some((key, offset)) = mask {
            apply_mask(piece, key, offset);
        }
        self.wire_len += len as u64;
        self.room -= len;
        if self.kind == MessageKind::Text {
            self.utf8
                .feed(piece)
                .map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        Ok(())
    }

    /// Drops the room lent and not filled.
    fn return_room(&mut self) {
        self.buffer.truncate(self.payload_len());
        self.room = 0;
    }

    /// The final frame's payload has all arrived.
    pub(crate) fn end_input(&mut self) {
        if let Some(inflation) = &mut self.inflation {
            inflation.end_input();
        }
    }

    /// Inflates what it can of the compressed bytes received, at most [`INFLATE_PER_CALL`] of
    /// output, validating text as it comes out (§8.1: fail fast, compressed or not). Returns
    /// whether work is left that needs no more input.
    #[inline(always)]
    pub(crate) fn inflate(
        &mut self,
        deflate: Option<&mut Deflate>,
        limits: &Limits,
    ) -> Result<bool, ProtocolError> {
        if self.inflation.is_none() {
            return Ok(false); // not compressed: checked here, in the caller, for every piece
        }
        self.inflate_some(deflate, limits)
    }

    /// [`inflate`](Self::inflate) for a compressed message.
    fn inflate_some(
        &mut self,
        deflate: Option<&mut Deflate>,
        limits: &Limits,
    ) -> Result<bool, ProtocolError> {
        let Some(inflation) = &mut self.inflation else {
            return Ok(false);
        };
        let deflate = deflate.expect("RSV1 is accepted only with permessage-deflate negotiated");
        let start = self.buffer.len();
        let more = deflate.inflate_step(
            inflation,
            &mut self.buffer,
            limits.max_message_size,
            INFLATE_PER_CALL,
        )?;
        if self.kind == MessageKind::Text {
            self.utf8
                .feed(&self.buffer[start..])
                .map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        Ok(more)
    }

    /// Whether inflating can go on without more input.
    pub(crate) fn has_work(&self) -> bool {
        self.inflation.as_ref().is_some_and(|i| i.has_work())
    }

    /// Whether the message is complete: every frame arrived and, if compressed, is inflated.
    pub(crate) fn is_complete(&self, final_frame_done: bool) -> bool {
        match &self.inflation {
            Some(inflation) => inflation.is_done(),
            None => final_frame_done,
        }
    }

    /// Ends the message once it is complete. A compressed message gives its inflater back.
    pub(crate) fn finish(
        mut self,
        deflate: Option<&mut Deflate>,
        shared: &mut SharedDeflate,
    ) -> Result<Message<'static>, ProtocolError> {
        if let (Some(inflation), Some(deflate)) = (self.inflation.take(), deflate) {
            deflate.end_inflation(*inflation, shared);
        }
        if self.kind == MessageKind::Text {
            self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        self.return_room();
        Ok(Message::new(self.kind, Cow::Owned(self.buffer)))
    }
}

/// Checks a data frame's declared length against the frame and message limits, given how many
/// bytes of its message came before it. Called on the header, before any payload is read.
///
/// The limits are about what the application receives: a compressed message (RFC 7692) is held
/// to them after inflating, so its bytes on the wire may exceed them by what DEFLATE adds to data
/// it cannot compress ([`deflate::compressed_bound`]). A message of exactly the limit is then
/// accepted whether the client compresses it or not.
pub(crate) fn check_message_size(
    received: u64,
    payload_len: u64,
    compressed: bool,
    limits: &Limits,
) -> Result<(), ProtocolError> {
    let (max_frame_size, max_message_size) = if compressed {
        (
            deflate::compressed_bound(limits.max_frame_size),
            deflate::compressed_bound(limits.max_message_size),
        )
    } else {
        (limits.max_frame_size, limits.max_message_size)
    };
    if payload_len > max_frame_size {
        return Err(ProtocolError::FrameTooBig {
            len: payload_len,
            limit: max_frame_size,
        });
    }
    let len = received.saturating_add(payload_len);
    if len > max_message_size {
        return Err(ProtocolError::MessageTooBig {
            len,
            limit: max_message_size,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Assembler {
        /// Pushes payload bytes that arrived unmasked (from a server).
        fn push_unmasked(
            &mut self,
            bytes: &[u8],
            message_rest: Option<u64>,
        ) -> Result<(), ProtocolError> {
            self.push(&mut bytes.to_vec(), None, message_rest)
        }
    }

    #[test]
    fn assembles_fragments_in_order() {
        let limits = Limits::default();
        let mut a = Assembler::new(MessageKind::Text, None);
        a.push_unmasked(b"Hel", None).unwrap();
        a.add_fragment(2, &limits).unwrap();
        a.push_unmasked(b"lo", None).unwrap();
        let m = a.finish(None, &mut SharedDeflate::new()).unwrap();
        assert_eq!(m.as_text(), Some("Hello"));
    }

    #[test]
    fn fails_text_at_the_bad_fragment() {
        let mut a = Assembler::new(MessageKind::Text, None);
        a.push_unmasked(b"\xCE\xBA\xE1", None).unwrap();
        assert_eq!(
            a.push_unmasked(b"\xBD\xB9\xED\xA0", None),
            Err(ProtocolError::InvalidUtf8)
        );
    }

    #[test]
    fn a_large_frame_ends_in_a_buffer_of_its_size() {
        const FRAME: usize = 1 << 20;
        const PIECE: usize = 256 * 1024 - 10;
        let mut a = Assembler::new(MessageKind::Binary, None);
        let mut capacities = Vec::new();
        let mut received = 0;
        while received < FRAME {
            let take = PIECE.min(FRAME - received);
            received += take;
            a.push_unmasked(&vec![7; take], Some((FRAME - received) as u64))
                .unwrap();
            capacities.push(a.buffer.capacity());
        }
        // The first piece alone (the frame's end is more than four times as far), then straight
        // to the end of the frame instead of doubling twice.
        assert_eq!(capacities[0], PIECE);
        assert!(
            capacities[1..].iter().all(|&c| c == FRAME),
            "{capacities:?}"
        );
    }

    #[test]
    fn the_buffer_goes_to_the_message_end_when_that_is_at_most_four_times_what_it_holds() {
        let mut a = Assembler::new(MessageKind::Binary, None);
        a.push_unmasked(&[1; 256], Some(768)).unwrap();
        assert_eq!(a.buffer.capacity(), 1024, "the end is four times as far");
        let mut a = Assembler::new(MessageKind::Binary, None);
        a.push_unmasked(&[1; 256], Some(769)).unwrap();
        assert_eq!(
            a.buffer.capacity(),
            256,
            "the end is further: only what arrived"
        );
    }

    #[test]
    fn masked_pieces_are_unmasked_into_the_message_and_validated() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let mut a = Assembler::new(MessageKind::Text, None);
        // RFC 6455 §5.7's masked "Hello", in two pieces: the second starts at offset 3.
        a.push(&mut [0x7f, 0x9f, 0x4d], Some((key, 0)), None)
            .unwrap();
        a.push(&mut [0x51, 0x58], Some((key, 3)), Some(0)).unwrap();
        let message = a.finish(None, &mut SharedDeflate::new()).unwrap();
        assert_eq!(message.as_text(), Some("Hello"));

        // Bytes that are valid UTF-8 only while masked are checked unmasked.
        let mut a = Assembler::new(MessageKind::Text, None);
        let mut masked = [0xFF ^ key[0], b'a' ^ key[1]];
        assert_eq!(
            a.push(&mut masked, Some((key, 0)), None),
            Err(ProtocolError::InvalidUtf8)
        );
    }

    #[test]
    fn many_small_frames_grow_the_buffer_geometrically() {
        let mut a = Assembler::new(MessageKind::Binary, None);
        let mut growths = 0;
        let mut capacity = 0;
        for frame in 0..10_000 {
            let last = frame == 9_999;
            a.push_unmasked(&[3; 64], last.then_some(0)).unwrap();
            if a.buffer.capacity() != capacity {
                capacity = a.buffer.capacity();
                growths += 1;
            }
        }
        // 640 000 bytes from 64: about log2(10 000) growths, not one per frame.
        assert!(growths <= 16, "{growths} growths");
    }

    #[test]
    fn an_announced_frame_is_not_reserved_before_it_arrives() {
        let mut a = Assembler::new(MessageKind::Binary, None);
        a.push_unmasked(&[1; 1024], Some(16 << 20)).unwrap();
        assert!(a.buffer.capacity() < 3 * 1024);
        a.push_unmasked(&[1; 1024], Some((16 << 20) - 1024))
            .unwrap();
        assert!(a.buffer.capacity() < 3 * 2048);
    }

    #[test]
    fn rejects_text_ending_mid_code_point() {
        let mut a = Assembler::new(MessageKind::Text, None);
        a.push_unmasked(b"\xE2\x82", None).unwrap();
        assert_eq!(
            a.finish(None, &mut SharedDeflate::new()),
            Err(ProtocolError::InvalidUtf8)
        );
    }

    #[test]
    fn size_limits_are_inclusive() {
        let limits = Limits {
            max_frame_size: 10,
            max_message_size: 15,
            ..Limits::default()
        };
        assert_eq!(check_message_size(0, 10, false, &limits), Ok(()));
        assert_eq!(
            check_message_size(0, 11, false, &limits),
            Err(ProtocolError::FrameTooBig { len: 11, limit: 10 })
        );
        assert_eq!(check_message_size(5, 10, false, &limits), Ok(()));
        assert_eq!(
            check_message_size(6, 10, false, &limits),
            Err(ProtocolError::MessageTooBig { len: 16, limit: 15 })
        );
    }

    fn deflate_state() -> Deflate {
        Deflate::new(
            deflate::Negotiated {
                our_window_bits: 15,
                peer_resets_context: true,
            },
            &deflate::DeflateConfig::default(),
        )
    }

    #[test]
    fn into_cow_gives_back_the_payload_as_held() {
        let borrowed = Message::new(MessageKind::Binary, Cow::Borrowed(b"abc")).into_cow();
        assert!(matches!(borrowed, Cow::Borrowed(b"abc")), "{borrowed:?}");
        let owned = Message::new(MessageKind::Text, Cow::Owned(b"hi".to_vec())).into_cow();
        assert!(matches!(&owned, Cow::Owned(v) if v == b"hi"), "{owned:?}");
    }

    #[test]
    fn small_pieces_grow_the_buffer_at_least_twofold() {
        // Frames that are not final arriving a byte at a time: the buffer doubles, so the
        // bytes already received are copied a bounded number of times, not once per piece.
        let mut a = Assembler::new(MessageKind::Binary, None);
        a.push_unmasked(&[0; 10], None).unwrap();
        assert_eq!(a.buffer.capacity(), 10);
        a.push_unmasked(&[0], None).unwrap();
        assert_eq!(a.buffer.capacity(), 20, "doubled");
        let mut grown = 0;
        let mut capacity = a.buffer.capacity();
        for _ in 0..1000 {
            a.push_unmasked(&[0], None).unwrap();
            if a.buffer.capacity() != capacity {
                grown += 1;
                capacity = a.buffer.capacity();
            }
        }
        assert!(grown <= 7, "grew {grown} times for 1000 bytes");
    }

    #[test]
    fn a_piece_that_fills_the_buffer_exactly_does_not_grow_it() {
        let mut a = Assembler::new(MessageKind::Binary, None);
        // 4 bytes of a final 6-byte frame: the buffer goes straight to the message's end.
        a.push_unmasked(&[1; 4], Some(2)).unwrap();
        assert_eq!(a.buffer.capacity(), 6);
        // The frame's last 2 bytes fill it.
        a.push_unmasked(&[2; 2], Some(0)).unwrap();
        assert_eq!(a.buffer.capacity(), 6, "full, not grown");
        assert_eq!(a.buffer, [1, 1, 1, 1, 2, 2]);

        // Frames that are not final: 4 bytes, then 1 (the buffer doubles to 8), then 3 that
        // fill it exactly.
        let mut a = Assembler::new(MessageKind::Binary, None);
        a.push_unmasked(&[1; 4], None).unwrap();
        a.push_unmasked(&[2; 1], None).unwrap();
        assert_eq!(a.buffer.capacity(), 8);
        a.push_unmasked(&[3; 3], None).unwrap();
        assert_eq!(a.buffer.capacity(), 8, "full, not grown");
    }

    #[test]
    fn len_counts_the_payload_and_the_compressed_bytes_not_inflated_yet() {
        let mut a = Assembler::new(MessageKind::Binary, None);
        assert_eq!(a.len(), 0);
        a.push_unmasked(b"Hello", Some(0)).unwrap();
        assert_eq!(a.len(), 5);

        // RFC 7692 §7.2.3.1: "Hello" compressed.
        let mut deflate = deflate_state();
        let mut shared = SharedDeflate::new();
        let mut a = Assembler::new(MessageKind::Text, Some((&mut deflate, &mut shared)));
        a.push_unmasked(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], Some(0))
            .unwrap();
        assert_eq!(a.len(), 7, "compressed, not inflated yet");
        a.end_input();
        while a.inflate(Some(&mut deflate), &Limits::default()).unwrap() {}
        assert_eq!(a.len(), 5, "inflated");
        let m = a.finish(Some(&mut deflate), &mut shared).unwrap();
        assert_eq!(m.as_text(), Some("Hello"));
    }

    #[test]
    fn has_work_only_while_compressed_bytes_wait() {
        let mut a = Assembler::new(MessageKind::Binary, None);
        a.push_unmasked(b"plain", Some(0)).unwrap();
        assert!(!a.has_work(), "an uncompressed message never waits");

        let mut deflate = deflate_state();
        let mut shared = SharedDeflate::new();
        let mut a = Assembler::new(MessageKind::Text, Some((&mut deflate, &mut shared)));
        assert!(!a.has_work(), "nothing received yet");
        a.push_unmasked(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], Some(0))
            .unwrap();
        a.end_input();
        assert!(a.has_work());
        while a.inflate(Some(&mut deflate), &Limits::default()).unwrap() {}
        assert!(!a.has_work());
        assert!(a.is_complete(true));
    }

    #[test]
    fn inflates_at_most_256_kib_per_call() {
        const MESSAGE: usize = 1 << 20;
        let mut deflate = deflate_state();
        let mut shared = SharedDeflate::new();
        let mut compressed = Vec::new();
        deflate.compress(&vec![b'a'; MESSAGE], &mut compressed, &mut shared);
        let mut a = Assembler::new(MessageKind::Binary, Some((&mut deflate, &mut shared)));
        a.push_unmasked(&compressed, Some(0)).unwrap();
        a.end_input();
        let mut steps = Vec::new();
        loop {
            let before = a.buffer.len();
            let more = a.inflate(Some(&mut deflate), &Limits::default()).unwrap();
            steps.push(a.buffer.len() - before);
            if !more {
                break;
            }
        }
        assert_eq!(steps[..4], [256 * 1024; 4], "{steps:?}");
        assert!(steps[4..].iter().all(|&n| n == 0), "{steps:?}");
        assert_eq!(a.buffer.len(), MESSAGE);
    }

    #[test]
    fn a_message_gives_its_payload_however_it_is_asked() {
        let borrowed = Message::new(MessageKind::Text, Cow::Borrowed(b"caf\xC3\xA9"));
        assert_eq!(borrowed.kind(), MessageKind::Text);
        assert_eq!(borrowed.as_bytes(), b"caf\xC3\xA9");
        assert_eq!(borrowed.as_text(), Some("caf\u{e9}"));
        assert_eq!(borrowed.clone().into_payload(), b"caf\xC3\xA9");
        let owned = borrowed.into_owned();
        assert_eq!(owned.as_bytes(), b"caf\xC3\xA9");
        let binary = Message::new(MessageKind::Binary, Cow::Owned(vec![0xFF, 0]));
        assert_eq!(binary.as_text(), None);
        assert_eq!(binary.into_payload(), [0xFF, 0]);
    }

    #[test]
    fn the_message_limit_counts_the_bytes_of_every_fragment() {
        let limits = Limits {
            max_message_size: 15,
            ..Limits::default()
        };
        let mut a = Assembler::new(MessageKind::Binary, None);
        a.push_unmasked(&[0; 4], None).unwrap();
        a.add_fragment(6, &limits).unwrap();
        a.push_unmasked(&[0; 6], None).unwrap();
        assert_eq!(
            a.add_fragment(6, &limits),
            Err(ProtocolError::MessageTooBig { len: 16, limit: 15 })
        );
    }

    #[test]
    fn compressed_text_is_validated_as_it_inflates() {
        //= https://www.rfc-editor.org/rfc/rfc6455#section-8.1
        //# When an endpoint is to interpret a byte stream as UTF-8 but finds
        //# that the byte stream is not, in fact, a valid UTF-8 stream, that
        //# endpoint MUST _Fail the WebSocket Connection_.
        let mut deflate = deflate_state();
        let mut shared = SharedDeflate::new();
        let mut compressed = Vec::new();
        deflate.compress(b"ok \xFF", &mut compressed, &mut shared);
        for (kind, expected) in [
            (MessageKind::Text, Err(ProtocolError::InvalidUtf8)),
            (MessageKind::Binary, Ok(false)),
        ] {
            let mut a = Assembler::new(kind, Some((&mut deflate, &mut shared)));
            a.push_unmasked(&compressed, Some(0)).unwrap();
            a.end_input();
            assert_eq!(
                a.inflate(Some(&mut deflate), &Limits::default()),
                expected,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn complete_once_every_frame_arrived_and_is_inflated() {
        let a = Assembler::new(MessageKind::Binary, None);
        assert!(!a.is_complete(false));
        assert!(a.is_complete(true));

        let mut deflate = deflate_state();
        let mut shared = SharedDeflate::new();
        let mut a = Assembler::new(MessageKind::Text, Some((&mut deflate, &mut shared)));
        a.push_unmasked(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], Some(0))
            .unwrap();
        assert!(!a.is_complete(false), "the final frame has not arrived");
        a.end_input();
        assert!(!a.is_complete(true), "not inflated yet");
        while a.inflate(Some(&mut deflate), &Limits::default()).unwrap() {}
        assert!(a.is_complete(true));
    }

    #[test]
    fn caps_fragment_count() {
        let limits = Limits {
            max_fragments: 3,
            ..Limits::default()
        };
        let mut a = Assembler::new(MessageKind::Binary, None);
        a.add_fragment(0, &limits).unwrap();
        a.add_fragment(0, &limits).unwrap();
        assert_eq!(
            a.add_fragment(0, &limits),
            Err(ProtocolError::TooManyFragments { limit: 3 })
        );
    }
}
