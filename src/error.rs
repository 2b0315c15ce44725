//! The ways a peer can break the rules, each written once in a table with its RFC section, its
//! answer and its text: a bad frame stream ([`ProtocolError`], answered with a close code) and a
//! bad upgrade request ([`HandshakeError`], answered with an HTTP status).
//!
//! Each table is a macro invocation, so a new variant cannot be added without its section, its
//! answer and its text, and no answer falls into a default arm.

use crate::close::CloseCode;
use std::fmt;

/// Writes an error enum and its lookup methods from one table of
/// `Variant(fields) => answer, "section", "text";` rows.
macro_rules! error_table {
    (
        $(#[$enum_meta:meta])*
        pub enum $name:ident answered by $answer_fn:ident -> $answer_ty:ty {
            $(
                $(#[doc = $doc:literal])*
                $variant:ident $(($($tuple:ty),*))? $({ $($(#[doc = $field_doc:literal])* $field:ident: $field_ty:ty),* $(,)? })?
                    => $answer:expr, $section:literal, $text:literal;
            )*
        }
    ) => {
        $(#[$enum_meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum $name {
            $(
                $(#[doc = $doc])*
                $variant $(($($tuple),*))? $({ $($(#[doc = $field_doc])* $field: $field_ty),* })?,
            )*
        }

        impl $name {
            /// How this error is answered on the wire.
            pub fn $answer_fn(&self) -> $answer_ty {
                match self {
                    $(Self::$variant { .. } => $answer,)*
                }
            }

            /// The section of the specification that sets the rule (RFC 6455 unless it names
            /// another), or "limit" for a limit of ours.
            pub fn section(&self) -> &'static str {
                match self {
                    $(Self::$variant { .. } => $section,)*
                }
            }

            /// A short description, also sent to the peer (as a close reason or a response body).
            pub fn reason(&self) -> &'static str {
                match self {
                    $(Self::$variant { .. } => $text,)*
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.reason())
            }
        }

        impl std::error::Error for $name {}
    };
}

error_table! {
    /// A rule the peer broke after the handshake. Failing the connection
    /// (<https://www.rfc-editor.org/rfc/rfc6455#section-7.1.7>) sends [`close_code`](Self::close_code)
    /// with [`reason`](Self::reason) as the close reason.
    pub enum ProtocolError answered by close_code -> CloseCode {
        /// RSV1, RSV2 or RSV3 set without a negotiated extension that defines it.
        ReservedBitsSet => CloseCode::PROTOCOL_ERROR, "5.2", "reserved bits set";
        /// Opcode 0x3–0x7 or 0xB–0xF, reserved for future use.
        ReservedOpcode(u8) => CloseCode::PROTOCOL_ERROR, "5.2", "reserved opcode";
        /// A client sent a frame without a mask.
        UnmaskedClientFrame => CloseCode::PROTOCOL_ERROR, "5.1", "client frame not masked";
        /// A server sent a masked frame.
        MaskedServerFrame => CloseCode::PROTOCOL_ERROR, "5.1", "server frame masked";
        /// A control frame without the FIN bit.
        FragmentedControlFrame => CloseCode::PROTOCOL_ERROR, "5.5", "fragmented control frame";
        /// A control frame whose 7-bit payload length is over 125.
        ControlFrameTooLong(u8) => CloseCode::PROTOCOL_ERROR, "5.5", "control frame over 125 bytes";
        /// A 64-bit payload length with the most significant bit set.
        LengthMsbSet => CloseCode::PROTOCOL_ERROR, "5.2", "payload length MSB set";
        /// A payload length not encoded in the minimal number of bytes.
        NonMinimalLength => CloseCode::PROTOCOL_ERROR, "5.2", "payload length not minimal";
        /// A continuation frame with no fragmented message in progress.
        UnexpectedContinuation => CloseCode::PROTOCOL_ERROR, "5.4", "continuation without a message";
        /// A new text or binary frame while a fragmented message is in progress.
        ExpectedContinuation => CloseCode::PROTOCOL_ERROR, "5.4", "expected a continuation frame";
        /// A text message (or close reason) that is not valid UTF-8.
        InvalidUtf8 => CloseCode::INVALID_PAYLOAD, "8.1", "invalid UTF-8 in text";
        /// A close frame with a one-byte payload.
        CloseFrameTooShort => CloseCode::PROTOCOL_ERROR, "5.5.1", "close frame of one byte";
        /// A close frame carrying a status code that may not appear on the wire.
        InvalidCloseCode(u16) => CloseCode::PROTOCOL_ERROR, "7.4", "close code not allowed";
        /// A compressed message that is not a valid DEFLATE stream.
        InvalidCompressedData => CloseCode::INVALID_PAYLOAD, "RFC 7692 7.2.2", "invalid compressed data";
        /// A frame larger than `Limits::max_frame_size`.
        FrameTooBig {
            /// The length the frame header declared.
            len: u64,
            /// The configured limit.
            limit: u64,
        } => CloseCode::MESSAGE_TOO_BIG, "limit", "frame too big";
        /// A message larger than `Limits::max_message_size`.
        MessageTooBig {
            /// The message length known so far (bytes already received plus the frame declared).
            len: u64,
            /// The configured limit.
            limit: u64,
        } => CloseCode::MESSAGE_TOO_BIG, "limit", "message too big";
        /// A message split into more frames than `Limits::max_fragments`. Our choice of code:
        /// the message may be small, so "too big" would mislead; a flood of fragments is a
        /// policy violation.
        TooManyFragments {
            /// The configured limit.
            limit: u32,
        } => CloseCode::POLICY_VIOLATION, "limit", "too many fragments";
    }
}

error_table! {
    /// A reason to refuse an HTTP upgrade request (RFC 6455 §4.2.1, §4.2.2), answered with
    /// [`status`](Self::status) and [`reason`](Self::reason) as the body.
    pub enum HandshakeError answered by status -> u16 {
        /// The request head is larger than `Limits::max_head_size`.
        HeadTooLarge => 431, "limit", "request head too large";
        /// The request has more header fields than `Limits::max_headers`.
        TooManyHeaders => 431, "limit", "too many header fields";
        /// The bytes are not an HTTP/1.x request.
        Malformed => 400, "4.2.1", "malformed HTTP request";
        /// The method is not GET (405, with `Allow: GET`).
        MethodNotGet => 405, "4.2.1", "method is not GET";
        /// The request is not HTTP/1.1 or later.
        HttpVersion => 400, "4.2.1", "HTTP version is not 1.1 or later";
        /// No `Host` header, or several (RFC 9112 §3.2 for plain HTTP/1.1 requests too).
        MissingHost => 400, "4.2.1", "missing Host header";
        /// The `Host` is not one the server answers as (a DNS rebinding attempt, or a name that
        /// needs allowing).
        HostNotAllowed => 403, "4.2.1", "Host not allowed";
        /// No `Upgrade` header with the `websocket` token (426, with `Upgrade: websocket`).
        NotWebSocket => 426, "4.2.1", "not a WebSocket upgrade request";
        /// No `Connection` header with the `Upgrade` token.
        MissingConnectionUpgrade => 400, "4.2.1", "Connection header lacks the Upgrade token";
        /// No `Sec-WebSocket-Key`, several, or one that is not 16 bytes in base64.
        InvalidKey => 400, "4.2.1", "missing or invalid Sec-WebSocket-Key";
        /// `Sec-WebSocket-Version` missing or not 13 (426, with `Sec-WebSocket-Version: 13`).
        UnsupportedVersion => 426, "4.4", "Sec-WebSocket-Version is not 13";
        /// The `Origin` is not on the server's allow-list.
        OriginNotAllowed => 403, "10.2", "Origin not allowed";
        /// A `Sec-WebSocket-Extensions` value that does not match the ABNF.
        MalformedExtensions => 400, "9.1", "malformed Sec-WebSocket-Extensions";
    }
}

/// What a peer got wrong, as [`ServerConnection::handle_input`] reports it. The connection has
/// already queued its answer (the HTTP error or the Close) and is closing.
///
/// [`ServerConnection::handle_input`]: crate::server_connection::ServerConnection::handle_input
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A request that could not be accepted: answered with an HTTP error status.
    Handshake(HandshakeError),
    /// A frame stream that broke a rule: the connection was failed with a close code.
    Protocol(ProtocolError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Handshake(error) => write!(f, "handshake refused ({}): {error}", error.status()),
            Error::Protocol(error) => {
                write!(f, "connection failed ({}): {error}", error.close_code().0)
            }
        }
    }
}

impl std::error::Error for Error {}

/// Why an answer to a request could not be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AnswerError {
    /// No upgrade request is waiting for an answer.
    NoUpgradePending,
    /// No plain HTTP request is waiting for an answer.
    NoHttpRequestPending,
    /// The subprotocol is not one the client offered (RFC 6455 §4.2.2 item 5.4 requires it to
    /// be).
    ProtocolNotOffered,
}

impl fmt::Display for AnswerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AnswerError::NoUpgradePending => "no upgrade request is waiting for an answer",
            AnswerError::NoHttpRequestPending => "no HTTP request is waiting for an answer",
            AnswerError::ProtocolNotOffered => "the client did not offer that subprotocol",
        })
    }
}

impl std::error::Error for AnswerError {}

/// Why a frame could not be queued for sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The connection is not open: the handshake is not complete, or a Close was sent or
    /// received. RFC 6455 §5.5.1: "The application MUST NOT send any more data frames after
    /// sending a Close frame."
    NotOpen,
    /// §5.5: a control frame payload over 125 bytes.
    ControlPayloadTooLong(usize),
    /// §7.4: a close code no endpoint may send (1005, 1006 and 1015 are reserved for reporting
    /// a closure that had no code, and 0-999, 1004, 1016-2999 and 5000 up are not defined).
    InvalidCloseCode(u16),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::NotOpen => "the connection is not open",
            SendError::ControlPayloadTooLong(_) => "control frame payload over 125 bytes",
            SendError::InvalidCloseCode(_) => "a close code that may not be sent",
        })
    }
}

impl std::error::Error for SendError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::close::MAX_CLOSE_REASON;

    #[test]
    fn every_close_reason_fits_a_close_frame() {
        let errors = [
            ProtocolError::ReservedBitsSet,
            ProtocolError::ReservedOpcode(3),
            ProtocolError::InvalidUtf8,
            ProtocolError::TooManyFragments { limit: 1 },
            ProtocolError::FrameTooBig { len: 2, limit: 1 },
        ];
        for error in errors {
            assert!(error.reason().len() <= MAX_CLOSE_REASON, "{error:?}");
            assert!(error.close_code().is_valid_on_wire(), "{error:?}");
        }
    }

    #[test]
    fn codes_and_statuses_come_from_the_table() {
        assert_eq!(
            ProtocolError::InvalidUtf8.close_code(),
            CloseCode::INVALID_PAYLOAD
        );
        assert_eq!(
            ProtocolError::MessageTooBig { len: 2, limit: 1 }.close_code(),
            CloseCode::MESSAGE_TOO_BIG
        );
        assert_eq!(
            ProtocolError::TooManyFragments { limit: 1 }.close_code(),
            CloseCode::POLICY_VIOLATION
        );
        assert_eq!(
            ProtocolError::UnmaskedClientFrame.close_code(),
            CloseCode::PROTOCOL_ERROR
        );
        assert_eq!(ProtocolError::UnmaskedClientFrame.section(), "5.1");
        assert_eq!(HandshakeError::OriginNotAllowed.status(), 403);
        assert_eq!(HandshakeError::MethodNotGet.status(), 405);
        assert_eq!(HandshakeError::UnsupportedVersion.status(), 426);
        assert_eq!(HandshakeError::HeadTooLarge.status(), 431);
        assert_eq!(
            HandshakeError::InvalidKey.to_string(),
            "missing or invalid Sec-WebSocket-Key"
        );
    }
}
