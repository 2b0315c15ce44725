//! A peer's connection in either role: the [`ServerConnection`] of a client that connected to
//! us, or the [`ClientConnection`] of a connection the application opened (boxed, so that an
//! accepted peer pays nothing for the role it does not play). The methods dispatch to the core;
//! the role's rules (masking, who closes TCP first) are the core's.

use super::outbound::Outbound;
use crate::batch::Batch;
use crate::client_connection::{ClientError, ClientEvent};
use crate::close::CloseCode;
use crate::closure::Closure;
use crate::connection::Received;
use crate::deflate::SharedDeflate;
use crate::error::{Error, SendError};
use crate::message::MessageKind;
use crate::outbox::Outbox;
use crate::prepared::PreparedFrame;
use crate::server_connection::{ServerConnection, ServerEvent};
use std::io::Write;
use std::time::Instant;

/// A peer's connection, in the role it plays.
#[derive(Debug)]
pub(crate) enum Conn {
    /// A client connected to one of our listeners: we are the server.
    Accepted(ServerConnection),
    /// The application connected out ([`Context::connect`](super::Context::connect)): we are
    /// the client.
    Outbound(Box<Outbound>),
}

impl Conn {
    /// The outbound connection's state, for a connection the application opened.
    pub fn outbound(&self) -> Option<&Outbound> {
        match self {
            Conn::Outbound(outbound) => Some(outbound),
            Conn::Accepted(_) => None,
        }
    }

    /// The same, mutable.
    pub fn outbound_mut(&mut self) -> Option<&mut Outbound> {
        match self {
            Conn::Outbound(outbound) => Some(outbound),
            Conn::Accepted(_) => None,
        }
    }

    /// Whether TCP is still connecting (an outbound connection only).
    pub fn is_connecting(&self) -> bool {
        self.outbound().is_some_and(Outbound::is_connecting)
    }

    /// Processes received frames of an open connection (see
    /// [`ServerConnection::handle_input`]); a client's events and errors are given as the
    /// server's, which they mirror.
    #[inline(always)]
    pub fn receive<'a>(
        &mut self,
        input: &'a mut [u8],
        now: Instant,
        shared: &mut SharedDeflate,
    ) -> Result<Received<ServerEvent<'a>>, Error> {
        let len = input.len();
        match self {
            Conn::Accepted(conn) => conn.handle_input(input, now, shared),
            Conn::Outbound(outbound) => match outbound.conn.handle_input(input, now, shared) {
                Ok(received) => Ok(Received {
                    consumed: received.consumed,
                    unfinished: received.unfinished,
                    event: received.event.and_then(|event| match event {
                        ClientEvent::Message(message) => Some(ServerEvent::Message(message)),
                        ClientEvent::Ping(payload) => Some(ServerEvent::Ping(payload)),
                        ClientEvent::Pong(payload) => Some(ServerEvent::Pong(payload)),
                        ClientEvent::Close(frame) => Some(ServerEvent::Close(frame)),
                        ClientEvent::Open => None,
                    }),
                }),
                Err(ClientError::Protocol(error)) => Err(Error::Protocol(error)),
                // Only the response can break a rule of the handshake, and it is read by
                // `Outbound::read_response`.
                Err(ClientError::Handshake(_)) => Ok(Received::used(len, None)),
            },
        }
    }

    /// Takes the whole messages at the front of `input` in one call (see
    /// [`ServerConnection::receive_batch`]); only for accepted connections (an outbound one's
    /// input goes frame by frame through [`receive`](Self::receive)).
    #[inline(always)]
    pub fn receive_batch(
        &mut self,
        input: &mut [u8],
        now: Instant,
        payload_budget: usize,
        batch: &mut Batch,
    ) {
        match self {
            Conn::Accepted(conn) => conn.receive_batch(input, now, payload_budget, batch),
            Conn::Outbound(_) => batch.clear(),
        }
    }

    /// Whether a message of a batch still goes to the application (see
    /// [`ServerConnection::delivers_messages`]).
    #[inline(always)]
    pub fn delivers_messages(&self) -> bool {
        match self {
            Conn::Accepted(conn) => conn.delivers_messages(),
            // A client's messages are delivered even after its Close (and an outbound
            // connection takes no batch).
            Conn::Outbound(_) => true,
        }
    }

    /// Room for the next payload bytes of a large frame, to be read in place (see
    /// [`ServerConnection::payload_room`]); only for accepted connections (an outbound one's
    /// input goes through [`receive`](Self::receive)).
    pub fn payload_room(&mut self) -> Option<&mut [u8]> {
        match self {
            Conn::Accepted(conn) => conn.payload_room(),
            Conn::Outbound(_) => None,
        }
    }

    /// Takes `len` bytes read into [`payload_room`](Self::payload_room).
    pub fn receive_in_place(
        &mut self,
        len: usize,
        now: Instant,
        shared: &mut SharedDeflate,
    ) -> Result<Received<ServerEvent<'static>>, Error> {
        match self {
            Conn::Accepted(conn) => conn.receive_in_place(len, now, shared),
            Conn::Outbound(_) => unreachable!("no room is lent to an outbound connection"),
        }
    }

    pub fn handle_eof(&mut self, now: Instant) {
        match self {
            Conn::Accepted(conn) => conn.handle_eof(now),
            Conn::Outbound(outbound) => outbound.conn.handle_eof(now),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        match self {
            Conn::Accepted(conn) => conn.handle_timeout(now),
            Conn::Outbound(outbound) => outbound.conn.handle_timeout(now),
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Conn::Accepted(conn) => conn.poll_timeout(),
            Conn::Outbound(outbound) => outbound.conn.poll_timeout(),
        }
    }

    pub fn is_closed(&self) -> bool {
        match self {
            Conn::Accepted(conn) => conn.is_closed(),
            Conn::Outbound(outbound) => outbound.conn.is_closed(),
        }
    }

    pub fn is_open(&self) -> bool {
        match self {
            Conn::Accepted(conn) => conn.is_open(),
            Conn::Outbound(outbound) => outbound.conn.is_open(),
        }
    }

    pub fn is_handshaking(&self) -> bool {
        match self {
            Conn::Accepted(conn) => conn.is_handshaking(),
            Conn::Outbound(outbound) => outbound.conn.is_handshaking(),
        }
    }

    pub fn has_pending_work(&self) -> bool {
        match self {
            Conn::Accepted(conn) => conn.has_pending_work(),
            Conn::Outbound(outbound) => outbound.conn.has_pending_work(),
        }
    }

    pub fn closure(&self) -> Option<&Closure> {
        match self {
            Conn::Accepted(conn) => conn.closure(),
            Conn::Outbound(outbound) => outbound.conn.closure(),
        }
    }

    pub fn abort(&mut self, reason: &'static str) {
        match self {
            Conn::Accepted(conn) => conn.abort(reason),
            Conn::Outbound(outbound) => {
                outbound.fail_with(|| super::ConnectError::Dropped(reason));
                outbound.conn.abort(reason)
            }
        }
    }

    pub fn terminate(&mut self, code: CloseCode, reason: &'static str, now: Instant) {
        match self {
            Conn::Accepted(conn) => conn.terminate(code, reason, now),
            Conn::Outbound(outbound) => {
                outbound.fail_with(|| super::ConnectError::Dropped(reason));
                outbound.conn.terminate(code, reason, now)
            }
        }
    }

    pub fn buffered(&self) -> usize {
        match self {
            Conn::Accepted(conn) => conn.buffered(),
            Conn::Outbound(outbound) => outbound.conn.buffered(),
        }
    }

    pub fn queued(&self) -> usize {
        match self {
            Conn::Accepted(conn) => conn.queued(),
            Conn::Outbound(outbound) => outbound.conn.queued(),
        }
    }

    pub fn outbox(&mut self) -> &mut Outbox {
        match self {
            Conn::Accepted(conn) => conn.outbox(),
            Conn::Outbound(outbound) => outbound.conn.outbox(),
        }
    }

    #[inline(always)]
    pub fn send(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        shared: &mut SharedDeflate,
    ) -> Result<(), SendError> {
        match self {
            Conn::Accepted(conn) => conn.send(kind, payload, shared),
            Conn::Outbound(outbound) => outbound.conn.send(kind, payload, shared),
        }
    }

    pub fn send_owned(
        &mut self,
        kind: MessageKind,
        payload: Vec<u8>,
        shared: &mut SharedDeflate,
    ) -> Result<(), SendError> {
        match self {
            Conn::Accepted(conn) => conn.send_owned(kind, payload, shared),
            Conn::Outbound(outbound) => outbound.conn.send_owned(kind, payload, shared),
        }
    }

    /// Queues a frame encoded once for many connections: by reference for a server's
    /// connection; a client's masks every frame with a key of its own, so it encodes it again.
    pub fn send_prepared(
        &mut self,
        frame: &PreparedFrame,
        shared: &mut SharedDeflate,
    ) -> Result<(), SendError> {
        match self {
            Conn::Accepted(conn) => conn.send_prepared(frame),
            //= https://www.rfc-editor.org/rfc/rfc6455#section-5.1
            //# a client MUST mask all frames that it
            //# sends to the server (see Section 5.3 for further details).
            Conn::Outbound(outbound) => outbound.conn.send(frame.kind(), frame.payload(), shared),
        }
    }

    /// See [`ServerConnection::send_prepared_through`]: a client's frames are masked, so they
    /// are always queued.
    pub fn send_prepared_through<'f>(
        &mut self,
        frames: impl IntoIterator<Item = &'f PreparedFrame>,
        scratch: &mut Vec<u8>,
        writer: &mut impl Write,
        shared: &mut SharedDeflate,
    ) -> Result<usize, SendError> {
        match self {
            Conn::Accepted(conn) => conn.send_prepared_through(frames, scratch, writer),
            Conn::Outbound(_) => {
                for frame in frames {
                    self.send_prepared(frame, shared)?;
                }
                Ok(0)
            }
        }
    }

    /// The window a shared compressed frame is made with for this connection; none for a
    /// client's, which compresses (and masks) its own.
    pub fn compression_window(&self, len: usize) -> Option<u8> {
        match self {
            Conn::Accepted(conn) => conn.compression_window(len),
            Conn::Outbound(_) => None,
        }
    }

    /// See [`ServerConnection::send_through`]: a client's frames are masked, so they are
    /// always queued.
    pub fn send_through(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        writer: &mut impl Write,
        shared: &mut SharedDeflate,
    ) -> Result<usize, SendError> {
        match self {
            Conn::Accepted(conn) => conn.send_through(kind, payload, writer, shared),
            Conn::Outbound(outbound) => outbound.conn.send(kind, payload, shared).map(|()| 0),
        }
    }

    pub fn close(&mut self, code: CloseCode, reason: &str, now: Instant) -> Result<(), SendError> {
        match self {
            Conn::Accepted(conn) => conn.close(code, reason, now),
            Conn::Outbound(outbound) => outbound.conn.close(code, reason, now),
        }
    }
}
