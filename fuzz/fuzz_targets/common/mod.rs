//! What the two connection targets share: how the input is cut into reads, and the checks on
//! the frames a connection wrote.

use rfc6455::frame::{self, Opcode, Status};

/// The sizes of the reads the input is cut into, from the input's first byte: four sizes of 1 to
/// 112 bytes, used in turn.
pub fn read_sizes(cuts: u8) -> [usize; 4] {
    std::array::from_fn(|i| 1 + ((cuts >> (2 * i)) & 3) as usize * 37)
}

/// Checks that `output` is a sequence of whole, well-formed final frames (no RSV2 or RSV3; RSV1
/// only when `compressed`), masked if and only if `masked`, each masked one with a key no
/// earlier frame used. Returns the last frame's opcode.
pub fn check_frames(output: &[u8], masked: bool, compressed: bool) -> Option<Opcode> {
    let mut pos = 0;
    let mut last = None;
    let mut keys = Vec::new();
    while pos < output.len() {
        let Ok(Status::Complete((header, len))) = frame::decode_header(&output[pos..]) else {
            panic!("malformed output at {pos}");
        };
        assert_eq!(header.mask.is_some(), masked, "masked as the role requires");
        assert!(header.fin && !header.rsv2 && !header.rsv3);
        assert!(
            !header.rsv1 || compressed,
            "RSV1 only with permessage-deflate"
        );
        if let Some(key) = header.mask {
            assert!(!keys.contains(&key), "a masking key was used twice");
            keys.push(key);
        }
        pos += len + header.payload_len as usize;
        last = Some(header.opcode);
    }
    assert_eq!(pos, output.len());
    last
}
