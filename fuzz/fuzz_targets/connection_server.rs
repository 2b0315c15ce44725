//! Arbitrary bytes after a valid handshake, split into chunks derived from the input, fed to a
//! server-role connection the way the server feeds it: no panic; the output is always a sequence
//! of well-formed unmasked frames ending in a Close once the connection failed; and memory stays
//! within the configured limits (at most one message buffer, at most a header plus a control
//! frame of unconsumed input).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rfc6455::connection::{Connection, Event, Role, State};
use rfc6455::deflate::{Deflate, DeflateConfig, Negotiated};
use rfc6455::frame::{self, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, Opcode, Status};
use rfc6455::handshake::{self, HeadScanner};
use rfc6455::limits::Limits;
use rfc6455::outbox::Outbox;
use std::io::IoSlice;

const REQUEST: &[u8] =
    b"GET / HTTP/1.1\r\nHost: fuzz\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

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

    // The handshake, with the frames in the same "packet" as the request.
    let mut input = REQUEST.to_vec();
    input.extend_from_slice(frames);
    let Ok(Status::Complete(head_len)) = HeadScanner::new().scan(&input, limits.max_head_size)
    else {
        panic!("the fixed request is complete");
    };
    let request = handshake::parse_request(&input[..head_len], &limits).unwrap();
    handshake::validate_upgrade(&request).unwrap();

    // The top bit of the first byte turns permessage-deflate on, so compressed messages (RSV1)
    // reach the inflater through the connection too.
    let mut connection = Connection::new(Role::Server, limits);
    if cuts & 0x80 != 0 {
        let params = Negotiated { server_max_window_bits: 15, client_no_context_takeover: cuts & 0x40 == 0 };
        let config = DeflateConfig { client_context_takeover: cuts & 0x40 != 0, ..DeflateConfig::default() };
        connection = connection.with_deflate(Deflate::new(params, &config));
    }
    let mut outbox = Outbox::new();
    let sizes: Vec<usize> = (0..4)
        .map(|i| 1 + ((cuts >> (2 * i)) & 3) as usize * 37)
        .collect();
    let mut pending: Vec<u8> = Vec::new();
    let mut offset = head_len;
    let mut failed = false;
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
            match connection.receive(&mut pending[pos..], &mut outbox) {
                Ok(received) => {
                    if received.needs_more() {
                        break;
                    }
                    assert!(received.consumed <= available);
                    pos += received.consumed;
                    match received.event {
                        Some(Event::Message(message)) => {
                            assert!(message.as_bytes().len() as u64 <= limits.max_message_size);
                            // Echo, like the server.
                            let _ =
                                connection.send(message.kind(), message.as_bytes(), &mut outbox);
                        }
                        Some(Event::Ping(p) | Event::Pong(p)) => {
                            assert!(p.len() <= MAX_CONTROL_PAYLOAD)
                        }
                        Some(Event::Close(_)) | None => {}
                    }
                }
                Err(error) => {
                    failed = true;
                    assert_eq!(connection.state(), State::Closed, "{error}");
                    break 'reads;
                }
            }
        }
        pending.drain(..pos);
        assert!(
            pending.len() <= MAX_HEADER_LEN + MAX_CONTROL_PAYLOAD,
            "left over {}",
            pending.len()
        );
        assert!(connection.buffered() as u64 <= limits.max_message_size);
    }

    // The output parses as unmasked frames; a failed connection's last frame is its Close.
    let mut slices = vec![IoSlice::new(&[]); 4096];
    let count = outbox.io_slices(&mut slices);
    let output: Vec<u8> = slices[..count]
        .iter()
        .flat_map(|s| s.iter().copied())
        .collect();
    let mut pos = 0;
    let mut last = None;
    while pos < output.len() {
        let Ok(Status::Complete((header, len))) = frame::decode_header(&output[pos..]) else {
            panic!("malformed output at {pos}");
        };
        assert!(header.mask.is_none() && header.fin && !header.rsv2 && !header.rsv3);
        pos += len + header.payload_len as usize;
        last = Some(header.opcode);
    }
    assert_eq!(pos, output.len());
    if failed {
        assert_eq!(last, Some(Opcode::Close));
    }
});
