//! RFC 6455 §5.5.1 and §7.4: close status codes and the close frame payload.
//!
//! <https://www.rfc-editor.org/rfc/rfc6455#section-7.4>

use crate::error::ProtocolError;
use crate::frame::MAX_CONTROL_PAYLOAD;

/// A close status code (RFC 6455 §7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: normal closure.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: protocol error.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1005: no status code was present. Never sent on the wire.
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: the connection closed without a close frame. Never sent on the wire.
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: data inconsistent with the message type (invalid UTF-8 in text).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: a message that violates the endpoint's policy.
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: a message too big to process.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: the client expected an extension the server did not negotiate.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-7.4.1
    //= type=exception
    //= reason=The library never sends 1010: its only extension, permessage-deflate, is optional, and
    //= reason=a client whose offer the server declines opens without it. An application that needs an
    //= reason=extension and closes with this code writes the list in the reason it passes to close.
    //# are needed SHOULD appear in the /reason/ part of the Close frame.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: the server hit an unexpected condition.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// 1012: the service is restarting (IANA registry).
    pub const SERVICE_RESTART: CloseCode = CloseCode(1012);
    /// 1013: try again later (IANA registry).
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);

    /// Whether an endpoint may send this code in a close frame.
    ///
    /// RFC 6455 §7.4.1 defines 1000–1003 and 1007–1011 and reserves 1004, 1005, 1006 and 1015;
    /// 1012–1014 are registered with IANA (§11.7). §7.4.2 divides the rest into ranges.
    //= https://www.rfc-editor.org/rfc/rfc6455#section-7.4.1
    //# Endpoints MAY use the following pre-defined status codes when sending
    //# a Close frame.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-7.4.1
    //= type=exception
    //= reason=The rule binds the sender; we also fail a peer that sends this code
    //= reason=(1002), as Autobahn|Testsuite's 7.9 cases expect.
    //# 1005 is a reserved value and MUST NOT be set as a status code in a
    //# Close control frame by an endpoint.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-7.4.1
    //= type=exception
    //= reason=The rule binds the sender; we also fail a peer that sends this code
    //= reason=(1002), as Autobahn|Testsuite's 7.9 cases expect.
    //# 1006 is a reserved value and MUST NOT be set as a status code in a
    //# Close control frame by an endpoint.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-7.4.1
    //= type=exception
    //= reason=The rule binds the sender; we also fail a peer that sends this code
    //= reason=(1002), as Autobahn|Testsuite's 7.9 cases expect.
    //# 1015 is a reserved value and MUST NOT be set as a status code in a
    //# Close control frame by an endpoint.
    //
    // The send path checks too: `Connection::close` refuses a code that fails this test.
    //= https://www.rfc-editor.org/rfc/rfc6455#section-7.4.1
    //= type=exception
    //= reason=The RFC leaves open what a receiver does with an unused or reserved
    //= reason=code; we fail the connection (1002). 1012-1014 pass: IANA registered them since.
    //# Reserved.  The specific meaning might be defined in the future.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-7.4.2
    //= type=exception
    //= reason=The RFC leaves open what a receiver does with an unused or reserved
    //= reason=code; we fail the connection (1002). 1012-1014 pass: IANA registered them since.
    //# Status codes in the range 0-999 are not used.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-7.4.2
    //= type=exception
    //= reason=The RFC leaves open what a receiver does with an unused or reserved
    //= reason=code; we fail the connection (1002). 1012-1014 pass: IANA registered them since.
    //# Status codes in the range 1000-2999 are reserved for definition by
    //# this protocol, its future revisions, and extensions specified in a
    //# permanent and readily available public specification.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-7.4.2
    //# Status codes in the range 3000-3999 are reserved for use by
    //# libraries, frameworks, and applications.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-7.4.2
    //# Status codes in the range 4000-4999 are reserved for private use
    //# and thus can't be registered.
    pub fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

/// The content of a close frame (RFC 6455 §5.5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseFrame<'a> {
    /// The status code.
    pub code: CloseCode,
    /// The reason, valid UTF-8, possibly empty.
    pub reason: &'a str,
}

/// The most bytes a close reason can have: the control payload limit less the 2-byte code.
pub const MAX_CLOSE_REASON: usize = MAX_CONTROL_PAYLOAD - 2;

/// Parses a close frame's (unmasked) payload (RFC 6455 §5.5.1): `None` for an empty payload, which
/// carries no code; otherwise the code, checked with [`CloseCode::is_valid_on_wire`], and the
/// reason, which must be valid UTF-8.
pub fn parse_close_payload(payload: &[u8]) -> Result<Option<CloseFrame<'_>>, ProtocolError> {
    match payload {
        //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5.1
        //# The Close frame MAY contain a body (the "Application data" portion of
        //# the frame) that indicates a reason for closing, such as an endpoint
        //# shutting down, an endpoint having received a frame too large, or an
        //# endpoint having received a frame that does not conform to the format
        //# expected by the endpoint.
        [] => Ok(None),
        //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5.1
        //# If there is a body, the first two bytes of
        //# the body MUST be a 2-byte unsigned integer (in network byte order)
        //# representing a status code with value /code/ defined in Section 7.4.
        [_] => Err(ProtocolError::CloseFrameTooShort),
        [hi, lo, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
            if !code.is_valid_on_wire() {
                return Err(ProtocolError::InvalidCloseCode(code.0));
            }
            //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5.1
            //# Following the 2-byte integer, the body MAY contain UTF-8-encoded data
            //# with value /reason/, the interpretation of which is not defined by
            //# this specification.
            //
            //= https://www.rfc-editor.org/rfc/rfc6455#section-8.1
            //# When an endpoint is to interpret a byte stream as UTF-8 but finds
            //# that the byte stream is not, in fact, a valid UTF-8 stream, that
            //# endpoint MUST _Fail the WebSocket Connection_.
            let reason = std::str::from_utf8(reason).map_err(|_| ProtocolError::InvalidUtf8)?;
            Ok(Some(CloseFrame { code, reason }))
        }
    }
}

/// Writes a close payload (code, then as much of `reason` as fits in a control frame, cut at a
/// character boundary) into `out` and returns its length.
pub fn encode_close_payload(
    code: CloseCode,
    reason: &str,
    out: &mut [u8; MAX_CONTROL_PAYLOAD],
) -> usize {
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5
    //# All control frames MUST have a payload length of 125 bytes or less
    //# and MUST NOT be fragmented.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5.1
    //# Following the 2-byte integer, the body MAY contain UTF-8-encoded data
    //# with value /reason/, the interpretation of which is not defined by
    //# this specification.
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5.1
    //# If there is a body, the first two bytes of
    //# the body MUST be a 2-byte unsigned integer (in network byte order)
    //# representing a status code with value /code/ defined in Section 7.4.
    out[..2].copy_from_slice(&code.0.to_be_bytes());
    out[2..2 + end].copy_from_slice(&reason.as_bytes()[..end]);
    2 + end
}

#[cfg(test)]
mod tests {
    use super::*;

    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5.1
    //= type=test
    //# The Close frame MAY contain a body (the "Application data" portion of
    //# the frame) that indicates a reason for closing, such as an endpoint
    //# shutting down, an endpoint having received a frame too large, or an
    //# endpoint having received a frame that does not conform to the format
    //# expected by the endpoint.
    #[test]
    fn empty_payload_has_no_code() {
        assert_eq!(parse_close_payload(&[]), Ok(None));
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5.1
    //= type=test
    //# If there is a body, the first two bytes of
    //# the body MUST be a 2-byte unsigned integer (in network byte order)
    //# representing a status code with value /code/ defined in Section 7.4.
    #[test]
    fn one_byte_payload_is_too_short() {
        assert_eq!(
            parse_close_payload(&[3]),
            Err(ProtocolError::CloseFrameTooShort)
        );
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5.1
    //= type=test
    //# If there is a body, the first two bytes of
    //# the body MUST be a 2-byte unsigned integer (in network byte order)
    //# representing a status code with value /code/ defined in Section 7.4.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-7.4.1
    //= type=test
    //# Endpoints MAY use the following pre-defined status codes when sending
    //# a Close frame.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-7.4.1
    //= type=test
    //# 1005 is a reserved value and MUST NOT be set as a status code in a
    //# Close control frame by an endpoint.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-7.4.1
    //= type=test
    //# 1006 is a reserved value and MUST NOT be set as a status code in a
    //# Close control frame by an endpoint.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-7.4.1
    //= type=test
    //# 1015 is a reserved value and MUST NOT be set as a status code in a
    //# Close control frame by an endpoint.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-7.4.1
    //= type=test
    //# Reserved.  The specific meaning might be defined in the future.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-7.4.2
    //= type=test
    //# Status codes in the range 0-999 are not used.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-7.4.2
    //= type=test
    //# Status codes in the range 1000-2999 are reserved for definition by
    //# this protocol, its future revisions, and extensions specified in a
    //# permanent and readily available public specification.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-7.4.2
    //= type=test
    //# Status codes in the range 3000-3999 are reserved for use by
    //# libraries, frameworks, and applications.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-7.4.2
    //= type=test
    //# Status codes in the range 4000-4999 are reserved for private use
    //# and thus can't be registered.
    #[test]
    fn accepts_exactly_the_wire_codes() {
        for code in 0..=u16::MAX {
            let payload = code.to_be_bytes();
            let valid = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            match parse_close_payload(&payload) {
                Ok(Some(frame)) => {
                    assert!(valid && frame.code.0 == code && frame.reason.is_empty())
                }
                Err(ProtocolError::InvalidCloseCode(c)) => assert!(!valid && c == code),
                other => panic!("{code}: {other:?}"),
            }
        }
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5.1
    //= type=test
    //# Following the 2-byte integer, the body MAY contain UTF-8-encoded data
    //# with value /reason/, the interpretation of which is not defined by
    //# this specification.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-8.1
    //= type=test
    //# When an endpoint is to interpret a byte stream as UTF-8 but finds
    //# that the byte stream is not, in fact, a valid UTF-8 stream, that
    //# endpoint MUST _Fail the WebSocket Connection_.
    #[test]
    fn reason_must_be_utf8() {
        assert_eq!(
            parse_close_payload(b"\x03\xe8\xff"),
            Err(ProtocolError::InvalidUtf8)
        );
        let frame = parse_close_payload(b"\x03\xe8bye").unwrap().unwrap();
        assert_eq!(
            frame,
            CloseFrame {
                code: CloseCode::NORMAL,
                reason: "bye"
            }
        );
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5
    //= type=test
    //# All control frames MUST have a payload length of 125 bytes or less
    //# and MUST NOT be fragmented.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5.1
    //= type=test
    //# Following the 2-byte integer, the body MAY contain UTF-8-encoded data
    //# with value /reason/, the interpretation of which is not defined by
    //# this specification.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5.1
    //= type=test
    //# If there is a body, the first two bytes of
    //# the body MUST be a 2-byte unsigned integer (in network byte order)
    //# representing a status code with value /code/ defined in Section 7.4.
    #[test]
    fn encode_truncates_reason_at_char_boundary() {
        let reason = "é".repeat(100); // 200 bytes
        let mut out = [0u8; MAX_CONTROL_PAYLOAD];
        let n = encode_close_payload(CloseCode::GOING_AWAY, &reason, &mut out);
        assert!(n <= MAX_CONTROL_PAYLOAD);
        let frame = parse_close_payload(&out[..n]).unwrap().unwrap();
        assert_eq!(frame.code, CloseCode::GOING_AWAY);
        assert_eq!(frame.reason.len(), 122);
    }
}
