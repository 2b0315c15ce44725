//! The client role under a hostile server: a valid 101 response (with or without
//! permessage-deflate, in the variants RFC 7692 allows a server to answer), then arbitrary bytes
//! as the server's frames, in one "packet" and then split into chunks derived from the input, fed
//! to a [`ClientConnection`] the way a shell feeds it: no panic; every frame the client sends is
//! well formed and masked, with a fresh key each time; a failed connection's last frame is its
//! Close; and memory stays within the configured limits.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use rfc6455::client_handshake::ClientRequest;
use rfc6455::deflate::{DeflateConfig, SharedDeflate};
use rfc6455::entropy::Entropy;
use rfc6455::frame::{MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, Opcode};
use rfc6455::handshake::accept_key;
use rfc6455::limits::Limits;
use rfc6455::{ClientConfig, ClientConnection, ClientError, ClientEvent};
use std::sync::Arc;
use std::time::Instant;

/// Masking keys and the handshake key from a counter: reproducible, and never the same twice.
struct Counter(u32);

impl Entropy for Counter {
    fn fill(&mut self, bytes: &mut [u8]) {
        for byte in bytes {
            self.0 = self.0.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            *byte = (self.0 >> 16) as u8;
        }
    }
}

/// What the server answers to the client's permessage-deflate offer, chosen by two bits.
const DEFLATE_ANSWERS: [&str; 4] = [
    "permessage-deflate",
    "permessage-deflate; server_no_context_takeover",
    "permessage-deflate; client_no_context_takeover; server_max_window_bits=9",
    "permessage-deflate; client_max_window_bits=9",
];

fuzz_target!(|data: &[u8]| {
    let Some((&cuts, frames)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        max_frame_size: 4096,
        max_message_size: 8192,
        max_fragments: 64,
        ..Limits::default()
    };
    // The top bit of the first byte has the server accept permessage-deflate; the next two
    // choose its answer.
    let compressed = cuts & 0x80 != 0;
    let config = ClientConfig {
        limits,
        deflate: DeflateConfig::default(),
        ..ClientConfig::default()
    };
    let now = Instant::now();
    let request = ClientRequest {
        host: "fuzz".into(),
        resource: "/".into(),
        ..ClientRequest::default()
    };
    let mut connection =
        ClientConnection::new(Arc::new(config), request, Box::new(Counter(1)), now).unwrap();
    let sent = connection.take_output();
    let sent = String::from_utf8(sent).expect("the request is text");
    let key = sent
        .lines()
        .find_map(|line| line.strip_prefix("Sec-WebSocket-Key: "))
        .expect("the request has a key");
    let mut input = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n",
        accept_key(key.as_bytes())
    );
    if compressed {
        let answer = DEFLATE_ANSWERS[usize::from((cuts >> 5) & 3)];
        input.push_str(&format!("Sec-WebSocket-Extensions: {answer}\r\n"));
    }
    input.push_str("\r\n");
    let mut input = input.into_bytes();
    input.extend_from_slice(frames);

    let mut shared = SharedDeflate::new();
    let sizes = common::read_sizes(cuts);
    let mut pending: Vec<u8> = Vec::new();
    let mut offset = 0;
    let mut failed = false;
    let mut opened = false;
    let mut output = Vec::new();
    'reads: for size in sizes.iter().cycle() {
        if offset >= input.len() {
            break;
        }
        let end = (offset + size).min(input.len());
        pending.extend_from_slice(&input[offset..end]);
        offset = end;
        let mut pos = 0;
        loop {
            let available = pending.len() - pos;
            match connection.handle_input(&mut pending[pos..], now, &mut shared) {
                Ok(received) => {
                    if received.needs_more() {
                        break;
                    }
                    assert!(received.consumed <= available);
                    pos += received.consumed;
                    match received.event {
                        Some(ClientEvent::Open) => opened = true,
                        Some(ClientEvent::Message(message)) => {
                            assert!(message.as_bytes().len() as u64 <= limits.max_message_size);
                            // Echo, as Autobahn's client driver does.
                            let _ =
                                connection.send(message.kind(), message.as_bytes(), &mut shared);
                        }
                        Some(ClientEvent::Ping(p) | ClientEvent::Pong(p)) => {
                            assert!(p.len() <= MAX_CONTROL_PAYLOAD)
                        }
                        Some(_) | None => {}
                    }
                }
                Err(ClientError::Protocol(_)) => {
                    failed = true;
                    assert!(!connection.is_open());
                    break 'reads;
                }
                Err(error) => panic!("the response is valid: {error}"),
            }
        }
        pending.drain(..pos);
        if !connection.is_handshaking() {
            assert!(
                pending.len() <= MAX_HEADER_LEN + MAX_CONTROL_PAYLOAD,
                "left over {}",
                pending.len()
            );
        }
        output.extend(connection.take_output());
    }
    output.extend(connection.take_output());
    assert!(opened || connection.is_handshaking() || failed);

    // The output parses as masked frames, each with its own key; a failed connection's last
    // frame is its Close.
    let last = common::check_frames(&output, true, compressed);
    if failed {
        assert_eq!(last, Some(Opcode::Close));
    }
});
