//! RFC 6455 §5.3 Client-to-Server Masking: XOR a payload with a 4-byte key, in place or while
//! copying it.
//!
//! <https://www.rfc-editor.org/rfc/rfc6455#section-5.3>

/// Masks or unmasks `payload` in place with `key`, where `payload[0]` is byte number `offset` of
/// the frame's payload (so a payload that arrives in pieces can be unmasked piece by piece).
///
/// The bulk runs eight bytes at a time on native-endian words (the key word is built in the same
/// byte order, so positions line up), which the compiler turns into vector code.
//= https://www.rfc-editor.org/rfc/rfc6455#section-5.3
//# Octet i of the transformed data ("transformed-octet-i") is the XOR of
//# octet i of the original data ("original-octet-i") with octet at index
//# i modulo 4 of the masking key ("masking-key-octet-j"):
//
//= https://www.rfc-editor.org/rfc/rfc6455#section-5.3
//# The same algorithm applies regardless of the
//# direction of the translation, e.g., the same steps are applied to
//# mask the data as to unmask the data.
pub fn apply_mask(payload: &mut [u8], key: [u8; 4], offset: usize) {
    let (rotated, key_word) = rotate(key, offset);
    let mut chunks = payload.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ key_word).to_ne_bytes());
    }
    // The remainder starts at a multiple of 8, so the rotated key still lines up at index 0: a
    // four-byte word if there is one, then at most three bytes, the key lined up at 0 again.
    let tail = chunks.into_remainder();
    let (word, bytes) = tail.split_at_mut(tail.len() & 4);
    if let Ok(word) = <&mut [u8; 4]>::try_from(word) {
        *word = (u32::from_ne_bytes(*word) ^ u32::from_ne_bytes(rotated)).to_ne_bytes();
    }
    for (byte, key_byte) in bytes.iter_mut().zip(rotated) {
        *byte ^= key_byte;
    }
}

/// Copies `payload` into `out` (of the same length) masked or unmasked with `key`, as
/// [`apply_mask`] would transform it in place: one pass over the bytes instead of a transform
/// and a copy. It never calls on the C library's `memcpy`, whose `rep movsb` runs an order of
/// magnitude slower on some processors when source and destination are misaligned in a
/// particular way (a payload behind a 14-byte header is).
pub fn copy_masked(out: &mut [u8], payload: &[u8], key: [u8; 4], offset: usize) {
    assert_eq!(
        out.len(),
        payload.len(),
        "copied into a buffer of another length"
    );
    let (rotated, key_word) = rotate(key, offset);
    let mut outs = out.chunks_exact_mut(8);
    let mut ins = payload.chunks_exact(8);
    for (out, chunk) in (&mut outs).zip(&mut ins) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        out.copy_from_slice(&(u64::from_ne_bytes(word) ^ key_word).to_ne_bytes());
    }
    for (i, (out, byte)) in outs
        .into_remainder()
        .iter_mut()
        .zip(ins.remainder())
        .enumerate()
    {
        *out = byte ^ rotated[i % 4];
    }
}

/// The key rotated so that its first byte applies to payload byte number `offset`, and as a
/// native-endian word of two keys (the word is built in the same byte order as the payload's
/// words are read, so positions line up).
fn rotate(key: [u8; 4], offset: usize) -> ([u8; 4], u64) {
    // Read little-endian, byte i of the key is bits 8i..8i+8: rotating right by 8 bits per
    // position brings key[(offset + i) % 4] to byte i.
    let shift = 8 * (offset % 4) as u32;
    let rotated = u32::from_le_bytes(key).rotate_right(shift).to_le_bytes();
    // The 32-bit key in both halves of the word (the same bytes, so in either byte order).
    let word = u64::from(u32::from_ne_bytes(rotated)) * 0x1_0000_0001;
    (rotated, word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(payload: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= key[(offset + i) % 4];
        }
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.3
    //= type=test
    //# Octet i of the transformed data ("transformed-octet-i") is the XOR of
    //# octet i of the original data ("original-octet-i") with octet at index
    //# i modulo 4 of the masking key ("masking-key-octet-j"):
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.3
    //= type=test
    //# The same algorithm applies regardless of the
    //# direction of the translation, e.g., the same steps are applied to
    //# mask the data as to unmask the data.
    #[test]
    fn matches_naive_loop_at_every_offset_and_length() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for len in 0..300 {
            let original: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
            for offset in 0..8 {
                let mut fast = original.clone();
                let mut slow = original.clone();
                apply_mask(&mut fast, key, offset);
                naive(&mut slow, key, offset);
                assert_eq!(fast, slow, "len {len} offset {offset}");
            }
        }
    }

    #[test]
    fn a_far_offset_lines_up_as_its_remainder_by_four() {
        // A frame's payload can be longer than 4 GiB: only the offset modulo 4 counts.
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let original: Vec<u8> = (0..23).collect();
        for far in [usize::MAX - 3, usize::MAX - 2, usize::MAX - 1, usize::MAX] {
            let mut fast = original.clone();
            let mut slow = original.clone();
            apply_mask(&mut fast, key, far);
            naive(&mut slow, key, far % 4);
            assert_eq!(fast, slow, "offset {far}");
        }
    }

    #[test]
    fn copying_masked_equals_masking_in_place() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for len in 0..70 {
            let original: Vec<u8> = (0..len).map(|i| (i * 13 + 5) as u8).collect();
            for offset in 0..8 {
                let mut in_place = original.clone();
                apply_mask(&mut in_place, key, offset);
                let mut copied = vec![0xAA; len];
                copy_masked(&mut copied, &original, key, offset);
                assert_eq!(copied, in_place, "len {len} offset {offset}");
            }
        }
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.3
    //= type=test
    //# Octet i of the transformed data ("transformed-octet-i") is the XOR of
    //# octet i of the original data ("original-octet-i") with octet at index
    //# i modulo 4 of the masking key ("masking-key-octet-j"):
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.7
    //= type=test
    //# 0x81 0x85 0x37 0xfa 0x21 0x3d 0x7f 0x9f 0x4d 0x51 0x58
    #[test]
    fn rfc_5_7_masked_hello() {
        let mut payload = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        apply_mask(&mut payload, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(&payload, b"Hello");
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.3
    //= type=test
    //# Octet i of the transformed data ("transformed-octet-i") is the XOR of
    //# octet i of the original data ("original-octet-i") with octet at index
    //# i modulo 4 of the masking key ("masking-key-octet-j"):
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.3
    //= type=test
    //# The same algorithm applies regardless of the
    //# direction of the translation, e.g., the same steps are applied to
    //# mask the data as to unmask the data.
    #[test]
    fn unmasking_in_pieces_equals_unmasking_whole() {
        let key = [9, 8, 7, 6];
        let original: Vec<u8> = (0..100u8).collect();
        let mut whole = original.clone();
        apply_mask(&mut whole, key, 0);
        for split in 0..=original.len() {
            let mut pieces = original.clone();
            let (a, b) = pieces.split_at_mut(split);
            apply_mask(a, key, 0);
            apply_mask(b, key, split);
            assert_eq!(pieces, whole);
        }
    }
}
