//! Arbitrary bytes into the frame header decoder: "need more bytes" never consumes anything, and
//! re-encoding a decoded header reproduces exactly the bytes it consumed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rfc6455::frame::{MAX_HEADER_LEN, Status, decode_header, encode_header};

fuzz_target!(|data: &[u8]| {
    match decode_header(data) {
        Ok(Status::Complete((header, len))) => {
            assert!(len <= MAX_HEADER_LEN && len <= data.len());
            let mut encoded = [0u8; MAX_HEADER_LEN];
            let n = encode_header(&header, &mut encoded);
            assert_eq!(&encoded[..n], &data[..len], "round trip of {header:?}");
            for cut in 0..len {
                assert_eq!(decode_header(&data[..cut]), Ok(Status::Partial));
            }
        }
        Ok(Status::Partial) => {
            assert!(data.len() < MAX_HEADER_LEN);
            for cut in 0..data.len() {
                assert_eq!(decode_header(&data[..cut]), Ok(Status::Partial));
            }
        }
        Err(error) => {
            // An error is decided by the bytes that show it; more input cannot undo it.
            let mut longer = data.to_vec();
            longer.extend_from_slice(&[0u8; MAX_HEADER_LEN]);
            assert_eq!(decode_header(&longer), Err(error));
        }
    }
});
