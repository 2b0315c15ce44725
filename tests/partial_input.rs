//! Property tests over the protocol core, driving a whole [`ServerConnection`] from its request
//! on: however the input is cut into reads, the events and output are the same; encoding then
//! decoding round-trips; and no input makes the core panic or hold more than a header and a
//! control frame of unconsumed input once the connection is open.

use proptest::prelude::*;
use rfc6455::deflate::SharedDeflate;
use rfc6455::frame::{self, FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, Opcode, Status};
use rfc6455::{ServerConfig, ServerConnection, ServerEvent};
use std::sync::Arc;
use std::time::Instant;

/// An upgrade request that the default configuration accepts.
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// One step of a client's frame stream.
#[derive(Debug, Clone)]
enum Step {
    /// A message: text or binary, split into these fragments.
    Message {
        text: bool,
        fragments: Vec<Vec<u8>>,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

fn masked(fin: bool, opcode: Opcode, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    let header = FrameHeader::new(opcode, payload.len())
        .with_fin(fin)
        .masked(key);
    let mut out = Vec::new();
    frame::encode_frame(&header, payload, &mut out);
    out
}

fn cut_at_char_boundaries(text: &str, cuts: &[usize]) -> Vec<Vec<u8>> {
    // Cuts anywhere, not only at character boundaries: the validator must cope.
    let bytes = text.as_bytes();
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort();
    let mut pieces = Vec::new();
    let mut start = 0;
    for p in points {
        pieces.push(bytes[start..p].to_vec());
        start = p;
    }
    pieces.push(bytes[start..].to_vec());
    pieces
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (any::<String>(), prop::collection::vec(any::<usize>(), 0..4)).prop_map(|(text, cuts)| {
            Step::Message {
                text: true,
                fragments: cut_at_char_boundaries(&text, &cuts),
            }
        }),
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..4).prop_map(
            |fragments| Step::Message {
                text: false,
                fragments
            }
        ),
        prop::collection::vec(any::<u8>(), 0..=MAX_CONTROL_PAYLOAD).prop_map(Step::Ping),
        prop::collection::vec(any::<u8>(), 0..=MAX_CONTROL_PAYLOAD).prop_map(Step::Pong),
    ]
}

fn encode_steps(steps: &[Step], key: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::new();
    for step in steps {
        match step {
            Step::Message { text, fragments } => {
                let last = fragments.len() - 1;
                for (i, fragment) in fragments.iter().enumerate() {
                    let opcode = match (i, text) {
                        (0, true) => Opcode::Text,
                        (0, false) => Opcode::Binary,
                        _ => Opcode::Continuation,
                    };
                    out.extend(masked(i == last, opcode, fragment, key));
                }
            }
            Step::Ping(p) => out.extend(masked(true, Opcode::Ping, p, key)),
            Step::Pong(p) => out.extend(masked(true, Opcode::Pong, p, key)),
        }
    }
    out
}

/// Feeds the request then `input` in reads of the given sizes (cycled), keeping unconsumed bytes
/// like the server does, accepting the upgrade when it is reported, and renders the events and
/// the output after the 101.
fn run(input: &[u8], sizes: &[usize]) -> (Vec<String>, Vec<u8>, Option<String>) {
    let now = Instant::now();
    let mut connection = ServerConnection::new(Arc::new(ServerConfig::default()), now);
    let mut shared = SharedDeflate::new();
    let stream = [REQUEST, input].concat();
    let mut events = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut offset = 0;
    let mut error = None;
    let mut output = Vec::new();
    for &size in sizes.iter().cycle() {
        if offset >= stream.len() || error.is_some() {
            break;
        }
        let end = (offset + size.max(1)).min(stream.len());
        pending.extend_from_slice(&stream[offset..end]);
        offset = end;
        let mut pos = 0;
        loop {
            match connection.handle_input(&mut pending[pos..], now, &mut shared) {
                Ok(received) => {
                    if received.needs_more() {
                        break;
                    }
                    pos += received.consumed;
                    match received.event {
                        Some(ServerEvent::Upgrade(request)) => {
                            connection.accept(&request, None, now).unwrap();
                            let response = connection.take_output();
                            assert!(response.starts_with(b"HTTP/1.1 101 "));
                        }
                        Some(ServerEvent::Message(m)) => {
                            events.push(format!("{:?} {:?}", m.kind(), m.as_bytes()))
                        }
                        Some(other) => events.push(format!("{other:?}")),
                        None => {}
                    }
                }
                Err(e) => {
                    error = Some(format!("{e:?}"));
                    break;
                }
            }
        }
        pending.drain(..pos.min(pending.len()));
        let open = !connection.is_handshaking();
        assert!(error.is_some() || !open || pending.len() <= MAX_HEADER_LEN + MAX_CONTROL_PAYLOAD);
    }
    // Only the first pong goes out until it is written: compare the queue as it stands.
    let mut slices = [std::io::IoSlice::new(&[]); 1024];
    let n = connection.outbox().io_slices(&mut slices);
    output.extend(slices[..n].iter().flat_map(|s| s.iter().copied()));
    (events, output, error)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn same_events_however_the_input_is_cut(
        steps in prop::collection::vec(step(), 1..8),
        key in any::<[u8; 4]>(),
        sizes in prop::collection::vec(1usize..64, 1..8),
    ) {
        let input = encode_steps(&steps, key);
        let whole = run(&input, &[input.len()]);
        prop_assert_eq!(&whole.2, &None);
        prop_assert_eq!(run(&input, &sizes), whole.clone());
        prop_assert_eq!(run(&input, &[1]), whole);
    }

    #[test]
    fn header_round_trip(
        fin in any::<bool>(), rsv in any::<[bool; 3]>(),
        opcode in prop::sample::select(vec![Opcode::Continuation, Opcode::Text, Opcode::Binary]),
        mask in any::<Option<[u8; 4]>>(), len in 0u64..(1 << 63),
    ) {
        let header = FrameHeader { fin, rsv1: rsv[0], rsv2: rsv[1], rsv3: rsv[2], opcode, mask, payload_len: len };
        let mut bytes = [0u8; MAX_HEADER_LEN];
        let n = frame::encode_header(&header, &mut bytes);
        prop_assert_eq!(frame::decode_header(&bytes[..n]), Ok(Status::Complete((header, n))));
        for cut in 0..n {
            prop_assert_eq!(frame::decode_header(&bytes[..cut]), Ok(Status::Partial));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        input in prop::collection::vec(any::<u8>(), 0..2000),
        sizes in prop::collection::vec(1usize..100, 1..8),
    ) {
        let _ = run(&input, &sizes);
    }

    #[test]
    fn mostly_valid_bytes_never_panic(
        steps in prop::collection::vec(step(), 1..6),
        key in any::<[u8; 4]>(),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        sizes in prop::collection::vec(1usize..100, 1..8),
    ) {
        // Valid streams with a few bytes corrupted reach deep states before breaking a rule.
        let mut input = encode_steps(&steps, key);
        for (at, value) in flips {
            let at = at % input.len();
            input[at] ^= value;
        }
        let (_, out, error) = run(&input, &sizes);
        // Whatever happened, the output is a sequence of well-formed unmasked server frames,
        // and a failed connection's last frame is a Close.
        let mut pos = 0;
        let mut last = None;
        while pos < out.len() {
            let Ok(Status::Complete((header, len))) = frame::decode_header(&out[pos..]) else {
                return Err(TestCaseError::fail("malformed output"));
            };
            prop_assert!(header.mask.is_none());
            pos += len + header.payload_len as usize;
            last = Some(header.opcode);
        }
        prop_assert_eq!(pos, out.len());
        if error.is_some() {
            prop_assert_eq!(last, Some(Opcode::Close));
        }
    }
}
