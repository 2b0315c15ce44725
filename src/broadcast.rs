//! Sending one message to many peers: encode the frame once and share the same bytes.
//!
//! RFC 6455 §5.1: "A server MUST NOT mask any frames that it sends to the client", so a server
//! frame is identical for every recipient. It is encoded once into an `Rc<[u8]>` and every
//! recipient's outbox holds a clone of the `Rc`, never a copy of the payload.

use crate::deflate;
use crate::frame;
use crate::message::MessageKind;
use std::rc::Rc;

/// Encodes a whole unmasked data frame once, ready to be shared between outboxes.
pub fn encode_shared(kind: MessageKind, payload: &[u8]) -> Rc<[u8]> {
    let opcode = kind.opcode();
    let mut bytes = Vec::with_capacity(payload.len() + frame::MAX_HEADER_LEN);
    frame::encode_unmasked_frame(opcode, true, false, payload, &mut bytes);
    Rc::from(bytes)
}

/// Encodes a whole unmasked data frame with a permessage-deflate compressed payload (RSV1 set,
/// RFC 7692 §6), once for every recipient that negotiated a `window_bits` window.
pub fn encode_shared_compressed(
    kind: MessageKind,
    payload: &[u8],
    window_bits: u8,
    level: u32,
) -> Rc<[u8]> {
    let opcode = kind.opcode();
    let mut compressed = Vec::with_capacity(payload.len() / 2 + 16);
    deflate::compress(payload, window_bits, level, &mut compressed);
    let mut bytes = Vec::with_capacity(compressed.len() + frame::MAX_HEADER_LEN);
    frame::encode_unmasked_frame(opcode, true, true, &compressed, &mut bytes);
    Rc::from(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_a_server_frame() {
        assert_eq!(
            &*encode_shared(MessageKind::Text, b"Hello"),
            [0x81, 0x05, b'H', b'e', b'l', b'l', b'o']
        );
    }
}
