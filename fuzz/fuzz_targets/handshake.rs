//! Arbitrary bytes, in chunks derived from the input, into the request head scanner and parser:
//! the answer is always a complete HTTP response, either a 101 with the correct accept value or
//! an error status, and chunking never changes the outcome.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rfc6455::frame::Status;
use rfc6455::handshake::{self, HeadScanner};
use rfc6455::limits::Limits;

/// Runs the server's handshake path on `input` in pieces of the given sizes; returns the response
/// bytes, or `None` if the input ends before the head does.
fn answer(input: &[u8], sizes: &[usize], limits: &Limits) -> Option<Vec<u8>> {
    let mut scanner = HeadScanner::new();
    let mut end = 0;
    for size in sizes.iter().cycle() {
        if end >= input.len() {
            return None;
        }
        end = (end + size).min(input.len());
        let mut out = Vec::new();
        match scanner.scan(&input[..end], limits.max_head_size) {
            Ok(Status::Partial) => continue,
            Err(error) => handshake::error_response(error).write_to(&mut out),
            Ok(Status::Complete(head_len)) => {
                assert!(head_len <= end);
                let result =
                    handshake::parse_request(&input[..head_len], limits).and_then(|request| {
                        handshake::validate_upgrade(&request).map(|u| u.key.to_string())
                    });
                match result {
                    Ok(key) => handshake::accept_response(&key, None, None).write_to(&mut out),
                    Err(error) => handshake::error_response(error).write_to(&mut out),
                }
            }
        }
        return Some(out);
    }
    None
}

fuzz_target!(|data: &[u8]| {
    let Some((&cuts, input)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        max_head_size: 1024,
        max_headers: 16,
        ..Limits::default()
    };
    let sizes: Vec<usize> = (0..4)
        .map(|i| 1 + ((cuts >> (2 * i)) & 3) as usize * 7)
        .collect();
    let chunked = answer(input, &sizes, &limits);
    let whole = answer(input, &[input.len().max(1)], &limits);
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
            matches!(status, 400 | 403 | 405 | 426 | 431),
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
