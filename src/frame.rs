//! RFC 6455 §5.2 Base Framing Protocol: decoding and encoding frame headers.
//!
//! <https://www.rfc-editor.org/rfc/rfc6455#section-5.2>
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               |Masking-key, if MASK set to 1  |
//! +-------------------------------+-------------------------------+
//! | Masking-key (continued)       |          Payload Data         |
//! +-------------------------------- - - - - - - - - - - - - - - - +
//! :                     Payload Data continued ...                :
//! + - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - +
//! |                     Payload Data continued ...                |
//! +---------------------------------------------------------------+
//! ```
//!
//! This module checks only what the header bytes alone decide. Rules that depend on the role or
//! on the connection's state (masking, RSV bits, fragmentation order, size limits) live in
//! `connection.rs`.

use crate::error::ProtocolError;

/// The longest a frame header can be: 2 fixed bytes, 8 bytes of extended length, 4 of mask key.
pub const MAX_HEADER_LEN: usize = 14;

/// The most payload bytes a control frame may carry (RFC 6455 §5.5, checked in [`decode_header`]).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// The frame's opcode (RFC 6455 §5.2, §11.8). Reserved values are not representable: decoding one
/// is [`ProtocolError::ReservedOpcode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Opcode {
    /// %x0: continues a fragmented message.
    Continuation = 0x0,
    /// %x1: the first frame of a text message.
    Text = 0x1,
    /// %x2: the first frame of a binary message.
    Binary = 0x2,
    /// %x8: connection close (§5.5.1).
    Close = 0x8,
    /// %x9: ping (§5.5.2).
    Ping = 0x9,
    /// %xA: pong (§5.5.3).
    Pong = 0xA,
}

impl Opcode {
    /// The opcode for a 4-bit value, or `None` for the reserved values %x3–7 and %xB–F.
    pub fn from_u8(value: u8) -> Option<Opcode> {
        match value {
            0x0 => Some(Opcode::Continuation),
            0x1 => Some(Opcode::Text),
            0x2 => Some(Opcode::Binary),
            0x8 => Some(Opcode::Close),
            0x9 => Some(Opcode::Ping),
            0xA => Some(Opcode::Pong),
            _ => None,
        }
    }

    /// The 4-bit wire value.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// Whether this is a control frame's opcode (Close, Ping, Pong), RFC 6455 §5.5.
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5
    //# Control frames are identified by opcodes where the most significant
    //# bit of the opcode is 1.
    pub fn is_control(self) -> bool {
        self.as_u8() & 0x8 != 0
    }
}

/// A decoded frame header (RFC 6455 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this is the final fragment of a message.
    pub fin: bool,
    /// RSV1, meaningful only with a negotiated extension (permessage-deflate uses it).
    pub rsv1: bool,
    /// RSV2, reserved.
    pub rsv2: bool,
    /// RSV3, reserved.
    pub rsv3: bool,
    /// The opcode.
    pub opcode: Opcode,
    /// The masking key, present when the MASK bit is set (§5.3).
    pub mask: Option<[u8; 4]>,
    /// The payload length in bytes.
    pub payload_len: u64,
}

/// The result of an incremental parse, as in httparse: `Partial` means more bytes are needed and
/// nothing was consumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// The input ends before the item does; feed more bytes and call again.
    Partial,
    /// The item and how many bytes of input it used.
    Complete(T),
}

/// Decodes a frame header from the start of `buf`.
///
/// Returns `Partial` when `buf` is too short (consuming nothing), `Complete((header, len))` with
/// the header's length in bytes, or an error for bytes that break a rule of §5.2 or §5.5. Errors
/// are reported as soon as the bytes that show them are present, so a reserved opcode fails after
/// one byte. The declared payload length is only reported, never used to allocate.
///
/// ```
/// use rfc6455::frame::{decode_header, Opcode, Status};
/// // RFC 6455 §5.7: a single-frame unmasked text message containing "Hello".
/// let bytes = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
/// let Status::Complete((header, len)) = decode_header(&bytes).unwrap() else { panic!() };
/// assert_eq!((header.opcode, header.fin, header.payload_len, len), (Opcode::Text, true, 5, 2));
/// ```
pub fn decode_header(buf: &[u8]) -> Result<Status<(FrameHeader, usize)>, ProtocolError> {
    let Some(&first) = buf.first() else {
        return Ok(Status::Partial);
    };
    let opcode_bits = first & 0x0F;
    let Some(opcode) = Opcode::from_u8(opcode_bits) else {
        //= https://www.rfc-editor.org/rfc/rfc6455#section-5.2
        //# If an unknown
        //# opcode is received, the receiving endpoint MUST _Fail the
        //# WebSocket Connection_.
        return Err(ProtocolError::ReservedOpcode(opcode_bits));
    };
    let fin = first & 0x80 != 0;
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5
    //# All control frames MUST have a payload length of 125 bytes or less
    //# and MUST NOT be fragmented.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.4
    //# Control frames themselves MUST NOT be
    //# fragmented.
    if opcode.is_control() && !fin {
        return Err(ProtocolError::FragmentedControlFrame);
    }
    let Some(&second) = buf.get(1) else {
        return Ok(Status::Partial);
    };
    let masked = second & 0x80 != 0;
    let len7 = second & 0x7F;
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5
    //# All control frames MUST have a payload length of 125 bytes or less
    //# and MUST NOT be fragmented.
    if opcode.is_control() && len7 as usize > MAX_CONTROL_PAYLOAD {
        return Err(ProtocolError::ControlFrameTooLong(len7));
    }
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.2
    //# The length of the "Payload data", in bytes: if 0-125, that is the
    //# payload length.  If 126, the following 2 bytes interpreted as a
    //# 16-bit unsigned integer are the payload length.  If 127, the
    //# following 8 bytes interpreted as a 64-bit unsigned integer (the
    //# most significant bit MUST be 0) are the payload length.  Multibyte
    //# length quantities are expressed in network byte order.
    let (payload_len, mut pos) = match len7 {
        126 => {
            let Some(bytes) = buf.get(2..4) else {
                return Ok(Status::Partial);
            };
            let len = u16::from_be_bytes([bytes[0], bytes[1]]) as u64;
            //= https://www.rfc-editor.org/rfc/rfc6455#section-5.2
            //= type=exception
            //= reason=The rule binds the sender (encode_header follows it); the RFC does not
            //= reason=say what a receiver does with a longer form. We fail the connection (1002)
            //= reason=rather than accept two encodings of one length.
            //# Note that
            //# in all cases, the minimal number of bytes MUST be used to encode
            //# the length, for example, the length of a 124-byte-long string
            //# can't be encoded as the sequence 126, 0, 124.
            if len < 126 {
                return Err(ProtocolError::NonMinimalLength);
            }
            (len, 4)
        }
        127 => {
            let Some(bytes) = buf.get(2..10) else {
                return Ok(Status::Partial);
            };
            let mut be = [0u8; 8];
            be.copy_from_slice(bytes);
            let len = u64::from_be_bytes(be);
            //= https://www.rfc-editor.org/rfc/rfc6455#section-5.2
            //# If 127, the
            //# following 8 bytes interpreted as a 64-bit unsigned integer (the
            //# most significant bit MUST be 0) are the payload length.
            if len >> 63 != 0 {
                return Err(ProtocolError::LengthMsbSet);
            }
            //= https://www.rfc-editor.org/rfc/rfc6455#section-5.2
            //= type=exception
            //= reason=The rule binds the sender (encode_header follows it); the RFC does not
            //= reason=say what a receiver does with a longer form. We fail the connection (1002)
            //= reason=rather than accept two encodings of one length.
            //# Note that
            //# in all cases, the minimal number of bytes MUST be used to encode
            //# the length, for example, the length of a 124-byte-long string
            //# can't be encoded as the sequence 126, 0, 124.
            if len <= u16::MAX as u64 {
                return Err(ProtocolError::NonMinimalLength);
            }
            (len, 10)
        }
        short => (short as u64, 2),
    };
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.2
    //# This field is
    //# present if the mask bit is set to 1 and is absent if the mask bit
    //# is set to 0.
    let mask = if masked {
        let Some(bytes) = buf.get(pos..pos + 4) else {
            return Ok(Status::Partial);
        };
        pos += 4;
        Some([bytes[0], bytes[1], bytes[2], bytes[3]])
    } else {
        None
    };
    let header = FrameHeader {
        fin,
        rsv1: first & 0x40 != 0,
        rsv2: first & 0x20 != 0,
        rsv3: first & 0x10 != 0,
        opcode,
        mask,
        payload_len,
    };
    Ok(Status::Complete((header, pos)))
}

/// Whether a frame whose first byte is `first` is a data frame (text, binary or continuation)
/// with FIN clear: a fragment that is not the last of its message (§5.4).
pub fn is_non_final_data_frame(first: u8) -> bool {
    first & 0x80 == 0 && matches!(first & 0x0F, 0x0..=0x2)
}

/// The first byte of a frame: FIN, the three reserved bits and the opcode (§5.2).
#[inline(always)]
fn first_byte(header: &FrameHeader) -> u8 {
    (header.fin as u8) << 7
        | (header.rsv1 as u8) << 6
        | (header.rsv2 as u8) << 5
        | (header.rsv3 as u8) << 4
        | header.opcode.as_u8()
}

/// Encodes `header` into `out` with the minimal length form and returns how many bytes it used.
///
/// A server sets `mask: None` (RFC 6455 §5.1); a client sets a
/// fresh key and masks the payload with [`apply_mask`](crate::mask::apply_mask).
pub fn encode_header(header: &FrameHeader, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
    out[0] = first_byte(header);
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.3
    //# A masked frame MUST have the field frame-masked set to 1, as defined
    //# in Section 5.2.
    let mask_bit = if header.mask.is_some() { 0x80 } else { 0 };
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.2
    //# Note that
    //# in all cases, the minimal number of bytes MUST be used to encode
    //# the length, for example, the length of a 124-byte-long string
    //# can't be encoded as the sequence 126, 0, 124.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.2
    //# Multibyte
    //# length quantities are expressed in network byte order.
    let mut pos = match header.payload_len {
        len @ 0..=125 => {
            out[1] = mask_bit | len as u8;
            2
        }
        len @ 126..=0xFFFF => {
            out[1] = mask_bit | 126;
            out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            4
        }
        len => {
            out[1] = mask_bit | 127;
            out[2..10].copy_from_slice(&len.to_be_bytes());
            10
        }
    };
    if let Some(key) = header.mask {
        out[pos..pos + 4].copy_from_slice(&key);
        pos += 4;
    }
    pos
}

/// Appends a whole frame to `out`: the header, then the payload, masked with the header's key
/// when it has one (§5.3). This is the one encoder for every frame this crate sends.
///
/// ```
/// use rfc6455::frame::{encode_frame, FrameHeader, Opcode};
/// // RFC 6455 §5.7: a single-frame masked text message containing "Hello".
/// let header = FrameHeader::new(Opcode::Text, 5).masked([0x37, 0xfa, 0x21, 0x3d]);
/// let mut out = Vec::new();
/// encode_frame(&header, b"Hello", &mut out);
/// assert_eq!(out, [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
/// ```
#[inline(always)]
pub fn encode_frame(header: &FrameHeader, payload: &[u8], out: &mut Vec<u8>) {
    debug_assert_eq!(header.payload_len, payload.len() as u64);
    // The most frequent frame, a server's short one, is two header bytes and the payload:
    // written here, where the caller's code can absorb it, and any other frame out of line.
    match header.payload_len {
        len @ 0..=125 if header.mask.is_none() => {
            out.reserve(2 + payload.len());
            out.extend_from_slice(&[first_byte(header), len as u8]);
            out.extend_from_slice(payload);
        }
        _ => encode_any_frame(header, payload, out),
    }
}

/// [`encode_frame`] for any header: the length in its minimal form, and the payload masked.
#[inline(never)]
fn encode_any_frame(header: &FrameHeader, payload: &[u8], out: &mut Vec<u8>) {
    let mut buf = [0u8; MAX_HEADER_LEN];
    let n = encode_header(header, &mut buf);
    // The whole header buffer is copied and the unused end cut off again: a copy of a fixed
    // length is a few stores, where one of `n` bytes would be a call to `memcpy`.
    out.reserve(MAX_HEADER_LEN + payload.len());
    let start = out.len() + n;
    out.extend_from_slice(&buf);
    out.truncate(start);
    out.extend_from_slice(payload);
    if let Some(key) = header.mask {
        crate::mask::apply_mask(&mut out[start..], key, 0);
    }
}

impl FrameHeader {
    /// The header of a final frame (FIN set) with `opcode` and `payload_len` bytes of payload,
    /// no reserved bits and no mask: the usual frame, adjusted with the methods below.
    pub fn new(opcode: Opcode, payload_len: usize) -> Self {
        FrameHeader {
            fin: true,
            rsv1: false,
            rsv2: false,
            rsv3: false,
            opcode,
            mask: None,
            payload_len: payload_len as u64,
        }
    }

    /// With the FIN bit as given (clear for every frame of a fragmented message but the last).
    pub fn with_fin(mut self, fin: bool) -> Self {
        self.fin = fin;
        self
    }

    /// With RSV1 as given (set on the first frame of a compressed message, RFC 7692 §6).
    pub fn with_rsv1(mut self, rsv1: bool) -> Self {
        self.rsv1 = rsv1;
        self
    }

    /// Masked with `key` (a client's frame, §5.3).
    pub fn masked(mut self, key: [u8; 4]) -> Self {
        self.mask = Some(key);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(opcode: Opcode, fin: bool, mask: Option<[u8; 4]>, len: u64) -> FrameHeader {
        FrameHeader {
            fin,
            rsv1: false,
            rsv2: false,
            rsv3: false,
            opcode,
            mask,
            payload_len: len,
        }
    }

    fn round_trip(h: FrameHeader) {
        let mut buf = [0u8; MAX_HEADER_LEN];
        let n = encode_header(&h, &mut buf);
        assert_eq!(decode_header(&buf[..n]), Ok(Status::Complete((h, n))));
        for cut in 0..n {
            assert_eq!(
                decode_header(&buf[..cut]),
                Ok(Status::Partial),
                "prefix {cut} of {h:?}"
            );
        }
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.2
    //= type=test
    //# Note that
    //# in all cases, the minimal number of bytes MUST be used to encode
    //# the length, for example, the length of a 124-byte-long string
    //# can't be encoded as the sequence 126, 0, 124.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.2
    //= type=test
    //# The length of the "Payload data", in bytes: if 0-125, that is the
    //# payload length.  If 126, the following 2 bytes interpreted as a
    //# 16-bit unsigned integer are the payload length.  If 127, the
    //# following 8 bytes interpreted as a 64-bit unsigned integer (the
    //# most significant bit MUST be 0) are the payload length.  Multibyte
    //# length quantities are expressed in network byte order.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.3
    //= type=test
    //# A masked frame MUST have the field frame-masked set to 1, as defined
    //# in Section 5.2.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.2
    //= type=test
    //# This field is
    //# present if the mask bit is set to 1 and is absent if the mask bit
    //# is set to 0.
    #[test]
    fn round_trips_every_length_form_and_role() {
        for len in [
            0,
            1,
            125,
            126,
            127,
            0xFFFF,
            0x1_0000,
            16 << 20,
            (1 << 63) - 1,
        ] {
            for mask in [None, Some([1, 2, 3, 4])] {
                round_trip(header(Opcode::Binary, true, mask, len));
                round_trip(header(Opcode::Continuation, false, mask, len));
            }
        }
        for opcode in [Opcode::Close, Opcode::Ping, Opcode::Pong] {
            round_trip(header(opcode, true, None, 125));
        }
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.7
    //= type=test
    //# 0x81 0x85 0x37 0xfa 0x21 0x3d 0x7f 0x9f 0x4d 0x51 0x58
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.2
    //= type=test
    //# This field is
    //# present if the mask bit is set to 1 and is absent if the mask bit
    //# is set to 0.
    #[test]
    fn rfc_5_7_masked_hello_header() {
        let bytes = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d];
        let expected = header(Opcode::Text, true, Some([0x37, 0xfa, 0x21, 0x3d]), 5);
        assert_eq!(decode_header(&bytes), Ok(Status::Complete((expected, 6))));
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.7
    //= type=test
    //# 0x82 0x7F 0x0000000000010000 [65536 bytes of binary data]
    #[test]
    fn rfc_5_7_64bit_length_header() {
        let bytes = [0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0];
        let expected = header(Opcode::Binary, true, None, 65536);
        assert_eq!(decode_header(&bytes), Ok(Status::Complete((expected, 10))));
    }

    #[test]
    fn partial_on_empty_input() {
        assert_eq!(decode_header(&[]), Ok(Status::Partial));
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.2
    //= type=test
    //# This field is
    //# present if the mask bit is set to 1 and is absent if the mask bit
    //# is set to 0.
    #[test]
    fn partial_when_mask_key_missing() {
        assert_eq!(
            decode_header(&[0x81, 0x85, 0x37, 0xfa, 0x21]),
            Ok(Status::Partial)
        );
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.2
    //= type=test
    //# If an unknown
    //# opcode is received, the receiving endpoint MUST _Fail the
    //# WebSocket Connection_.
    #[test]
    fn rejects_reserved_opcodes_after_one_byte() {
        for op in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_eq!(
                decode_header(&[0x80 | op]),
                Err(ProtocolError::ReservedOpcode(op))
            );
        }
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5
    //= type=test
    //# All control frames MUST have a payload length of 125 bytes or less
    //# and MUST NOT be fragmented.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.4
    //= type=test
    //# Control frames themselves MUST NOT be
    //# fragmented.
    #[test]
    fn rejects_fragmented_control_frame() {
        assert_eq!(
            decode_header(&[0x09]),
            Err(ProtocolError::FragmentedControlFrame)
        );
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5
    //= type=test
    //# All control frames MUST have a payload length of 125 bytes or less
    //# and MUST NOT be fragmented.
    #[test]
    fn rejects_control_frame_over_125_from_7_bit_length() {
        assert_eq!(
            decode_header(&[0x89, 126]),
            Err(ProtocolError::ControlFrameTooLong(126))
        );
        assert_eq!(
            decode_header(&[0x88, 0xFF]),
            Err(ProtocolError::ControlFrameTooLong(127))
        );
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.2
    //= type=test
    //# If 127, the
    //# following 8 bytes interpreted as a 64-bit unsigned integer (the
    //# most significant bit MUST be 0) are the payload length.
    #[test]
    fn rejects_length_msb_set() {
        let bytes = [0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(decode_header(&bytes), Err(ProtocolError::LengthMsbSet));
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.2
    //= type=test
    //# Note that
    //# in all cases, the minimal number of bytes MUST be used to encode
    //# the length, for example, the length of a 124-byte-long string
    //# can't be encoded as the sequence 126, 0, 124.
    #[test]
    fn rejects_non_minimal_lengths() {
        assert_eq!(
            decode_header(&[0x82, 126, 0, 125]),
            Err(ProtocolError::NonMinimalLength)
        );
        let bytes = [0x82, 127, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF];
        assert_eq!(decode_header(&bytes), Err(ProtocolError::NonMinimalLength));
    }

    #[test]
    fn reads_rsv_bits() {
        let Ok(Status::Complete((h, _))) = decode_header(&[0xF2, 0]) else {
            panic!()
        };
        assert!(h.rsv1 && h.rsv2 && h.rsv3);
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.1
    //= type=test
    //# A server MUST NOT mask any frames that it sends to
    //# the client.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.7
    //= type=test
    //# 0x81 0x05 0x48 0x65 0x6c 0x6c 0x6f (contains "Hello")
    #[test]
    fn encodes_each_rsv_bit_in_its_own_position() {
        for (rsv, first) in [
            ([true, false, false], 0xC2),
            ([false, true, false], 0xA2),
            ([false, false, true], 0x92),
        ] {
            let h = FrameHeader {
                rsv1: rsv[0],
                rsv2: rsv[1],
                rsv3: rsv[2],
                ..header(Opcode::Binary, true, None, 0)
            };
            let mut buf = [0u8; MAX_HEADER_LEN];
            assert_eq!(encode_header(&h, &mut buf), 2);
            assert_eq!(buf[..2], [first, 0], "{rsv:?}");
        }
    }

    #[test]
    fn round_trips_every_combination_of_rsv_bits() {
        for bits in 0..8u8 {
            for (opcode, fin) in [(Opcode::Text, true), (Opcode::Continuation, false)] {
                round_trip(FrameHeader {
                    rsv1: bits & 4 != 0,
                    rsv2: bits & 2 != 0,
                    rsv3: bits & 1 != 0,
                    ..header(opcode, fin, Some([5, 6, 7, 8]), 200)
                });
            }
        }
    }

    /// `encode_frame` writes a short unmasked frame by itself and any other through the header
    /// encoder: both give the header, then the payload (masked when the header has a key).
    #[test]
    fn encode_frame_writes_the_header_then_the_payload_at_every_length_form() {
        for len in [0, 1, 125, 126, 127, 0xFFFF, 0x1_0000] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            for mask in [None, Some([1, 2, 3, 4])] {
                for (opcode, rsv1) in [(Opcode::Text, false), (Opcode::Binary, true)] {
                    let h = FrameHeader {
                        rsv1,
                        ..header(opcode, true, mask, len as u64)
                    };
                    let mut expected = [0u8; MAX_HEADER_LEN];
                    let n = encode_header(&h, &mut expected);
                    let mut expected = expected[..n].to_vec();
                    let mut body = payload.clone();
                    if let Some(key) = mask {
                        crate::mask::apply_mask(&mut body, key, 0);
                    }
                    expected.extend_from_slice(&body);
                    let mut out = vec![0xEE];
                    encode_frame(&h, &payload, &mut out);
                    assert_eq!(out[0], 0xEE, "what was in the buffer stays");
                    assert_eq!(out[1..], expected[..], "{len} {mask:?} {opcode:?}");
                }
            }
        }
    }

    #[test]
    fn encodes_unmasked_frame() {
        let mut out = Vec::new();
        encode_frame(&FrameHeader::new(Opcode::Text, 5), b"Hello", &mut out);
        assert_eq!(out, [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    }
}
