//! How a WebSocket connection ended (RFC 6455 §7.1.4–§7.1.6), as reported to the application.
//!
//! <https://www.rfc-editor.org/rfc/rfc6455#section-7.1.5>

use crate::close::CloseCode;
use crate::error::ProtocolError;

/// How a connection that was open ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Closure {
    /// _The WebSocket Connection Close Code_ (§7.1.5): the status code of the Close frame the
    /// peer sent, [`CloseCode::NO_STATUS`] (1005) if its Close had none, and
    /// [`CloseCode::ABNORMAL`] (1006) if no Close frame was received.
    pub code: CloseCode,
    /// _The WebSocket Connection Close Reason_ (§7.1.6): the reason in the peer's Close frame,
    /// empty if there was none.
    pub reason: String,
    /// Who ended it, and how.
    pub cause: CloseCause,
}

/// Who ended a connection, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseCause {
    /// The peer sent its Close first and we answered: a clean close (§7.1.4).
    ClosedByPeer,
    /// We sent our Close (with this code) first and the peer answered: a clean close.
    ClosedByUs(CloseCode),
    /// We failed the connection (§7.1.7) because the peer broke this rule; our Close carried the
    /// error's code.
    Failed(ProtocolError),
    /// A deadline passed before the closing handshake completed.
    TimedOut(Deadline),
    /// The peer closed TCP (or it broke) before the closing handshake completed.
    TransportClosed,
    /// The IO shell dropped the connection for the reason given (a slow consumer, an IO error,
    /// the end of a graceful shutdown).
    Dropped(&'static str),
}

/// A deadline that ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Deadline {
    /// Nothing arrived for the pong timeout after a keepalive ping.
    Keepalive,
    /// The peer did not answer our Close within the close timeout.
    Close,
}

impl Closure {
    /// Whether the closing handshake completed: RFC 6455 §7.1.4 calls such a connection closed
    /// _cleanly_ (a browser's `CloseEvent.wasClean`).
    pub fn was_clean(&self) -> bool {
        matches!(
            self.cause,
            CloseCause::ClosedByPeer | CloseCause::ClosedByUs(_)
        )
    }

    /// A connection that ended without a Close frame from the peer: code 1006.
    pub(crate) fn abnormal(cause: CloseCause) -> Self {
        //= https://www.rfc-editor.org/rfc/rfc6455#section-7.1.5
        //# If _The WebSocket Connection is Closed_ and no Close control frame was received by the
        //# endpoint (such as could occur if the underlying transport connection
        //# is lost), _The WebSocket Connection Close Code_ is considered to be
        //# 1006.
        Closure {
            code: CloseCode::ABNORMAL,
            reason: String::new(),
            cause,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_only_when_the_closing_handshake_completed() {
        //= https://www.rfc-editor.org/rfc/rfc6455#section-7.1.4
        //# If the TCP connection was closed after the
        //# WebSocket closing handshake was completed, the WebSocket connection
        //# is said to have been closed _cleanly_.
        let closure = |cause| Closure {
            code: CloseCode::NORMAL,
            reason: String::new(),
            cause,
        };
        assert!(closure(CloseCause::ClosedByPeer).was_clean());
        assert!(closure(CloseCause::ClosedByUs(CloseCode::NORMAL)).was_clean());
        for cause in [
            CloseCause::Failed(ProtocolError::InvalidUtf8),
            CloseCause::TimedOut(Deadline::Close),
            CloseCause::TimedOut(Deadline::Keepalive),
            CloseCause::TransportClosed,
            CloseCause::Dropped("slow consumer"),
        ] {
            assert!(!closure(cause).was_clean(), "{cause:?}");
        }
    }

    #[test]
    fn without_a_close_frame_the_code_is_1006() {
        let closure = Closure::abnormal(CloseCause::TransportClosed);
        assert_eq!(closure.code, CloseCode::ABNORMAL);
        assert_eq!(closure.code.0, 1006);
        assert_eq!(closure.reason, "");
        assert_eq!(closure.cause, CloseCause::TransportClosed);
        assert!(!closure.was_clean());
    }
}
