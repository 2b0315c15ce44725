//! Arbitrary bytes as a compressed message into the permessage-deflate inflater: no panic, the
//! output never passes the limit, and the shared inflater is usable again afterwards (a message
//! compressed by us still round-trips).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rfc6455::deflate::{Deflate, DeflateConfig, Negotiated, SharedDeflate};
use rfc6455::error::ProtocolError;

const LIMIT: u64 = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, compressed)) = data.split_first() else {
        return;
    };
    let params = Negotiated {
        our_window_bits: 9 + selector % 7,
        peer_resets_context: selector & 0x80 == 0,
    };
    let config = DeflateConfig {
        client_context_takeover: !params.peer_resets_context,
        ..DeflateConfig::default()
    };
    let mut shared = SharedDeflate::new();
    let mut state = Deflate::new(params, &config);
    match state.decompress(compressed, LIMIT, &mut shared) {
        Ok(out) => assert!(out.len() as u64 <= LIMIT),
        Err(ProtocolError::MessageTooBig { len, limit }) => assert!(len > limit && limit == LIMIT),
        Err(ProtocolError::InvalidCompressedData) => {}
        Err(other) => panic!("unexpected error {other:?}"),
    }
    // Our own compression of the same bytes always round-trips through a fresh context.
    let mut ours = Vec::new();
    state.compress(compressed, &mut ours, &mut shared);
    let mut fresh = Deflate::new(
        Negotiated {
            peer_resets_context: true,
            ..params
        },
        &DeflateConfig::default(),
    );
    assert_eq!(
        fresh.decompress(&ours, u64::MAX, &mut shared).unwrap(),
        compressed
    );
});
