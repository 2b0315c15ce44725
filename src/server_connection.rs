//! One server-side connection, from its first request byte to its TCP close: the opening
//! handshake (RFC 6455 §4.2), the framing machine ([`Connection`]), keepalive, the closing
//! handshake and its deadlines (§7), and when to end the transport.
//!
//! <https://www.rfc-editor.org/rfc/rfc6455#section-4.2>
//!
//! A [`ServerConnection`] is sans-IO: it takes received bytes ([`handle_input`]), the peer's
//! end of stream ([`handle_eof`]) and the current time ([`handle_timeout`]); it gives back
//! events, the bytes to write and the end of its output stream (its [`Outbox`]), the next
//! deadline ([`poll_timeout`]) and whether the transport should now be closed
//! ([`is_closed`]). It never reads a clock, touches a socket or draws a random number.
//!
//! ```text
//!  ReadingRequest ──request──► AwaitingAnswer ──accept()──► Open ──Close exchanged,──► Closing ──► Closed
//!        │                          │   refuse(),                    failure, or EOF      (our EOF sent,
//!        │ bad request: 4xx         │   respond()                                         peer's EOF seen,
//!        └──────────────────────────┴────────────────────────────────────► Closing         or a deadline)
//! ```
//!
//! [`handle_input`]: ServerConnection::handle_input
//! [`handle_eof`]: ServerConnection::handle_eof
//! [`handle_timeout`]: ServerConnection::handle_timeout
//! [`poll_timeout`]: ServerConnection::poll_timeout
//! [`is_closed`]: ServerConnection::is_closed
//!
//! A whole exchange, in memory:
//!
//! ```
//! use rfc6455::server_connection::{ServerConfig, ServerConnection, ServerEvent};
//! use rfc6455::deflate::SharedDeflate;
//! use rfc6455::CloseCode;
//! use std::{sync::Arc, time::Instant};
//!
//! let (now, mut shared) = (Instant::now(), SharedDeflate::new());
//! let mut conn = ServerConnection::new(Arc::new(ServerConfig::default()), now);
//! let mut request = b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
//!     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
//!     Sec-WebSocket-Version: 13\r\n\r\n".to_vec();
//! let received = conn.handle_input(&mut request, now, &mut shared).unwrap();
//! let Some(ServerEvent::Upgrade(request)) = received.event else { panic!() };
//! assert_eq!(request.path, "/chat");
//! conn.accept(&request, None, now).unwrap();
//! let response = conn.take_output();
//! assert!(response.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
//! // RFC 6455 §5.7: a masked "Hello"; the server echoes it unmasked.
//! let mut frame = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
//! let received = conn.handle_input(&mut frame, now, &mut shared).unwrap();
//! let Some(ServerEvent::Message(message)) = received.event else { panic!() };
//! conn.send(message.kind(), message.as_bytes(), &mut shared).unwrap();
//! assert_eq!(conn.take_output(), b"\x81\x05Hello");
//! // We close; the peer answers with its Close, then closes TCP.
//! conn.close(CloseCode::NORMAL, "bye", now).unwrap();
//! assert_eq!(conn.take_output(), b"\x88\x05\x03\xe8bye");
//! let mut reply = [0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8];
//! conn.handle_input(&mut reply, now, &mut shared).unwrap();
//! assert!(conn.outbox().take_eof(), "the server closes TCP first (§7.1.1)");
//! conn.handle_eof(now);
//! assert!(conn.is_closed() && conn.closure().unwrap().was_clean());
//! ```

use crate::batch::Batch;
use crate::close::{CloseCode, CloseFrame};
#[cfg(test)]
use crate::closure::CloseCause;
use crate::closure::Closure;
use crate::connection::{Connection, Event, Received, ServerEnd};
use crate::deflate::{self, Deflate, DeflateConfig, Negotiated, SharedDeflate};
use crate::error::{AnswerError, Error, HandshakeError, SendError};
use crate::frame::Status;
use crate::handshake::{self, HeadScanner, HostPolicy, OriginPolicy, Request};
use crate::http::Response;
use crate::lifecycle::{FirstToClose, Lifecycle};
use crate::limits::Limits;
use crate::message::{Message, MessageKind};
use crate::outbox::Outbox;
use crate::prepared::PreparedFrame;
use crate::session::Timeouts;
use std::io::{IoSlice, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a server connection is allowed and expected to do: limits, deadlines, and the
/// handshake's policies. Shared by every connection of a server (behind an [`Arc`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Protocol limits: frame, message and request head sizes.
    pub limits: Limits,
    /// permessage-deflate (RFC 7692) settings.
    pub deflate: DeflateConfig,
    /// Which `Origin`s may open a WebSocket; others get 403.
    pub origins: OriginPolicy,
    /// Which `Host` values are answered (plain HTTP and upgrades); others get 403.
    pub hosts: HostPolicy,
    /// Time from the connection's start to a complete request head; a slower client is
    /// disconnected. Zero disables the deadline.
    pub handshake_timeout: Duration,
    /// Silence after which an open connection is pinged. Zero disables keepalive.
    pub idle_timeout: Duration,
    /// Time after the keepalive ping with no input at all before the connection is dropped.
    /// Zero means the ping is never followed by a drop.
    pub pong_timeout: Duration,
    /// Time to wait for the peer's Close after ours, and for the peer's TCP close after ours.
    pub close_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            limits: Limits::default(),
            deflate: DeflateConfig::default(),
            origins: OriginPolicy::default(),
            hosts: HostPolicy::default(),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            pong_timeout: Duration::from_secs(30),
            close_timeout: Duration::from_secs(1),
        }
    }
}

/// Something the peer did that the application may act on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerEvent<'a> {
    /// An upgrade request that passed RFC 6455 §4.2.1's checks and the `Origin` policy. Answer
    /// with [`accept`](ServerConnection::accept) or [`refuse`](ServerConnection::refuse).
    /// (Boxed, as is `Http`'s: a request happens once per connection, a message on every frame,
    /// and every event is as large as its largest variant.)
    Upgrade(Box<Request<'a>>),
    /// A plain HTTP request (no WebSocket upgrade asked for). Answer with
    /// [`respond`](ServerConnection::respond).
    Http(Box<Request<'a>>),
    /// A complete text or binary message.
    Message(Message<'a>),
    /// A ping; its pong is already queued (§5.5.2).
    Ping(&'a [u8]),
    /// A pong (§5.5.3).
    Pong(&'a [u8]),
    /// The peer's Close (§5.5.1); the reply, if one was due, is already queued, and the
    /// connection is closing.
    Close(Option<CloseFrame<'a>>),
}

impl<'a> From<Event<'a>> for ServerEvent<'a> {
    fn from(event: Event<'a>) -> Self {
        match event {
            Event::Message(message) => ServerEvent::Message(message),
            Event::Ping(payload) => ServerEvent::Ping(payload),
            Event::Pong(payload) => ServerEvent::Pong(payload),
            Event::Close(frame) => ServerEvent::Close(frame),
        }
    }
}

/// The server's side of the opening handshake; its deadline counts from the connection's start.
#[derive(Debug)]
enum Handshake {
    /// Reading the request head; the scanner remembers how far it looked.
    ReadingRequest { scanner: HeadScanner },
    /// A request was reported and waits for the application's answer.
    AwaitingAnswer {
        request: PendingRequest,
        /// The peer's end of stream arrived meanwhile.
        peer_eof: bool,
    },
}

/// What the request waiting for an answer asked for.
#[derive(Debug, Clone, Copy)]
enum PendingRequest {
    /// A valid upgrade: the `Sec-WebSocket-Accept` value (§4.2.2 item 5.4) and the
    /// permessage-deflate parameters negotiated from its offers.
    Upgrade {
        accept: [u8; ACCEPT_LEN],
        deflate: Option<Negotiated>,
    },
    /// Plain HTTP.
    Http,
}

/// The length of a `Sec-WebSocket-Accept` value: a SHA-1 digest in base64.
const ACCEPT_LEN: usize = 28;

/// One server-side connection, sans-IO. See the [module documentation](self).
#[derive(Debug)]
pub struct ServerConnection {
    config: Arc<ServerConfig>,
    lifecycle: Lifecycle<Handshake, ServerEnd>,
}

impl ServerConnection {
    /// A connection whose transport was just established at `now`.
    pub fn new(config: Arc<ServerConfig>, now: Instant) -> Self {
        let reading = Handshake::ReadingRequest {
            scanner: HeadScanner::new(),
        };
        ServerConnection {
            config,
            lifecycle: Lifecycle::new(reading, Outbox::new(), now),
        }
    }

    /// The settings this connection runs under.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Processes bytes received from the peer, in place.
    ///
    /// While the request head is incomplete, present every byte received so far (the same
    /// prefix each call, with new bytes appended); nothing is consumed until the head is
    /// complete. Then the request is reported and must be answered before the input after it is
    /// processed. Once open, each call consumes at most one frame (or the part of one that
    /// arrived) and returns at most one event; call it again with the unconsumed rest until
    /// [`Received::needs_more`], and present a leftover partial frame again with more bytes.
    ///
    /// A request that breaks a rule is refused here (its HTTP error is queued) and a frame
    /// stream that breaks one fails the connection (its Close is queued); the error is returned
    /// for the caller to log, and the connection is closing.
    #[inline(always)]
    pub fn handle_input<'a>(
        &mut self,
        input: &'a mut [u8],
        now: Instant,
        shared: &mut SharedDeflate,
    ) -> Result<Received<ServerEvent<'a>>, Error> {
        match self.lifecycle.handshake() {
            Some(Handshake::ReadingRequest { .. }) => self.read_request(input, now),
            Some(Handshake::AwaitingAnswer { .. }) => Ok(Received::nothing()),
            None => self.receive_frames(input, now, shared),
        }
    }

    fn read_request<'a>(
        &mut self,
        input: &'a mut [u8],
        now: Instant,
    ) -> Result<Received<ServerEvent<'a>>, Error> {
        let Some(Handshake::ReadingRequest { scanner }) = self.lifecycle.handshake_mut() else {
            unreachable!("called while reading the request");
        };
        let input: &'a [u8] = input;
        let limits = self.config.limits;
        let head_len = match scanner.scan(input, limits.max_head_size) {
            Ok(Status::Partial) => return Ok(Received::nothing()),
            Ok(Status::Complete(head_len)) => head_len,
            Err(error) => return Err(self.refuse_request(error, now)),
        };
        let request =
            match handshake::parse_request(&input[..head_len], &limits).and_then(|request| {
                handshake::check_host(&request, &self.config.hosts).map(|()| request)
            }) {
                Ok(request) => request,
                Err(error) => return Err(self.refuse_request(error, now)),
            };
        if !request.is_websocket_attempt() {
            self.await_answer(PendingRequest::Http);
            return Ok(Received::used(
                head_len,
                Some(ServerEvent::Http(Box::new(request))),
            ));
        }
        let checked = handshake::validate_upgrade(&request).and_then(|upgrade| {
            handshake::check_origin(&request, &self.config.origins)?;
            let deflate = deflate::negotiate(&request, &self.config.deflate)?;
            Ok((upgrade.key, deflate))
        });
        let (key, deflate) = match checked {
            Ok(checked) => checked,
            Err(error) => return Err(self.refuse_request(error, now)),
        };
        let mut accept = [0u8; ACCEPT_LEN];
        accept.copy_from_slice(handshake::accept_key(key.as_bytes()).as_bytes());
        self.await_answer(PendingRequest::Upgrade { accept, deflate });
        Ok(Received::used(
            head_len,
            Some(ServerEvent::Upgrade(Box::new(request))),
        ))
    }

    /// The request head is read and reported: wait for the application's answer to `request`.
    fn await_answer(&mut self, request: PendingRequest) {
        if let Some(handshake) = self.lifecycle.handshake_mut() {
            *handshake = Handshake::AwaitingAnswer {
                request,
                peer_eof: false,
            };
        }
    }

    /// Answers a request that broke a rule with its HTTP error, and ends the connection.
    fn refuse_request(&mut self, error: HandshakeError, now: Instant) -> Error {
        //= https://www.rfc-editor.org/rfc/rfc6455#section-4.2.1
        //# If the server, while reading the handshake, finds that the client did
        //# not send a handshake that matches the description below (note that as
        //# per [RFC2616], the order of the header fields is not important),
        //# including but not limited to any violations of the ABNF grammar
        //# specified for the components of the handshake, the server MUST stop
        //# processing the client's handshake and return an HTTP response with an
        //# appropriate error code (such as 400 Bad Request).
        //
        // After the response, the connection closes as after a failure: our side at once, the
        // peer's input read and dropped until its end of stream or the close deadline.
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-7.2.2
        //# To do so, the
        //# server MUST simply _Close the WebSocket Connection_ (Section 7.1.1).
        queue_response(&handshake::error_response(error), self.lifecycle.outbox());
        self.lifecycle.enter_closing(false, now);
        Error::Handshake(error)
    }

    /// Accepts the upgrade request just reported ([`ServerEvent::Upgrade`]): queues the `101`
    /// response, with `protocol` as the subprotocol if one is given, and opens the connection.
    ///
    /// `request` is the reported request: the subprotocol must be one it offers.
    pub fn accept(
        &mut self,
        request: &Request<'_>,
        protocol: Option<&str>,
        now: Instant,
    ) -> Result<(), AnswerError> {
        let Some(&Handshake::AwaitingAnswer {
            request: PendingRequest::Upgrade { accept, deflate },
            peer_eof,
        }) = self.lifecycle.handshake()
        else {
            return Err(AnswerError::NoUpgradePending);
        };
        //= https://www.rfc-editor.org/rfc/rfc6455#section-4.2.2
        //# When a client establishes a WebSocket connection to a server, the
        //# server MUST complete the following steps to accept the connection and
        //# send the server's opening handshake.
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-4.2.2
        //# The value chosen MUST be derived
        //# from the client's handshake, specifically by selecting one of
        //# the values from the |Sec-WebSocket-Protocol| field that the
        //# server is willing to use for this connection (if any).
        if let Some(protocol) = protocol
            && !request.protocols().any(|offered| offered == protocol)
        {
            return Err(AnswerError::ProtocolNotOffered);
        }
        let accept = std::str::from_utf8(&accept).expect("base64 is ASCII");
        let extensions = deflate.map(|negotiated| negotiated.server_response());
        queue_response(
            &handshake::switching_protocols(accept, protocol, extensions.as_deref()),
            self.lifecycle.outbox(),
        );
        let mut connection = Connection::new(ServerEnd);
        //= https://www.rfc-editor.org/rfc/rfc6455#section-5.8
        //# The endpoints of a connection
        //# MUST negotiate the use of any extensions during the opening
        //# handshake.
        if let Some(negotiated) = deflate {
            connection = connection.with_deflate(Deflate::new(negotiated, &self.config.deflate));
        }
        self.lifecycle.open(connection, now);
        if peer_eof {
            self.handle_eof(now);
        }
        Ok(())
    }

    /// Refuses the upgrade request just reported with `response` (for example a 401, 403 or
    /// 404), and ends the connection after it.
    pub fn refuse(&mut self, response: &Response, now: Instant) -> Result<(), AnswerError> {
        match self.lifecycle.handshake() {
            Some(&Handshake::AwaitingAnswer {
                request: PendingRequest::Upgrade { .. },
                peer_eof,
            }) => {
                //= https://www.rfc-editor.org/rfc/rfc6455#section-4.2.2
                //# If the server does not wish to accept this
                //# connection, it MUST return an appropriate HTTP error code
                //# (e.g., 403 Forbidden) and abort the WebSocket handshake
                //# described in this section.
                //
                //= https://www.rfc-editor.org/rfc/rfc6455#section-4.2.2
                //# If the
                //# requested service is not available, the server MUST send an
                //# appropriate HTTP error code (such as 404 Not Found) and abort
                //# the WebSocket handshake.
                queue_response(response, self.lifecycle.outbox());
                self.lifecycle.enter_closing(peer_eof, now);
                Ok(())
            }
            _ => Err(AnswerError::NoUpgradePending),
        }
    }

    /// Answers the plain HTTP request just reported ([`ServerEvent::Http`]) with `response`, and
    /// ends the connection after it.
    pub fn respond(&mut self, response: &Response, now: Instant) -> Result<(), AnswerError> {
        match self.lifecycle.handshake() {
            Some(&Handshake::AwaitingAnswer {
                request: PendingRequest::Http,
                peer_eof,
            }) => {
                queue_response(response, self.lifecycle.outbox());
                self.lifecycle.enter_closing(peer_eof, now);
                Ok(())
            }
            _ => Err(AnswerError::NoHttpRequestPending),
        }
    }

    #[inline(always)]
    fn receive_frames<'a>(
        &mut self,
        input: &'a mut [u8],
        now: Instant,
        shared: &mut SharedDeflate,
    ) -> Result<Received<ServerEvent<'a>>, Error> {
        let limits = &self.config.limits;
        // When the open connection ends, the server closes TCP as soon as what is queued is
        // written:
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-7.1.1
        //# The underlying TCP connection, in most normal cases, SHOULD be closed
        //# first by the server, so that it holds the TIME_WAIT state and not the
        //# client (as this would prevent it from re-opening the connection for 2
        //# maximum segment lifetimes (2MSL), while there is no corresponding
        //# server impact as a TIME_WAIT connection is immediately reopened upon
        //# a new SYN with a higher seq number).
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5.1
        //# The server MUST close the underlying TCP
        //# connection immediately; the client SHOULD wait for the server to
        //# close the connection but MAY close the connection at any time after
        //# sending and receiving a Close message, e.g., if it has not received a
        //# TCP Close from the server in a reasonable time period.
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5.1
        //# After both sending and receiving a Close message, an endpoint
        //# considers the WebSocket connection closed and MUST close the
        //# underlying TCP connection.
        let received = self
            .lifecycle
            .receive(input, now, limits, shared, FirstToClose::Us)
            .map_err(Error::Protocol)?;
        Ok(received.map(ServerEvent::from))
    }

    /// Takes, from the front of `input`, the complete frames that each carry one whole
    /// uncompressed message, in one call (see [`crate::batch`]): the fast path for a client that
    /// pipelines small messages. Give the input after [`Batch::consumed`] to
    /// [`handle_input`](Self::handle_input), which takes any other frame. At most
    /// [`BATCH_MAX`](crate::batch::BATCH_MAX) messages are taken, and no more once their
    /// payloads reach `payload_budget` bytes; nothing is taken unless the connection is open
    /// with no message in progress.
    ///
    /// Give the application each message only while
    /// [`delivers_messages`](Self::delivers_messages): it may close the connection while it
    /// handles an earlier one.
    #[inline(always)]
    pub fn receive_batch(
        &mut self,
        input: &mut [u8],
        now: Instant,
        payload_budget: usize,
        batch: &mut Batch,
    ) {
        self.lifecycle
            .receive_batch(input, now, &self.config.limits, payload_budget, batch)
    }

    /// Whether a message received now goes to the application: while the connection is open,
    /// and not after our Close (§5.5.1: the application asked to stop).
    #[inline(always)]
    pub fn delivers_messages(&self) -> bool {
        self.lifecycle.delivers_messages()
    }

    /// Room for the next payload bytes of a large frame, to be read straight into the message
    /// being assembled instead of passed to [`handle_input`](Self::handle_input) (see
    /// [`Connection::payload_room`](crate::connection::Connection::payload_room)). `None` when
    /// input should go to `handle_input`, and always while input is left over from an earlier
    /// read (it comes first).
    pub fn payload_room(&mut self) -> Option<&mut [u8]> {
        self.lifecycle.payload_room()
    }

    /// Takes `len` bytes read into [`payload_room`](Self::payload_room), as
    /// [`handle_input`](Self::handle_input) takes input.
    pub fn receive_in_place(
        &mut self,
        len: usize,
        now: Instant,
        shared: &mut SharedDeflate,
    ) -> Result<Received<ServerEvent<'static>>, Error> {
        let received = self
            .lifecycle
            .receive_in_place(len, now, &self.config.limits, shared, FirstToClose::Us)
            .map_err(Error::Protocol)?;
        Ok(received.map(ServerEvent::from))
    }

    /// The peer ended its stream (TCP FIN). What was queued is still written, then our side is
    /// closed too.
    pub fn handle_eof(&mut self, now: Instant) {
        match self.lifecycle.handshake_mut() {
            // The answer to the request is still to come: the connection closes after it.
            Some(Handshake::AwaitingAnswer { peer_eof, .. }) => *peer_eof = true,
            _ => self.lifecycle.handle_eof(now),
        }
    }

    /// Acts on the deadline that passed by `now`, if any: the handshake deadline, the keepalive
    /// ping, the pong deadline, or the close deadlines.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.lifecycle.handle_timeout(now, &self.config.timeouts());
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.lifecycle.poll_timeout(&self.config.timeouts())
    }

    /// Whether the transport should now be closed: the connection is over, its output (and end
    /// of stream) is written and the peer closed its side, or a deadline passed.
    pub fn is_closed(&self) -> bool {
        self.lifecycle.is_closed()
    }

    /// Whether the WebSocket connection is open for sending (the handshake is complete and no
    /// Close was sent or received).
    pub fn is_open(&self) -> bool {
        self.lifecycle.is_open()
    }

    /// Whether work is left that needs no more input (a compressed message being inflated a
    /// step at a time): call [`handle_input`](Self::handle_input) again, with no new bytes if
    /// none came.
    pub fn has_pending_work(&self) -> bool {
        self.lifecycle.has_pending_work()
    }

    /// Whether the request head is still being read or answered.
    pub fn is_handshaking(&self) -> bool {
        self.lifecycle.is_handshaking()
    }

    /// How the connection ended: `Some` once a connection that was open has ended or started
    /// to close, `None` before, and for a connection that never opened.
    pub fn closure(&self) -> Option<&Closure> {
        self.lifecycle.closure()
    }

    /// Ends an open connection now for a reason of the caller's (a server shedding load): a
    /// Close with `code` and `reason` is queued after what is queued, the message being
    /// assembled is dropped, and TCP closes as after a failure. A connection that is not open
    /// is aborted.
    pub fn terminate(&mut self, code: CloseCode, reason: &'static str, now: Instant) {
        self.lifecycle.terminate(code, reason, now);
    }

    /// Bytes held for the message being assembled (0 when none is).
    pub fn buffered(&self) -> usize {
        self.lifecycle.buffered()
    }

    /// Ends the connection at once for a reason of the caller's (an IO error, a slow consumer,
    /// the end of a graceful shutdown). Queued output is dropped with the transport.
    pub fn abort(&mut self, reason: &'static str) {
        self.lifecycle.abort(reason);
    }

    /// The bytes to write, and the end of the output stream.
    pub fn outbox(&mut self) -> &mut Outbox {
        self.lifecycle.outbox()
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.lifecycle.queued()
    }

    /// Takes every queued byte at once (for tests and simple shells that copy).
    pub fn take_output(&mut self) -> Vec<u8> {
        self.lifecycle.take_output()
    }

    /// Queues a data message (compressed if permessage-deflate is in use and it is long enough;
    /// `shared` lends the compressor).
    #[inline(always)]
    pub fn send(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        shared: &mut SharedDeflate,
    ) -> Result<(), SendError> {
        self.lifecycle.send(kind, payload, shared)
    }

    /// Queues a data message whose payload is an owned buffer, without copying it if it goes
    /// out uncompressed.
    pub fn send_owned(
        &mut self,
        kind: MessageKind,
        payload: Vec<u8>,
        shared: &mut SharedDeflate,
    ) -> Result<(), SendError> {
        self.lifecycle.send_owned(kind, payload, shared)
    }

    /// Queues a frame encoded once for many connections, by reference. Call
    /// [`PreparedFrame::compress_for`] with [`compression_window`](Self::compression_window)
    /// first if this connection compresses such a message; otherwise it gets the plain frame.
    pub fn send_prepared(&mut self, frame: &PreparedFrame) -> Result<(), SendError> {
        let (session, outbox) = self.lifecycle.session()?;
        session.connection.send_prepared(frame, outbox)
    }

    /// Sends frames encoded once for many connections, in order. When nothing is queued ahead
    /// of them they are gathered into `scratch` and written to `writer` at once, and only what
    /// the writer does not take is queued; otherwise they are queued after what waits. Returns
    /// how many bytes went to the writer. Meant for small frames (a large one is better queued
    /// by reference with [`send_prepared`](Self::send_prepared) than copied). As there, call
    /// [`PreparedFrame::compress_for`] first for a message this connection compresses.
    ///
    /// An error from the writer is not returned: the frames are queued, and the error shows
    /// again when the queue is written.
    pub fn send_prepared_through<'f>(
        &mut self,
        frames: impl IntoIterator<Item = &'f PreparedFrame>,
        scratch: &mut Vec<u8>,
        writer: &mut impl Write,
    ) -> Result<usize, SendError> {
        let (session, outbox) = self.lifecycle.session()?;
        let connection = &session.connection;
        connection.check_open()?;
        if !outbox.is_empty() {
            for frame in frames {
                outbox.push_shared(connection.prepared_bytes(frame)?);
            }
            return Ok(0);
        }
        scratch.clear();
        for frame in frames {
            scratch.extend_from_slice(connection.prepared_bytes(frame)?);
        }
        let written = writer.write(scratch).unwrap_or(0);
        if written < scratch.len() {
            outbox.append(|buf| buf.extend_from_slice(&scratch[written..]));
        }
        Ok(written)
    }

    /// The window this connection compresses a `len`-byte message with, if it compresses it.
    pub fn compression_window(&self, len: usize) -> Option<u8> {
        self.lifecycle.compression_window(len)
    }

    /// Sends a data message by writing it straight to `writer` from where it lies, when nothing
    /// is queued ahead of it and it goes out as it is (uncompressed, unmasked): a large message
    /// is then never copied. Whatever the writer does not take is queued, as is the whole
    /// message in every other case. Returns how many bytes went to the writer.
    ///
    /// An error from the writer is not returned: the message is queued, and the error shows
    /// again when the queue is written.
    pub fn send_through(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        writer: &mut impl Write,
        shared: &mut SharedDeflate,
    ) -> Result<usize, SendError> {
        let (session, outbox) = self.lifecycle.session()?;
        let connection = &mut session.connection;
        let header = match connection.direct_write_header(kind, payload.len())? {
            Some((header, len)) if outbox.is_empty() => (header, len),
            _ => return connection.send(kind, payload, outbox, shared).map(|()| 0),
        };
        let header = &header.0[..header.1];
        let slices = [IoSlice::new(header), IoSlice::new(payload)];
        let written = writer.write_vectored(&slices).unwrap_or(0);
        if written < header.len() + payload.len() {
            let (header_rest, payload_rest) = match written.checked_sub(header.len()) {
                None => (&header[written..], payload),
                Some(into_payload) => (&[][..], &payload[into_payload..]),
            };
            outbox.append(|buf| {
                buf.extend_from_slice(header_rest);
                buf.extend_from_slice(payload_rest);
            });
        }
        Ok(written)
    }

    /// Queues a ping (§5.5.2).
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.lifecycle.ping(payload)
    }

    /// Starts the closing handshake (§7.1.2) with `code` and `reason` (cut to 123 bytes). If the
    /// peer's Close does not come within the close timeout, the transport is closed anyway.
    pub fn close(&mut self, code: CloseCode, reason: &str, now: Instant) -> Result<(), SendError> {
        self.lifecycle.close(code, reason, now)
    }
}

impl ServerConfig {
    /// The deadlines of a connection.
    fn timeouts(&self) -> Timeouts {
        Timeouts {
            handshake: self.handshake_timeout,
            idle: self.idle_timeout,
            pong: self.pong_timeout,
            close: self.close_timeout,
        }
    }
}

/// Queues a response's bytes in `outbox`.
fn queue_response(response: &Response, outbox: &mut Outbox) {
    outbox.append(|buf| response.write_to(buf));
}

#[cfg(test)]
mod tests;
