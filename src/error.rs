//! The two ways a peer can break the rules: a bad frame stream ([`ProtocolError`], answered with a
//! close code) and a bad upgrade request ([`HandshakeError`], answered with an HTTP status).

use crate::close::CloseCode;
use std::fmt;

/// A rule of RFC 6455 that the peer broke after the handshake. Each variant knows the close code
/// that [failing the connection](https://www.rfc-editor.org/rfc/rfc6455#section-7.1.7) sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    /// §5.2: RSV1, RSV2 or RSV3 set without a negotiated extension that defines it.
    ReservedBitsSet,
    /// §5.2: opcode 0x3–0x7 or 0xB–0xF, reserved for future use.
    ReservedOpcode(u8),
    /// §5.1: a client sent a frame without a mask.
    UnmaskedClientFrame,
    /// §5.1: a server sent a masked frame.
    MaskedServerFrame,
    /// §5.5: a control frame without the FIN bit.
    FragmentedControlFrame,
    /// §5.5: a control frame whose 7-bit payload length is over 125.
    ControlFrameTooLong(u8),
    /// §5.2: a 64-bit payload length with the most significant bit set.
    LengthMsbSet,
    /// §5.2: a payload length not encoded in the minimal number of bytes.
    NonMinimalLength,
    /// §5.4: a continuation frame with no fragmented message in progress.
    UnexpectedContinuation,
    /// §5.4: a new text or binary frame while a fragmented message is in progress.
    ExpectedContinuation,
    /// §5.6, §8.1: a text message (or close reason) that is not valid UTF-8.
    InvalidUtf8,
    /// §5.5.1: a close frame with a one-byte payload.
    CloseFrameTooShort,
    /// §7.4: a close frame carrying a status code that may not appear on the wire.
    InvalidCloseCode(u16),
    /// RFC 7692 §7.2.2: a compressed message that is not a valid DEFLATE stream.
    InvalidCompressedData,
    /// Our limit: a frame larger than `Limits::max_frame_size`.
    FrameTooBig {
        /// The length the frame header declared.
        len: u64,
        /// The configured limit.
        limit: u64,
    },
    /// Our limit: a message larger than `Limits::max_message_size`.
    MessageTooBig {
        /// The message length known so far (bytes already received plus the frame declared).
        len: u64,
        /// The configured limit.
        limit: u64,
    },
    /// Our limit: a message split into more frames than `Limits::max_fragments`.
    TooManyFragments {
        /// The configured limit.
        limit: u32,
    },
}

impl ProtocolError {
    /// The close code sent when failing the connection for this error (RFC 6455 §7.4.1).
    pub fn close_code(&self) -> CloseCode {
        match self {
            ProtocolError::InvalidUtf8 | ProtocolError::InvalidCompressedData => {
                CloseCode::INVALID_PAYLOAD
            }
            ProtocolError::FrameTooBig { .. } | ProtocolError::MessageTooBig { .. } => {
                CloseCode::MESSAGE_TOO_BIG
            }
            // Our choice, not the RFC's: the message may be small, so "too big" would mislead;
            // a flood of fragments is a policy violation.
            ProtocolError::TooManyFragments { .. } => CloseCode::POLICY_VIOLATION,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }

    fn description(&self) -> &'static str {
        match self {
            ProtocolError::ReservedBitsSet => "reserved bits set without a negotiated extension",
            ProtocolError::ReservedOpcode(_) => "reserved opcode",
            ProtocolError::UnmaskedClientFrame => "client frame is not masked",
            ProtocolError::MaskedServerFrame => "server frame is masked",
            ProtocolError::FragmentedControlFrame => "control frame is fragmented",
            ProtocolError::ControlFrameTooLong(_) => "control frame payload over 125 bytes",
            ProtocolError::LengthMsbSet => "64-bit payload length has its most significant bit set",
            ProtocolError::NonMinimalLength => "payload length not minimally encoded",
            ProtocolError::UnexpectedContinuation => "continuation frame without a message",
            ProtocolError::ExpectedContinuation => "new data frame inside a fragmented message",
            ProtocolError::InvalidUtf8 => "invalid UTF-8 in text",
            ProtocolError::InvalidCompressedData => "invalid compressed data",
            ProtocolError::CloseFrameTooShort => "close frame payload of one byte",
            ProtocolError::InvalidCloseCode(_) => "close code not allowed on the wire",
            ProtocolError::FrameTooBig { .. } => "frame exceeds the frame size limit",
            ProtocolError::MessageTooBig { .. } => "message exceeds the message size limit",
            ProtocolError::TooManyFragments { .. } => "message exceeds the fragment count limit",
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

impl std::error::Error for ProtocolError {}

/// A reason to refuse an HTTP upgrade request (RFC 6455 §4.2.1, §4.2.2). Each variant knows the
/// HTTP status of the response that refuses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    /// The request head is larger than `Limits::max_head_size` (431).
    HeadTooLarge,
    /// The request has more header fields than `Limits::max_headers` (431).
    TooManyHeaders,
    /// The bytes are not an HTTP/1.x request (400).
    Malformed,
    /// §4.2.1 item 1: the method is not GET (405, with `Allow: GET`).
    MethodNotGet,
    /// §4.2.1 item 1: the request is not HTTP/1.1 or later (400).
    HttpVersion,
    /// §4.2.1 item 2: no `Host` header (400).
    MissingHost,
    /// §4.2.1 item 3: no `Upgrade` header with the `websocket` token (426): a plain HTTP request.
    NotWebSocket,
    /// §4.2.1 item 4: no `Connection` header with the `Upgrade` token (400).
    MissingConnectionUpgrade,
    /// §4.2.1 item 5: no `Sec-WebSocket-Key`, several, or one that is not 16 bytes in base64 (400).
    InvalidKey,
    /// §4.2.1 item 6: `Sec-WebSocket-Version` missing or not 13 (426, with
    /// `Sec-WebSocket-Version: 13`, §4.4).
    UnsupportedVersion,
    /// §4.2.2 item 4 / §10.2: the `Origin` is not on the server's allow-list (403).
    OriginNotAllowed,
    /// §9.1: a `Sec-WebSocket-Extensions` value that does not match the ABNF (400).
    MalformedExtensions,
}

impl HandshakeError {
    /// The HTTP status code that answers this error.
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::HeadTooLarge | HandshakeError::TooManyHeaders => 431,
            HandshakeError::MethodNotGet => 405,
            HandshakeError::NotWebSocket | HandshakeError::UnsupportedVersion => 426,
            HandshakeError::OriginNotAllowed => 403,
            HandshakeError::Malformed
            | HandshakeError::HttpVersion
            | HandshakeError::MissingHost
            | HandshakeError::MissingConnectionUpgrade
            | HandshakeError::InvalidKey
            | HandshakeError::MalformedExtensions => 400,
        }
    }

    fn description(&self) -> &'static str {
        match self {
            HandshakeError::HeadTooLarge => "request head too large",
            HandshakeError::TooManyHeaders => "too many header fields",
            HandshakeError::Malformed => "malformed HTTP request",
            HandshakeError::MethodNotGet => "method is not GET",
            HandshakeError::HttpVersion => "HTTP version is not 1.1 or later",
            HandshakeError::MissingHost => "missing Host header",
            HandshakeError::NotWebSocket => "not a WebSocket upgrade request",
            HandshakeError::MissingConnectionUpgrade => "Connection header lacks the Upgrade token",
            HandshakeError::InvalidKey => "missing or invalid Sec-WebSocket-Key",
            HandshakeError::UnsupportedVersion => "Sec-WebSocket-Version is not 13",
            HandshakeError::OriginNotAllowed => "Origin not allowed",
            HandshakeError::MalformedExtensions => "malformed Sec-WebSocket-Extensions",
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

impl std::error::Error for HandshakeError {}

/// Why a frame could not be queued for sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// §5.5.1: "After sending a Close frame, the endpoint MUST NOT send any more data frames"; and
    /// after a close is received, nothing but the reply is sent.
    NotOpen,
    /// §5.5: a control frame payload over 125 bytes.
    ControlPayloadTooLong(usize),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::NotOpen => "the connection is closing",
            SendError::ControlPayloadTooLong(_) => "control frame payload over 125 bytes",
        })
    }
}

impl std::error::Error for SendError {}
