//! Arbitrary bytes as `Sec-WebSocket-Extensions` values: parsing never panics, and whenever an
//! offer is accepted, our response is itself a well-formed single permessage-deflate offer with
//! parameters we understand.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rfc6455::deflate::{self, DeflateConfig};
use rfc6455::handshake;
use rfc6455::limits::Limits;

fuzz_target!(|data: &[u8]| {
    // Each line is one header value.
    let values: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let _ = deflate::parse_extensions(values.iter().copied());

    let mut head = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for value in &values {
        if value
            .iter()
            .any(|&b| b == b'\r' || b < 0x20 && b != b'\t' || b == 0x7f)
        {
            return; // not a header value httparse would accept
        }
        head.extend_from_slice(b"Sec-WebSocket-Extensions: ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    let limits = Limits {
        max_headers: 256,
        ..Limits::default()
    };
    let Ok(request) = handshake::parse_request(&head, &limits) else {
        return;
    };
    for config in [
        DeflateConfig::default(),
        DeflateConfig {
            client_context_takeover: true,
            ..DeflateConfig::default()
        },
    ] {
        if let Ok(Some(negotiated)) = deflate::negotiate(&request, &config) {
            let response = negotiated.server_response();
            let offers = deflate::parse_extensions(std::iter::once(response.as_bytes()))
                .expect("our response parses");
            assert_eq!(offers.len(), 1);
            assert_eq!(offers[0].name, deflate::EXTENSION_NAME);
            assert!((9..=15).contains(&negotiated.our_window_bits));
        }
    }
});
