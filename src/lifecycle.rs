//! One connection's life in either role, from its first byte to its TCP close, around what only
//! the role knows: its side of the opening handshake. [`ServerConnection`](crate::ServerConnection)
//! and [`ClientConnection`](crate::ClientConnection) each wrap a [`Lifecycle`], read and answer
//! their handshake in its [`Handshake`](Stage::Handshake) stage, and say which end closes TCP
//! first after a clean close (§7.1.1); the rest is here: the open [`Session`], the closing stage
//! and its deadline, the outbox, and how the connection ended.
//!
//! ```text
//!  Handshake ──role opens──► Open ──Close exchanged,──► Closing ──► Closed
//!      │                            failure, or EOF      (our EOF sent, peer's EOF seen,
//!      │ role refuses                                     or a deadline)
//!      ├───────────────────────────────────────────────► Closing
//!      │ peer's EOF, deadline, response refused
//!      └───────────────────────────────────────────────────────────► Closed
//! ```

use crate::batch::Batch;
use crate::close::CloseCode;
use crate::closure::{CloseCause, Closure};
use crate::connection::{Connection, Endpoint, Event, Received};
use crate::deflate::SharedDeflate;
use crate::error::{ProtocolError, SendError};
use crate::limits::Limits;
use crate::message::MessageKind;
use crate::outbox::Outbox;
use crate::session::{Ended, Session, Timeouts};
use std::time::Instant;

/// Where a connection is in its life.
#[derive(Debug)]
pub(crate) enum Stage<H, P> {
    /// The opening handshake, in the role's own state; its deadline counts from `started`.
    Handshake { state: H, started: Instant },
    /// The WebSocket connection is open, or we sent our Close and wait for the peer's.
    Open(Session<P>),
    /// The connection is over: the peer's input is read and dropped until it closes its side
    /// (or the close deadline passes). Our output ends after what is queued: at once, or once
    /// the peer's has ended when the peer is to close TCP first (a client after a clean close).
    Closing {
        /// The peer's end of stream arrived.
        peer_eof: bool,
        /// When the connection ended: the close deadline counts from here.
        since: Instant,
    },
    /// The transport should be closed.
    Closed,
}

/// Which end closes TCP first after a clean closing handshake (§7.1.1). After a failure, we
/// close our side as soon as our Close is written, in either role: a client that failed the
/// connection does not wait for the server's TCP close first (§7.1.1 lets a client close TCP in
/// abnormal cases).
//
//= https://www.rfc-editor.org/rfc/rfc6455#section-7.1.1
//# As such, when a server
//# is instructed to _Close the WebSocket Connection_ it SHOULD initiate
//# a TCP Close immediately, and when a client is instructed to do the
//# same, it SHOULD wait for a TCP Close from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FirstToClose {
    /// We do, once what is queued is written: the server.
    Us,
    /// The peer does, and we close ours after it (or at the close deadline): the client.
    Peer,
}

/// One connection's life, sans-IO: `H` is the role's handshake state, `P` its end of the
/// framing machine.
#[derive(Debug)]
pub(crate) struct Lifecycle<H, P> {
    stage: Stage<H, P>,
    outbox: Outbox,
    /// How the connection ended, once an open connection has ended (or started to).
    closure: Option<Box<Closure>>,
}

impl<H, P: Endpoint> Lifecycle<H, P> {
    /// A connection whose transport was just established at `now`, in the handshake's first
    /// state, with what it sends first (if anything) in `outbox`.
    pub fn new(handshake: H, outbox: Outbox, now: Instant) -> Self {
        Lifecycle {
            stage: Stage::Handshake {
                state: handshake,
                started: now,
            },
            outbox,
            closure: None,
        }
    }

    /// The handshake's state, while the handshake lasts.
    pub fn handshake(&self) -> Option<&H> {
        match &self.stage {
            Stage::Handshake { state, .. } => Some(state),
            _ => None,
        }
    }

    /// The same, mutable.
    pub fn handshake_mut(&mut self) -> Option<&mut H> {
        match &mut self.stage {
            Stage::Handshake { state, .. } => Some(state),
            _ => None,
        }
    }

    /// Ends the handshake and hands its state back; the connection is closed until it is
    /// [opened](Self::open).
    pub fn take_handshake(&mut self) -> Option<H> {
        match std::mem::replace(&mut self.stage, Stage::Closed) {
            Stage::Handshake { state, .. } => Some(state),
            stage => {
                self.stage = stage;
                None
            }
        }
    }

    /// Whether the opening handshake is still going on.
    pub fn is_handshaking(&self) -> bool {
        matches!(self.stage, Stage::Handshake { .. })
    }

    /// The handshake succeeded at `now`: the connection is open over `connection`.
    pub fn open(&mut self, connection: Connection<P>, now: Instant) {
        self.stage = Stage::Open(Session::new(connection, now));
    }

    /// Takes input once the handshake is over: at most one frame while open, as
    /// [`Session::receive`] does; everything, dropped, once the connection is over; nothing
    /// during the handshake, which is the role's to read. When a frame ends the open connection,
    /// our side of TCP closes as `first_to_close` says.
    #[inline(always)]
    pub fn receive<'a>(
        &mut self,
        input: &'a mut [u8],
        now: Instant,
        limits: &Limits,
        shared: &mut SharedDeflate,
        first_to_close: FirstToClose,
    ) -> Result<Received<Event<'a>>, ProtocolError> {
        // Once the connection is over, input is read and dropped until the peer's end of stream
        // (or the close deadline), and only then is the transport closed: our side half-closes
        // first (the outbox's end, which a TLS shell turns into close_notify, then the TCP
        // half-close).
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-7.1.1
        //# An endpoint SHOULD use a method that
        //# cleanly closes the TCP connection, as well as the TLS session, if
        //# applicable, discarding any trailing bytes that may have been
        //# received.
        let session = match &mut self.stage {
            Stage::Handshake { .. } => return Ok(Received::nothing()),
            Stage::Open(session) => session,
            Stage::Closing { .. } | Stage::Closed => return Ok(Received::used(input.len(), None)),
        };
        let received = session.receive(input, now, &mut self.outbox, limits, shared);
        if let Some(ended) = session.ended_by(&received) {
            self.end_open(ended, first_to_close, now);
        }
        received
    }

    /// Takes the whole messages at the front of the input, while open
    /// ([`Connection::receive_batch`]); nothing in any other stage.
    #[inline(always)]
    pub fn receive_batch(
        &mut self,
        input: &mut [u8],
        now: Instant,
        limits: &Limits,
        payload_budget: usize,
        batch: &mut Batch,
    ) {
        match &mut self.stage {
            Stage::Open(session) => {
                session.receive_batch(input, now, limits, payload_budget, batch)
            }
            _ => batch.clear(),
        }
    }

    /// Whether a message received now goes to the application: only while the session lasts
    /// ([`Connection::delivers_messages`]).
    #[inline(always)]
    pub fn delivers_messages(&self) -> bool {
        matches!(&self.stage, Stage::Open(session) if session.delivers_messages())
    }

    /// Room for the next payload bytes to be read in place, while open
    /// ([`Connection::payload_room`](crate::connection::Connection::payload_room)).
    pub fn payload_room(&mut self) -> Option<&mut [u8]> {
        match &mut self.stage {
            Stage::Open(session) => session.payload_room(),
            _ => None,
        }
    }

    /// Takes `len` bytes read into [`payload_room`](Self::payload_room), as
    /// [`receive`](Self::receive) takes input.
    pub fn receive_in_place(
        &mut self,
        len: usize,
        now: Instant,
        limits: &Limits,
        shared: &mut SharedDeflate,
        first_to_close: FirstToClose,
    ) -> Result<Received<Event<'static>>, ProtocolError> {
        let Stage::Open(session) = &mut self.stage else {
            unreachable!("room is lent only while open");
        };
        let received = session.receive_in_place(len, now, &mut self.outbox, limits, shared);
        if let Some(ended) = session.ended_by(&received) {
            self.end_open(ended, first_to_close, now);
        }
        received
    }

    /// The open connection ended as `ended` says: record it, and close our side of TCP now
    /// unless the peer is to close first.
    fn end_open(&mut self, ended: Ended, first_to_close: FirstToClose, now: Instant) {
        // `Ended::Cleanly`: our Close was sent (or its reply is queued) and the peer's received.
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-7.1.2
        //# Once an endpoint has both sent and
        //# received a Close control frame, that endpoint SHOULD _Close the
        //# WebSocket Connection_ as defined in Section 7.1.1.
        let our_side_closes = match ended {
            Ended::Cleanly(_) => first_to_close == FirstToClose::Us,
            // A failure closes our side once our Close is written, in either role; the error
            // is returned to the caller (the client's application, the server's shell, which
            // logs it).
            //
            //= https://www.rfc-editor.org/rfc/rfc6455#section-7.1.7
            //# To do so, the client MUST _Close the
            //# WebSocket Connection_, and MAY report the problem to the user (which
            //# would be especially useful for developers) in an appropriate manner.
            //
            //= https://www.rfc-editor.org/rfc/rfc6455#section-7.1.7
            //# Similarly, to do so, the server MUST _Close the WebSocket
            //# Connection_, and SHOULD log the problem.
            Ended::Failed(_) | Ended::TimedOut(_) => true,
        };
        self.closure
            .get_or_insert_with(|| Box::new(ended.into_closure()));
        if our_side_closes {
            self.outbox.finish();
        }
        self.stage = Stage::Closing {
            peer_eof: false,
            since: now,
        };
    }

    /// Ends the output after what is queued, and waits (at most the close timeout) for the
    /// peer's end of stream, reading and dropping its input meanwhile.
    pub fn enter_closing(&mut self, peer_eof: bool, now: Instant) {
        self.outbox.finish();
        self.stage = Stage::Closing {
            peer_eof,
            since: now,
        };
    }

    /// The transport should be closed now, with nothing more written.
    pub fn end_now(&mut self) {
        self.stage = Stage::Closed;
    }

    /// The peer ended its stream (TCP FIN). What was queued is still written, then our side is
    /// closed too. During the handshake the transport is closed at once: a role that still has
    /// an answer to write remembers the end of stream itself instead.
    pub fn handle_eof(&mut self, now: Instant) {
        match &mut self.stage {
            Stage::Handshake { .. } => self.end_now(),
            Stage::Open(_) => {
                //= https://www.rfc-editor.org/rfc/rfc6455#section-7.2.1
                //# If at any point the underlying transport layer connection is
                //# unexpectedly lost, the client MUST _Fail the WebSocket Connection_.
                self.closure.get_or_insert_with(|| {
                    Box::new(Closure::abnormal(CloseCause::TransportClosed))
                });
                self.enter_closing(true, now);
            }
            Stage::Closing { peer_eof, .. } => {
                *peer_eof = true;
                self.outbox.finish();
            }
            Stage::Closed => {}
        }
    }

    /// Acts on the deadline that passed by `now`, if any: the handshake deadline, the keepalive
    /// ping, the pong deadline, or the close deadlines.
    pub fn handle_timeout(&mut self, now: Instant, timeouts: &Timeouts) {
        let due = self
            .poll_timeout(timeouts)
            .is_some_and(|deadline| now >= deadline);
        match &mut self.stage {
            Stage::Open(session) => {
                if let Some(ended) = session.handle_timeout(now, timeouts, &mut self.outbox) {
                    self.closure = Some(Box::new(ended.into_closure()));
                    self.stage = Stage::Closed;
                }
            }
            // No handshake in time, or no TCP close from the peer after the connection ended:
            // we close the transport ourselves (§7.1.1 allows a client to).
            _ if due => self.stage = Stage::Closed,
            _ => {}
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called, if ever.
    pub fn poll_timeout(&self, timeouts: &Timeouts) -> Option<Instant> {
        let (since, after) = match &self.stage {
            Stage::Handshake { started, .. } => (*started, timeouts.handshake),
            Stage::Open(session) => return session.poll_timeout(timeouts),
            Stage::Closing { since, .. } => (*since, timeouts.close),
            Stage::Closed => return None,
        };
        (!after.is_zero()).then(|| since + after)
    }

    /// Whether the transport should now be closed: the connection is over, its output (and end
    /// of stream) is written and the peer closed its side, or a deadline passed.
    pub fn is_closed(&self) -> bool {
        match self.stage {
            Stage::Closed => true,
            Stage::Closing { peer_eof, .. } => peer_eof && self.outbox.eof_taken(),
            _ => false,
        }
    }

    /// Whether the WebSocket connection is open for sending (the handshake is complete and no
    /// Close was sent or received).
    pub fn is_open(&self) -> bool {
        matches!(&self.stage, Stage::Open(session) if session.is_open())
    }

    /// Whether work is left that needs no more input (a compressed message being inflated a
    /// step at a time).
    pub fn has_pending_work(&self) -> bool {
        matches!(&self.stage, Stage::Open(session) if session.connection.has_pending_work())
    }

    /// How the connection ended: `Some` once a connection that was open has ended or started
    /// to close, `None` before, and for a connection that never opened.
    pub fn closure(&self) -> Option<&Closure> {
        self.closure.as_deref()
    }

    /// Ends an open connection now for a reason of the caller's: a Close with `code` and
    /// `reason` is queued after what is queued, the message being assembled is dropped, and
    /// our side of TCP closes once that is written, as after a failure. A connection that is
    /// not open is aborted.
    pub fn terminate(&mut self, code: CloseCode, reason: &'static str, now: Instant) {
        let Stage::Open(session) = &mut self.stage else {
            self.abort(reason);
            return;
        };
        session.connection.terminate(code, reason, &mut self.outbox);
        self.closure
            .get_or_insert_with(|| Box::new(Closure::abnormal(CloseCause::Dropped(reason))));
        self.enter_closing(false, now);
    }

    /// Ends the connection at once for a reason of the caller's. Queued output is dropped with
    /// the transport.
    pub fn abort(&mut self, reason: &'static str) {
        if matches!(self.stage, Stage::Open(_)) {
            self.closure
                .get_or_insert_with(|| Box::new(Closure::abnormal(CloseCause::Dropped(reason))));
        }
        self.end_now();
    }

    /// Bytes held for the message being assembled (0 when none is).
    pub fn buffered(&self) -> usize {
        match &self.stage {
            Stage::Open(session) => session.connection.buffered(),
            _ => 0,
        }
    }

    /// The bytes to write, and the end of the output stream.
    pub fn outbox(&mut self) -> &mut Outbox {
        &mut self.outbox
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.outbox.len()
    }

    /// Takes every queued byte at once.
    pub fn take_output(&mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.outbox.len());
        self.outbox
            .write_to(&mut out)
            .expect("writing into a Vec cannot fail");
        out
    }

    /// The open session and the outbox, for sending; [`SendError::NotOpen`] before the
    /// handshake completes and after the connection ended.
    pub fn session(&mut self) -> Result<(&mut Session<P>, &mut Outbox), SendError> {
        //= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
        //# Once the client's opening handshake has been sent, the client MUST
        //# wait for a response from the server before sending any further data.
        match &mut self.stage {
            Stage::Open(session) => Ok((session, &mut self.outbox)),
            _ => Err(SendError::NotOpen),
        }
    }

    /// Queues a data message.
    #[inline(always)]
    pub fn send(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        shared: &mut SharedDeflate,
    ) -> Result<(), SendError> {
        let (session, outbox) = self.session()?;
        session.connection.send(kind, payload, outbox, shared)
    }

    /// Queues a data message whose payload is an owned buffer.
    pub fn send_owned(
        &mut self,
        kind: MessageKind,
        payload: Vec<u8>,
        shared: &mut SharedDeflate,
    ) -> Result<(), SendError> {
        let (session, outbox) = self.session()?;
        session.connection.send_owned(kind, payload, outbox, shared)
    }

    /// The window this connection compresses a `len`-byte message with, if it compresses it.
    pub fn compression_window(&self, len: usize) -> Option<u8> {
        match &self.stage {
            Stage::Open(session) => session.connection.compression_window(len),
            _ => None,
        }
    }

    /// Queues a ping (§5.5.2).
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), SendError> {
        let (session, outbox) = self.session()?;
        session.connection.ping(payload, outbox)
    }

    /// Starts the closing handshake (§7.1.2) with `code` and `reason`.
    pub fn close(&mut self, code: CloseCode, reason: &str, now: Instant) -> Result<(), SendError> {
        let (session, outbox) = self.session()?;
        session.close(code, reason, now, outbox)
    }
}
