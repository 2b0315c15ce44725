//! Arbitrary bytes after a valid upgrade request, in the same "packet" and then split into
//! chunks derived from the input, fed to a [`ServerConnection`] the way the server feeds it (the
//! request accumulates; frames that are not consumed are presented again with more): no panic;
//! the output after the 101 is always a sequence of well-formed unmasked frames, ending in a
//! Close once the connection failed; and memory stays within the configured limits (at most one
//! message buffer, at most a header plus a control frame of unconsumed input).
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use rfc6455::deflate::{DeflateConfig, SharedDeflate};
use rfc6455::frame::{MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, Opcode};
use rfc6455::limits::Limits;
use rfc6455::{Error, ServerConfig, ServerConnection, ServerEvent};
use std::sync::Arc;
use std::time::Instant;

const REQUEST: &str = "GET / HTTP/1.1\r\nHost: fuzz\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

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
    // The top bit of the first byte offers permessage-deflate, so compressed messages (RSV1)
    // reach the inflater through the connection too; the next bit lets the client keep its
    // context (its own inflater) instead of the shared one.
    let compressed = cuts & 0x80 != 0;
    let config = ServerConfig {
        limits,
        deflate: DeflateConfig {
            client_context_takeover: cuts & 0x40 != 0,
            ..DeflateConfig::default()
        },
        ..ServerConfig::default()
    };
    let mut request = REQUEST.to_string();
    if compressed {
        request.push_str("Sec-WebSocket-Extensions: permessage-deflate\r\n");
    }
    request.push_str("\r\n");
    let mut input = request.into_bytes();
    input.extend_from_slice(frames);

    let now = Instant::now();
    let mut connection = ServerConnection::new(Arc::new(config), now);
    let mut shared = SharedDeflate::new();
    let sizes = common::read_sizes(cuts);
    let mut pending: Vec<u8> = Vec::new();
    let mut offset = 0;
    let mut failed = false;
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
                        Some(ServerEvent::Upgrade(request)) => {
                            connection.accept(&request, None, now).unwrap();
                            let response = connection.take_output();
                            assert!(response.starts_with(b"HTTP/1.1 101 "));
                        }
                        Some(ServerEvent::Message(message)) => {
                            assert!(message.as_bytes().len() as u64 <= limits.max_message_size);
                            // Echo, like the server.
                            let _ =
                                connection.send(message.kind(), message.as_bytes(), &mut shared);
                        }
                        Some(ServerEvent::Ping(p) | ServerEvent::Pong(p)) => {
                            assert!(p.len() <= MAX_CONTROL_PAYLOAD)
                        }
                        Some(ServerEvent::Http(_)) => panic!("the request is an upgrade"),
                        Some(_) | None => {}
                    }
                }
                Err(error) => {
                    assert!(matches!(error, Error::Protocol(_)), "{error}");
                    failed = true;
                    assert!(!connection.is_open());
                    break 'reads;
                }
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
        // Written as it would be each turn, so that later pongs are released too.
        output.extend(connection.take_output());
    }
    output.extend(connection.take_output());

    // The output parses as unmasked frames; a failed connection's last frame is its Close.
    let last = common::check_frames(&output, false, compressed);
    if failed {
        assert_eq!(last, Some(Opcode::Close));
        assert!(
            connection.outbox().take_eof(),
            "a failed connection ends its output"
        );
    }
});
