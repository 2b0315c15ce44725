//! Arbitrary bytes, in chunks derived from the input, into a [`ServerConnection`] as its request
//! (accumulating, as the server presents it): the answer is always a complete HTTP response,
//! either a 101 with the correct accept value or an error status, and chunking never changes the
//! outcome.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rfc6455::deflate::SharedDeflate;
use rfc6455::handshake;
use rfc6455::limits::Limits;
use rfc6455::{Error, Response, ServerConfig, ServerConnection, ServerEvent};
use std::sync::Arc;
use std::time::Instant;

/// Runs a server connection on `input` in pieces of the given sizes; returns the response bytes,
/// or `None` if the input ends before the head does.
fn answer(input: &[u8], sizes: &[usize], config: &Arc<ServerConfig>) -> Option<Vec<u8>> {
    let now = Instant::now();
    let mut connection = ServerConnection::new(config.clone(), now);
    let mut shared = SharedDeflate::new();
    let mut end = 0;
    for size in sizes.iter().cycle() {
        if end >= input.len() {
            return None;
        }
        end = (end + size).min(input.len());
        let mut received_so_far = input[..end].to_vec();
        match connection.handle_input(&mut received_so_far, now, &mut shared) {
            Ok(received) if received.needs_more() => continue,
            Ok(received) => {
                assert!(received.consumed <= end);
                match received.event {
                    Some(ServerEvent::Upgrade(request)) => {
                        connection.accept(&request, None, now).unwrap()
                    }
                    Some(ServerEvent::Http(_)) => connection
                        .respond(&Response::text(404, "not found\n"), now)
                        .unwrap(),
                    other => panic!("a request, not {other:?}"),
                }
            }
            Err(Error::Handshake(_)) => {}
            Err(other) => panic!("a handshake error, not {other}"),
        }
        return Some(connection.take_output());
    }
    None
}

fuzz_target!(|data: &[u8]| {
    let Some((&cuts, input)) = data.split_first() else {
        return;
    };
    let config = Arc::new(ServerConfig {
        limits: Limits {
            max_head_size: 1024,
            max_headers: 16,
            ..Limits::default()
        },
        ..ServerConfig::default()
    });
    let sizes: Vec<usize> = (0..4)
        .map(|i| 1 + ((cuts >> (2 * i)) & 3) as usize * 7)
        .collect();
    let chunked = answer(input, &sizes, &config);
    let whole = answer(input, &[input.len().max(1)], &config);
    assert_eq!(chunked, whole, "chunking changed the answer");
    let Some(response) = whole else { return };
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut parsed = httparse::Response::new(&mut headers);
    let Ok(httparse::Status::Complete(head_len)) = parsed.parse(&response) else {
        panic!(
            "incomplete response: {:?}",
            String::from_utf8_lossy(&response)
        );
    };
    let status = parsed.code.expect("a status");
    let header = |name: &str| {
        parsed
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    if status == 101 {
        assert_eq!(head_len, response.len());
        let request_key = input
            .split(|&b| b == b'\n')
            .find_map(|line| {
                let line = std::str::from_utf8(line).ok()?;
                let (name, value) = line.split_once(':')?;
                name.trim()
                    .eq_ignore_ascii_case("sec-websocket-key")
                    .then(|| value.trim().to_string())
            })
            .expect("a 101 answers a request with a key");
        let accept = header("Sec-WebSocket-Accept").expect("accept header");
        assert_eq!(
            accept,
            handshake::accept_key(request_key.as_bytes()).as_bytes()
        );
    } else {
        assert!(
            matches!(status, 400 | 403 | 404 | 405 | 426 | 431),
            "status {status}"
        );
        assert_eq!(header("Connection"), Some(&b"close"[..]));
        let length: usize = std::str::from_utf8(header("Content-Length").unwrap())
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(response.len() - head_len, length);
    }
});
