//! Sending one message to many peers: encode the frame once and share the same bytes.
//!
//! RFC 6455 §5.1: "A server MUST NOT mask any frames that it sends to the client", so a server
//! frame is identical for every recipient. It is encoded once into an `Rc<[u8]>` and every
//! recipient's outbox holds a clone of the `Rc`, never a copy of the payload.

use crate::frame::{self, Opcode};
use crate::message::MessageKind;
use std::rc::Rc;

/// Encodes a whole unmasked data frame once, ready to be shared between outboxes.
pub fn encode_shared(kind: MessageKind, payload: &[u8]) -> Rc<[u8]> {
    let opcode = match kind {
        MessageKind::Text => Opcode::Text,
        MessageKind::Binary => Opcode::Binary,
    };
    let mut bytes = Vec::with_capacity(payload.len() + frame::MAX_HEADER_LEN);
    frame::encode_unmasked_frame(opcode, true, false, payload, &mut bytes);
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
