//! RFC 6455 §5.4 Fragmentation: the messages a connection delivers, and the assembly of a message
//! that arrives in several frames (or one frame in several reads), within the size limits.
//!
//! <https://www.rfc-editor.org/rfc/rfc6455#section-5.4>

use crate::deflate::{self, Deflate, SharedDeflate};
use crate::error::ProtocolError;
use crate::frame::Opcode;
use crate::limits::Limits;
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

/// A message whose frames (or whose one frame) are still arriving. There is at most one per
/// connection, and it holds the payload received so far in one contiguous buffer.
#[derive(Debug)]
pub(crate) struct Assembler {
    kind: MessageKind,
    /// RFC 7692 §6: RSV1 on the first frame marks a compressed message; `buffer` then holds the
    /// compressed bytes and text is validated after decompression.
    compressed: bool,
    /// Frames received for this message, the first included.
    fragments: u32,
    buffer: Vec<u8>,
    utf8: Utf8Validator,
}

impl Assembler {
    /// Starts a message of `kind` with its first frame.
    pub(crate) fn new(kind: MessageKind, compressed: bool) -> Self {
        Assembler {
            kind,
            compressed,
            fragments: 1,
            buffer: Vec::new(),
            utf8: Utf8Validator::new(),
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
        check_message_size(
            self.buffer.len() as u64,
            payload_len,
            self.compressed,
            limits,
        )
    }

    /// Payload bytes held so far.
    pub(crate) fn len(&self) -> usize {
        self.buffer.len()
    }

    /// Appends unmasked payload bytes, validating text as it arrives (§8.1: fail fast).
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Result<(), ProtocolError> {
        if self.kind == MessageKind::Text && !self.compressed {
            self.utf8
                .feed(bytes)
                .map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        self.buffer.extend_from_slice(bytes);
        Ok(())
    }

    /// Ends the message after its final frame. A compressed message is decompressed with the
    /// connection's `deflate` state, its output capped at `limits.max_message_size`.
    pub(crate) fn finish(
        mut self,
        deflate: Option<&mut Deflate>,
        shared: &mut SharedDeflate,
        limits: &Limits,
    ) -> Result<Message<'static>, ProtocolError> {
        if self.compressed {
            let deflate =
                deflate.expect("RSV1 is accepted only with permessage-deflate negotiated");
            let payload = deflate.decompress(&self.buffer, limits.max_message_size, shared)?;
            if self.kind == MessageKind::Text && std::str::from_utf8(&payload).is_err() {
                return Err(ProtocolError::InvalidUtf8);
            }
            return Ok(Message::new(self.kind, Cow::Owned(payload)));
        }
        if self.kind == MessageKind::Text {
            self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
        }
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

    #[test]
    fn assembles_fragments_in_order() {
        let limits = Limits::default();
        let mut a = Assembler::new(MessageKind::Text, false);
        a.push(b"Hel").unwrap();
        a.add_fragment(2, &limits).unwrap();
        a.push(b"lo").unwrap();
        let m = a.finish(None, &mut SharedDeflate::new(), &limits).unwrap();
        assert_eq!(m.as_text(), Some("Hello"));
    }

    #[test]
    fn fails_text_at_the_bad_fragment() {
        let mut a = Assembler::new(MessageKind::Text, false);
        a.push(b"\xCE\xBA\xE1").unwrap();
        assert_eq!(a.push(b"\xBD\xB9\xED\xA0"), Err(ProtocolError::InvalidUtf8));
    }

    #[test]
    fn rejects_text_ending_mid_code_point() {
        let mut a = Assembler::new(MessageKind::Text, false);
        a.push(b"\xE2\x82").unwrap();
        assert_eq!(
            a.finish(None, &mut SharedDeflate::new(), &Limits::default()),
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

    #[test]
    fn caps_fragment_count() {
        let limits = Limits {
            max_fragments: 3,
            ..Limits::default()
        };
        let mut a = Assembler::new(MessageKind::Binary, false);
        a.add_fragment(0, &limits).unwrap();
        a.add_fragment(0, &limits).unwrap();
        assert_eq!(
            a.add_fragment(0, &limits),
            Err(ProtocolError::TooManyFragments { limit: 3 })
        );
    }
}
