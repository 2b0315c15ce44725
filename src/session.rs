//! What both roles do between the opening handshake and the end of the connection: the framing
//! machine, keepalive and its deadlines, the closing handshake's deadline, and how the
//! connection ended. [`ServerConnection`](crate::ServerConnection) and
//! [`ClientConnection`](crate::ClientConnection) each hold one while open and differ only in
//! what comes before (their side of the handshake) and after (who closes TCP first, §7.1.1).

use crate::batch::Batch;
use crate::close::{CloseCode, CloseFrame};
use crate::closure::{CloseCause, Closure, Deadline};
use crate::connection::{Connection, Endpoint, Event, Received, State};
use crate::deflate::SharedDeflate;
use crate::error::{ProtocolError, SendError};
use crate::limits::Limits;
use crate::outbox::Outbox;
use std::time::{Duration, Instant};

/// The deadlines of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timeouts {
    /// Time from the connection's start to the end of the opening handshake; zero disables the
    /// deadline.
    pub handshake: Duration,
    /// Silence after which the peer is pinged; zero disables keepalive.
    pub idle: Duration,
    /// Time after the keepalive ping with no input before the connection is dropped; zero
    /// means never.
    pub pong: Duration,
    /// Time to wait for the peer's Close after ours, and for its end of stream once the
    /// connection has ended.
    pub close: Duration,
}

/// The keepalive timer's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keepalive {
    /// Counting the idle time since the last input.
    Idle,
    /// A ping was sent; waiting for any input.
    AwaitingPong,
}

/// How an open connection ended, as one step of [`Session`] reports it.
#[derive(Debug)]
pub(crate) enum Ended {
    /// The closing handshake completed: both Close frames were exchanged.
    Cleanly(Closure),
    /// We failed the connection (§7.1.7): our Close is queued.
    Failed(Closure),
    /// A deadline passed: drop the transport.
    TimedOut(Closure),
}

/// An open WebSocket connection, at either end.
#[derive(Debug)]
pub(crate) struct Session<P> {
    pub connection: Connection<P>,
    keepalive: Keepalive,
    /// The code of the Close we sent, once we sent one.
    close_sent: Option<CloseCode>,
    /// When the current deadline started counting: the last input (idle), the keepalive ping
    /// (pong), or our Close (close).
    since: Instant,
}

/// What a received Close frame means for how the connection ended.
fn closure_of(frame: Option<CloseFrame<'_>>, close_sent: Option<CloseCode>) -> Closure {
    //= https://www.rfc-editor.org/rfc/rfc6455#section-7.1.5
    //# If this Close control frame contains no status code, _The WebSocket
    //# Connection Close Code_ is considered to be 1005.
    Closure {
        code: frame.map_or(CloseCode::NO_STATUS, |f| f.code),
        reason: frame.map_or_else(String::new, |f| f.reason.to_owned()),
        cause: close_sent.map_or(CloseCause::ClosedByPeer, CloseCause::ClosedByUs),
    }
}

impl<P: Endpoint> Session<P> {
    /// A connection that opened at `now`.
    pub fn new(connection: Connection<P>, now: Instant) -> Self {
        Session {
            connection,
            keepalive: Keepalive::Idle,
            close_sent: None,
            since: now,
        }
    }

    /// Whether data may still be sent.
    pub fn is_open(&self) -> bool {
        self.connection.state() == State::Open
    }

    /// Takes input: at most one frame, as [`Connection::receive`] does. [`ended_by`](Self::ended_by)
    /// says whether that ended the connection.
    #[inline(always)]
    pub fn receive<'a>(
        &mut self,
        input: &'a mut [u8],
        now: Instant,
        out: &mut Outbox,
        limits: &Limits,
        shared: &mut SharedDeflate,
    ) -> Result<Received<Event<'a>>, ProtocolError> {
        self.note_input(input.len(), now);
        self.connection.receive(input, out, limits, shared)
    }

    /// Takes the whole messages at the front of the input, as [`Connection::receive_batch`]
    /// does. A batch never ends the connection.
    #[inline(always)]
    pub fn receive_batch(
        &mut self,
        input: &mut [u8],
        now: Instant,
        limits: &Limits,
        payload_budget: usize,
        batch: &mut Batch,
    ) {
        self.note_input(input.len(), now);
        self.connection
            .receive_batch(input, limits, payload_budget, batch)
    }

    /// Whether a message received now goes to the application
    /// ([`Connection::delivers_messages`]).
    pub fn delivers_messages(&self) -> bool {
        self.connection.delivers_messages()
    }

    /// Room for the next payload bytes to be read in place ([`Connection::payload_room`]).
    pub fn payload_room(&mut self) -> Option<&mut [u8]> {
        self.connection.payload_room()
    }

    /// Takes `len` bytes read into [`payload_room`](Self::payload_room), as
    /// [`receive`](Self::receive) takes input.
    pub fn receive_in_place(
        &mut self,
        len: usize,
        now: Instant,
        out: &mut Outbox,
        limits: &Limits,
        shared: &mut SharedDeflate,
    ) -> Result<Received<Event<'static>>, ProtocolError> {
        self.note_input(len, now);
        self.connection.receive_in_place(len, out, limits, shared)
    }

    fn note_input(&mut self, len: usize, now: Instant) {
        if self.is_open() && len > 0 {
            // Any input shows the peer is alive: the idle time counts again from now.
            self.keepalive = Keepalive::Idle;
            self.since = now;
        }
    }

    /// What received input did to the connection: a failure, or a Close received, ends it. Looks
    /// at the result in place (the caller keeps it), so the frame's event is not moved again.
    pub fn ended_by(&self, received: &Result<Received<Event<'_>>, ProtocolError>) -> Option<Ended> {
        match received {
            Err(error) => Some(Ended::Failed(Closure::abnormal(CloseCause::Failed(*error)))),
            Ok(Received {
                event: Some(Event::Close(frame)),
                ..
            }) => Some(Ended::Cleanly(closure_of(*frame, self.close_sent))),
            Ok(_) => None,
        }
    }

    /// Starts the closing handshake (§7.1.2); the close deadline counts from `now`.
    pub fn close(
        &mut self,
        code: CloseCode,
        reason: &str,
        now: Instant,
        out: &mut Outbox,
    ) -> Result<(), SendError> {
        self.connection.close(code, reason, out)?;
        self.close_sent = Some(code);
        self.since = now;
        Ok(())
    }

    /// When the next deadline passes, if there is one.
    pub fn poll_timeout(&self, timeouts: &Timeouts) -> Option<Instant> {
        let after = match (self.is_open(), self.keepalive) {
            (true, Keepalive::Idle) => timeouts.idle,
            (true, Keepalive::AwaitingPong) => timeouts.pong,
            (false, _) => timeouts.close,
        };
        (!after.is_zero()).then(|| self.since + after)
    }

    /// Acts on the deadline that passed by `now`, if any: a keepalive ping, or the end of the
    /// connection when the pong or the peer's Close did not come.
    pub fn handle_timeout(
        &mut self,
        now: Instant,
        timeouts: &Timeouts,
        out: &mut Outbox,
    ) -> Option<Ended> {
        if self
            .poll_timeout(timeouts)
            .is_none_or(|deadline| now < deadline)
        {
            return None;
        }
        let deadline = match (self.is_open(), self.keepalive) {
            (true, Keepalive::Idle) => {
                //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5.2
                //# NOTE: A Ping frame may serve either as a keepalive or as a means to
                //# verify that the remote endpoint is still responsive.
                let _ = self.connection.ping(b"", out);
                if !timeouts.pong.is_zero() {
                    self.keepalive = Keepalive::AwaitingPong;
                }
                self.since = now;
                return None;
            }
            (true, Keepalive::AwaitingPong) => Deadline::Keepalive,
            (false, _) => Deadline::Close,
        };
        Some(Ended::TimedOut(Closure::abnormal(CloseCause::TimedOut(
            deadline,
        ))))
    }
}

impl Ended {
    /// How the connection ended.
    pub fn into_closure(self) -> Closure {
        match self {
            Ended::Cleanly(closure) | Ended::Failed(closure) | Ended::TimedOut(closure) => closure,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::ServerEnd;
    use crate::frame::{FrameHeader, Opcode, encode_frame};

    const TIMEOUTS: Timeouts = Timeouts {
        handshake: Duration::from_secs(10),
        idle: Duration::from_secs(60),
        pong: Duration::from_secs(30),
        close: Duration::from_secs(5),
    };

    /// A masked client frame with the given opcode and payload.
    fn masked(opcode: Opcode, payload: &[u8]) -> Vec<u8> {
        let header = FrameHeader::new(opcode, payload.len()).masked([1, 2, 3, 4]);
        let mut out = Vec::new();
        encode_frame(&header, payload, &mut out);
        out
    }

    struct Harness {
        session: Session<ServerEnd>,
        out: Outbox,
        shared: SharedDeflate,
        start: Instant,
    }

    impl Harness {
        fn new() -> Self {
            let start = Instant::now();
            Harness {
                session: Session::new(Connection::new(ServerEnd), start),
                out: Outbox::new(),
                shared: SharedDeflate::new(),
                start,
            }
        }

        fn at(&self, secs: u64) -> Instant {
            self.start + Duration::from_secs(secs)
        }

        fn receive_at(&mut self, secs: u64, mut input: Vec<u8>) {
            let now = self.at(secs);
            let received = self.session.receive(
                &mut input,
                now,
                &mut self.out,
                &Limits::default(),
                &mut self.shared,
            );
            assert!(self.session.ended_by(&received).is_none());
            assert_eq!(received.unwrap().consumed, input.len());
        }

        fn deadline(&self) -> Option<Instant> {
            self.session.poll_timeout(&TIMEOUTS)
        }
    }

    #[test]
    fn input_restarts_the_idle_time_but_an_empty_read_does_not() {
        let mut h = Harness::new();
        assert_eq!(h.deadline(), Some(h.at(60)));
        h.receive_at(50, Vec::new());
        assert_eq!(h.deadline(), Some(h.at(60)), "nothing was read");
        h.receive_at(50, masked(Opcode::Text, b"hi"));
        assert_eq!(h.deadline(), Some(h.at(110)));
    }

    #[test]
    fn input_after_our_close_does_not_put_off_the_close_deadline() {
        let mut h = Harness::new();
        let now = h.at(10);
        h.session
            .close(CloseCode::NORMAL, "", now, &mut h.out)
            .unwrap();
        assert_eq!(h.deadline(), Some(h.at(15)));
        // The peer goes on sending data frames instead of its Close.
        h.receive_at(13, masked(Opcode::Text, b"still talking"));
        assert_eq!(h.deadline(), Some(h.at(15)));
        let now = h.at(15);
        assert!(matches!(
            h.session.handle_timeout(now, &TIMEOUTS, &mut h.out),
            Some(Ended::TimedOut(_))
        ));
    }
}
