//! Every example of RFC 6455 §5.7, through the public API.
//! <https://www.rfc-editor.org/rfc/rfc6455#section-5.7>

use rfc6455::connection::{ClientEnd, Connection, Endpoint, Event, ServerEnd};
use rfc6455::deflate::SharedDeflate;
use rfc6455::entropy::Sequence;
use rfc6455::limits::Limits;
use rfc6455::message::MessageKind;
use rfc6455::outbox::Outbox;
use std::io::IoSlice;

/// Feeds all of `input` and returns a debug rendering of each event, plus the output bytes.
fn feed<P: Endpoint>(end: P, mut input: Vec<u8>) -> (Vec<String>, Vec<u8>) {
    let mut connection = Connection::new(end);
    let (mut outbox, mut shared, limits) = (Outbox::new(), SharedDeflate::new(), Limits::default());
    let mut events = Vec::new();
    let mut pos = 0;
    loop {
        let received = connection
            .receive(&mut input[pos..], &mut outbox, &limits, &mut shared)
            .expect("valid input");
        if received.needs_more() {
            break;
        }
        pos += received.consumed;
        events.extend(received.event.map(|event| match event {
            Event::Message(m) if m.kind() == MessageKind::Text => {
                format!("text {}", m.as_text().unwrap())
            }
            Event::Message(m) => format!("binary {}", m.as_bytes().len()),
            Event::Ping(p) => format!("ping {}", String::from_utf8_lossy(p)),
            Event::Pong(p) => format!("pong {}", String::from_utf8_lossy(p)),
            Event::Close(c) => format!("close {c:?}"),
            other => format!("{other:?}"),
        }));
    }
    assert_eq!(pos, input.len(), "all input consumed");
    let mut slices = [IoSlice::new(&[]); 8];
    let n = outbox.io_slices(&mut slices);
    (
        events,
        slices[..n].iter().flat_map(|s| s.iter().copied()).collect(),
    )
}

#[test]
fn single_frame_unmasked_text() {
    let (events, _) = feed(
        ClientEnd(Sequence(0)),
        vec![0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
    );
    assert_eq!(events, ["text Hello"]);
}

#[test]
fn single_frame_masked_text() {
    let input = vec![
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let (events, _) = feed(ServerEnd, input);
    assert_eq!(events, ["text Hello"]);
}

#[test]
fn fragmented_unmasked_text() {
    let input = vec![0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
    let (events, _) = feed(ClientEnd(Sequence(0)), input);
    assert_eq!(events, ["text Hello"]);
}

#[test]
fn unmasked_ping_is_answered_with_identical_payload() {
    // A client receives the §5.7 unmasked ping; its pong is masked, so compare after unmasking.
    let (events, out) = feed(
        ClientEnd(Sequence(0)),
        vec![0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
    );
    assert_eq!(events, ["ping Hello"]);
    assert_eq!(&out[..2], [0x8a, 0x85]);
    let key = [out[2], out[3], out[4], out[5]];
    let mut payload = out[6..].to_vec();
    rfc6455::mask::apply_mask(&mut payload, key, 0);
    assert_eq!(payload, b"Hello");
}

#[test]
fn masked_pong() {
    let input = vec![
        0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let (events, out) = feed(ServerEnd, input);
    assert_eq!(events, ["pong Hello"]);
    assert!(out.is_empty(), "a pong is not answered");
}

#[test]
fn binary_256_bytes_16_bit_length() {
    let mut input = vec![0x82, 0x7E, 0x01, 0x00];
    input.extend(std::iter::repeat_n(0xAB, 256));
    assert_eq!(feed(ClientEnd(Sequence(0)), input).0, ["binary 256"]);
}

#[test]
fn binary_64_kib_64_bit_length() {
    let mut input = vec![0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00];
    input.extend(std::iter::repeat_n(0xCD, 65536));
    assert_eq!(feed(ClientEnd(Sequence(0)), input).0, ["binary 65536"]);
}
