//! A data frame encoded once and sent to many connections (a broadcast).
//!
//! RFC 6455 §5.1: "A server MUST NOT mask any frames that it sends to the client", so a server's
//! frame is the same bytes for every recipient. [`PreparedFrame`] encodes it once into a shared
//! buffer ([`bytes::Bytes`]) and every recipient's outbox holds a reference to it, never a copy
//! of a large payload. For recipients that negotiated permessage-deflate it also holds the
//! message compressed once.

use crate::deflate::{MAX_WINDOW_BITS, SharedDeflate};
use crate::frame::{self, FrameHeader, MAX_HEADER_LEN};
use crate::message::MessageKind;
use bytes::Bytes;

/// A whole unmasked data frame, encoded once, plain and (on demand) compressed.
///
/// ```
/// use rfc6455::message::MessageKind;
/// use rfc6455::prepared::PreparedFrame;
/// let frame = PreparedFrame::new(MessageKind::Text, b"Hello");
/// assert_eq!(&frame.plain()[..], [0x81, 0x05, b'H', b'e', b'l', b'l', b'o']);
/// ```
#[derive(Debug, Clone)]
pub struct PreparedFrame {
    kind: MessageKind,
    /// The header and the payload.
    plain: Bytes,
    header_len: usize,
    /// The message compressed with a window of the given bits (RSV1 set, RFC 7692 §6).
    compressed: Option<(u8, Bytes)>,
}

impl PreparedFrame {
    /// Encodes `payload` as one final, unmasked frame of `kind`.
    pub fn new(kind: MessageKind, payload: &[u8]) -> Self {
        let header = FrameHeader::new(kind.opcode(), payload.len());
        let mut bytes = Vec::with_capacity(payload.len() + MAX_HEADER_LEN);
        frame::encode_frame(&header, payload, &mut bytes);
        let header_len = bytes.len() - payload.len();
        PreparedFrame {
            kind,
            plain: Bytes::from(bytes),
            header_len,
            compressed: None,
        }
    }

    /// The message type.
    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    /// The payload's length in bytes (uncompressed).
    pub fn payload_len(&self) -> usize {
        self.plain.len() - self.header_len
    }

    /// The payload (uncompressed), for a recipient that must encode the frame itself (a client
    /// connection, which masks every frame with a key of its own).
    pub fn payload(&self) -> &[u8] {
        &self.plain[self.header_len..]
    }

    /// The plain frame's bytes.
    pub fn plain(&self) -> &Bytes {
        &self.plain
    }

    /// The compressed frame, if one was made, for a recipient whose window is `window_bits`
    /// (RFC 7692 `server_max_window_bits`).
    ///
    /// A stream compressed with a window of 2^w bytes refers back at most 2^w bytes, so it
    /// decompresses with any window of w bits or more: one compressed frame serves every
    /// recipient whose window is at least the one it was made with.
    pub fn compressed_for(&self, window_bits: u8) -> Option<&Bytes> {
        match &self.compressed {
            Some((bits, frame)) if *bits <= window_bits => Some(frame),
            _ => None,
        }
    }

    /// Makes sure a compressed frame exists that a recipient with a `window_bits` window can
    /// decompress: compresses the message once, and again only for a recipient whose window is
    /// smaller than the one used so far.
    pub fn compress_for(&mut self, window_bits: u8, level: u32, shared: &mut SharedDeflate) {
        if self.compressed_for(window_bits).is_some() {
            return;
        }
        let window_bits = window_bits.min(MAX_WINDOW_BITS);
        let payload = &self.plain[self.header_len..];
        let mut compressed = Vec::with_capacity(payload.len() / 2 + 16);
        shared.compress(payload, window_bits, level, &mut compressed);
        let header = FrameHeader::new(self.kind.opcode(), compressed.len()).with_rsv1(true);
        let mut bytes = Vec::with_capacity(compressed.len() + MAX_HEADER_LEN);
        frame::encode_frame(&header, &compressed, &mut bytes);
        self.compressed = Some((window_bits, Bytes::from(bytes)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_a_server_frame_once() {
        let frame = PreparedFrame::new(MessageKind::Binary, &[7u8; 300]);
        assert_eq!(&frame.plain()[..4], [0x82, 126, 0x01, 0x2c]);
        assert_eq!(frame.payload_len(), 300);
        let copy = frame.clone();
        assert_eq!(copy.plain().as_ptr(), frame.plain().as_ptr(), "shared");
    }

    #[test]
    fn one_compression_serves_every_window_at_least_as_large() {
        let mut shared = SharedDeflate::new();
        let mut frame = PreparedFrame::new(MessageKind::Text, &[b'a'; 1000]);
        assert!(frame.compressed_for(15).is_none());
        frame.compress_for(12, 6, &mut shared);
        let first = frame.compressed_for(12).unwrap().clone();
        assert_eq!(first[0], 0xC1, "FIN, RSV1, text");
        assert_eq!(frame.compressed_for(15).unwrap().as_ptr(), first.as_ptr());
        assert!(frame.compressed_for(11).is_none());
        frame.compress_for(15, 6, &mut shared);
        assert_eq!(
            frame.compressed_for(15).unwrap().as_ptr(),
            first.as_ptr(),
            "not redone"
        );
        frame.compress_for(9, 6, &mut shared);
        assert!(frame.compressed_for(9).is_some());
    }
}
