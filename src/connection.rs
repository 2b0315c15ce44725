//! RFC 6455 §5 and §7: the framing machine both roles share. It turns bytes into messages and
//! control frames, answers what the protocol says must be answered (pongs, the close reply, the
//! close that fails the connection), and tracks the closing handshake.
//!
//! <https://www.rfc-editor.org/rfc/rfc6455#section-7>
//!
//! A [`Connection`] takes bytes in ([`Connection::receive`]) and gives back how many it consumed
//! and at most one [`Event`] per call. Frames it must send by itself, and the frames the
//! application sends, go into the caller's [`Outbox`]. It never touches a socket or a clock; what
//! comes before it (the opening handshake) and after it (closing TCP) is the job of the
//! connection of each role, such as [`ServerConnection`](crate::server_connection::ServerConnection).
//!
//! ```text
//!            close()             peer's Close
//!   ┌──────┐ ───────► ┌───────────┐ ─────────► ┌───────────────┐
//!   │ Open │          │ CloseSent │            │ CloseReceived │
//!   └──────┘ ──────────────────────────────────►└───────────────┘
//!      │ │     peer's Close (our reply queued)
//!      │ └──────────────────────────────────────►┌────────┐
//!      └─── (from Open or CloseSent) ───────────►│ Failed │
//!            a broken rule: our Close with its   └────────┘
//!            code queued (§7.1.7)
//! ```

use crate::batch::Batch;
use crate::close::{self, CloseCode, CloseFrame};
use crate::deflate::{Deflate, Negotiated, SharedDeflate};
use crate::entropy::Entropy;
use crate::error::{ProtocolError, SendError};
use crate::frame::{self, FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, Opcode, Status};
use crate::limits::Limits;
use crate::mask::apply_mask;
use crate::message::{self, Assembler, Message, MessageKind};
use crate::outbox::Outbox;
use crate::prepared::PreparedFrame;
use bytes::Bytes;
use std::borrow::Cow;

/// Which end of the connection this is (§5.1: clients mask, servers do not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Receives masked frames, sends unmasked ones.
    Server,
    /// Receives unmasked frames, sends masked ones.
    Client,
}

/// How one end encodes the frames it sends: its role, and for a client where its masking keys
/// come from. The server's end has no state, so a server connection pays nothing for it.
//= https://www.rfc-editor.org/rfc/rfc6455#section-5.4
//= type=exception
//= reason=Rules for intermediaries: an endpoint of either role here is not one.
//# o  As control frames cannot be fragmented, an intermediary MUST NOT
//# attempt to change the fragmentation of a control frame.
//# o  An intermediary MUST NOT change the fragmentation of a message if
//# any reserved bit values are used and the meaning of these values
//# is not known to the intermediary.
//# o  An intermediary MUST NOT change the fragmentation of any message
//# in the context of a connection where extensions have been
//# negotiated and the intermediary is not aware of the semantics of
//# the negotiated extensions.  Similarly, an intermediary that didn't
//# see the WebSocket handshake (and wasn't notified about its
//# content) that resulted in a WebSocket connection MUST NOT change
//# the fragmentation of any message of such connection.
pub trait Endpoint {
    /// Which end this is.
    const ROLE: Role;
    /// The masking key for the next frame this end sends: none for a server, a fresh one for a
    /// client.
    fn next_mask(&mut self) -> Option<[u8; 4]>;
}

/// A server's end: its frames go out unmasked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerEnd;

impl Endpoint for ServerEnd {
    const ROLE: Role = Role::Server;

    fn next_mask(&mut self) -> Option<[u8; 4]> {
        //= https://www.rfc-editor.org/rfc/rfc6455#section-5.1
        //# A server MUST NOT mask any frames that it sends to the client.
        None
    }
}

/// A client's end: every frame it sends is masked with a fresh key drawn from `E`.
#[derive(Debug, Clone)]
pub struct ClientEnd<E>(pub E);

impl<E: Entropy> Endpoint for ClientEnd<E> {
    const ROLE: Role = Role::Client;

    fn next_mask(&mut self) -> Option<[u8; 4]> {
        //= https://www.rfc-editor.org/rfc/rfc6455#section-5.3
        //# When preparing a masked frame, the client MUST pick a fresh masking
        //# key from the set of allowed 32-bit values.
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-10.3
        //# Clients MUST choose a new masking key for each frame, using an
        //# algorithm that cannot be predicted by end applications that provide
        //# data.
        let mut key = [0u8; 4];
        self.0.fill(&mut key);
        Some(key)
    }
}

/// Where the connection is in the closing handshake (§7). Each state says what is true.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Data flows both ways.
    Open,
    /// We sent a Close and wait for the peer's. Data that still arrives is read; a server drops
    /// it, a client delivers it (the answers to what it sent before closing). Pings are still
    /// answered (§5.5.2).
    CloseSent,
    /// The peer's Close was received, and answered if we had not sent ours: the closing
    /// handshake is complete. Nothing more is read or sent.
    CloseReceived,
    /// We failed the connection (§7.1.7): our Close with the error's code is queued (unless we
    /// had sent one already). Nothing more is read or sent.
    Failed,
}

/// Something the peer said.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A complete text or binary message.
    Message(Message<'a>),
    /// A ping; its pong is already queued, unless the peer's Close came first (§5.5.2).
    Ping(&'a [u8]),
    /// A pong, solicited or not (§5.5.3).
    Pong(&'a [u8]),
    /// The peer's Close, with its code and reason if it sent one (§5.5.1). The reply, if one is
    /// due, is already queued.
    Close(Option<CloseFrame<'a>>),
}

/// The result of one call that takes input: how much of it was used, and what it completed.
#[derive(Debug, PartialEq, Eq)]
pub struct Received<E> {
    /// How many bytes from the front of the input were used. Keep the rest for the next call.
    pub consumed: usize,
    /// The event those bytes completed, if any.
    pub event: Option<E>,
    /// Work is left on input already consumed (a compressed message is inflated a bounded
    /// amount per call): call again, even with no new input.
    pub unfinished: bool,
}

impl<E> Received<E> {
    /// Whether the call made no progress and has none to make: the input holds only part of a
    /// header or of a control frame (or of a request head), and more bytes are needed.
    pub fn needs_more(&self) -> bool {
        self.consumed == 0 && self.event.is_none() && !self.unfinished
    }

    pub(crate) fn nothing() -> Self {
        Received::used(0, None)
    }

    pub(crate) fn used(consumed: usize, event: Option<E>) -> Self {
        Received {
            consumed,
            event,
            unfinished: false,
        }
    }

    /// The same result for an event of another type.
    pub(crate) fn map<F>(self, map: impl FnOnce(E) -> F) -> Received<F> {
        Received {
            consumed: self.consumed,
            event: self.event.map(map),
            unfinished: self.unfinished,
        }
    }
}

/// The data frame whose payload is still arriving.
#[derive(Debug, Clone, Copy)]
struct PayloadProgress {
    fin: bool,
    mask: Option<[u8; 4]>,
    remaining: u64,
    /// Payload bytes of this frame already received (the masking key offset).
    received: u64,
}

/// The least payload still to come in a frame for [`Connection::payload_room`] to lend room for
/// it, in bytes: below it, reading into the IO shell's buffer and copying costs less than a read
/// of its own.
pub const READ_IN_PLACE_MIN: usize = 64 * 1024;
/// The most room [`Connection::payload_room`] lends at once, in bytes (a read's worth).
pub const READ_IN_PLACE_MAX: usize = 256 * 1024;

/// The framing state of one WebSocket connection after its opening handshake.
///
/// ```
/// use rfc6455::connection::{Connection, Event, ServerEnd};
/// use rfc6455::deflate::SharedDeflate;
/// use rfc6455::limits::Limits;
/// use rfc6455::outbox::Outbox;
///
/// let mut connection = Connection::new(ServerEnd);
/// let (mut outbox, mut shared, limits) = (Outbox::new(), SharedDeflate::new(), Limits::default());
/// // RFC 6455 §5.7: a single-frame masked text message containing "Hello".
/// let mut input = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
/// let received = connection.receive(&mut input, &mut outbox, &limits, &mut shared).unwrap();
/// assert_eq!(received.consumed, 11);
/// let Some(Event::Message(message)) = received.event else { panic!("expected a message") };
/// assert_eq!(message.as_text(), Some("Hello"));
/// // Echo it: a server frame is unmasked, "Hello" in 7 bytes.
/// connection.send(message.kind(), message.as_bytes(), &mut outbox, &mut shared).unwrap();
/// assert_eq!(outbox.len(), 7);
/// ```
#[derive(Debug)]
pub struct Connection<P = ServerEnd> {
    end: P,
    state: State,
    /// The message still arriving, and its frame whose payload is still arriving. Boxed, so that
    /// an idle connection carries one null pointer for it.
    incoming: Option<Box<Incoming>>,
    /// RFC 7692 permessage-deflate, when negotiated.
    deflate: Option<Deflate>,
}

/// A message that arrives in several frames, or in one frame over several reads (or that is
/// still being inflated).
#[derive(Debug)]
struct Incoming {
    message: Assembler,
    frame: Option<PayloadProgress>,
    /// The final frame's payload has all arrived.
    ended: bool,
}

impl<P: Endpoint> Connection<P> {
    /// A connection that just completed its opening handshake, at the given end.
    pub fn new(end: P) -> Self {
        Connection {
            end,
            state: State::Open,
            incoming: None,
            deflate: None,
        }
    }

    /// Applies permessage-deflate (RFC 7692), as negotiated in the opening handshake.
    pub fn with_deflate(mut self, deflate: Deflate) -> Self {
        self.deflate = Some(deflate);
        self
    }

    /// The negotiated permessage-deflate parameters, if the extension is in use.
    pub fn deflate_params(&self) -> Option<Negotiated> {
        self.deflate.as_ref().map(Deflate::params)
    }

    /// The window (in bits) this connection would compress a `len`-byte message with, or `None`
    /// when it sends such a message uncompressed (no permessage-deflate, or under the threshold).
    pub fn compression_window(&self, len: usize) -> Option<u8> {
        self.deflate
            .as_ref()
            .filter(|d| d.should_compress(len))
            .map(|d| d.params().our_window_bits)
    }

    /// The closing-handshake state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The role this end plays.
    pub fn role(&self) -> Role {
        P::ROLE
    }

    /// Bytes held for the message being assembled (0 when none is): never more than
    /// `Limits::max_message_size`.
    pub fn buffered(&self) -> usize {
        self.incoming
            .as_ref()
            .map_or(0, |incoming| incoming.message.len())
    }

    /// Whether work is left that needs no more input: a compressed message being inflated a
    /// step at a time ([`Received::unfinished`]).
    pub fn has_pending_work(&self) -> bool {
        self.incoming
            .as_ref()
            .is_some_and(|incoming| incoming.message.has_work())
    }

    /// Whether a data frame's payload is partly received (the next input continues it).
    pub fn is_mid_frame(&self) -> bool {
        self.incoming
            .as_ref()
            .is_some_and(|incoming| incoming.frame.is_some())
    }

    /// Processes bytes from the peer, unmasking them in place.
    ///
    /// Consumes at most one frame that can complete something (or the part of a data frame's
    /// payload that has arrived), after any non-final fragments of a message before it, and
    /// returns at most one event. Call it again with the unconsumed rest until
    /// [`Received::needs_more`]. A partial header or a partial control frame is not consumed;
    /// present it again with more bytes appended (at most [`MAX_HEADER_LEN`] + 125 bytes).
    /// `shared` inflates compressed messages for connections without their own context.
    ///
    /// On a protocol error the connection is failed (§7.1.7): a Close with the error's code and
    /// reason is queued (unless we had sent one), the state becomes [`State::Failed`], and the
    /// error is returned. Input after that, or after the peer's Close, is ignored.
    #[inline(always)]
    pub fn receive<'a>(
        &mut self,
        input: &'a mut [u8],
        out: &mut Outbox,
        limits: &Limits,
        shared: &mut SharedDeflate,
    ) -> Result<Received<Event<'a>>, ProtocolError> {
        //= https://www.rfc-editor.org/rfc/rfc6455#section-7.1.7
        //# An endpoint MUST NOT continue to attempt to
        //# process data (including a responding Close frame) from the remote
        //# endpoint after being instructed to _Fail the WebSocket Connection_.
        if matches!(self.state, State::CloseReceived | State::Failed) {
            return Ok(Received::used(input.len(), None));
        }
        let mut received = match self.receive_fragments(input, out, limits, shared) {
            Ok((fragments, false)) => {
                let mut received = self.receive_frame(&mut input[fragments..], out, limits, shared);
                if let Ok(received) = &mut received {
                    received.consumed += fragments;
                }
                received
            }
            Ok((fragments, true)) => Ok(Received {
                consumed: fragments,
                event: None,
                unfinished: true,
            }),
            Err(error) => Err(error),
        };
        self.settle(&mut received, out);
        received
    }

    /// Takes the non-final fragments of a message at the front of `input` (§5.4), which only
    /// add to the message being assembled and complete nothing, so that a peer sending a
    /// message in many small fragments costs one call for the lot rather than one per frame.
    /// Stops before any other frame (a final fragment, a control frame, a whole message), at a
    /// frame whose payload has not all arrived, and when a compressed message has inflating
    /// left to do. Returns the bytes used, and whether inflating is left; an error is
    /// [`receive`](Self::receive)'s to settle, as one from the frame after the run.
    fn receive_fragments(
        &mut self,
        input: &mut [u8],
        out: &mut Outbox,
        limits: &Limits,
        shared: &mut SharedDeflate,
    ) -> Result<(usize, bool), ProtocolError> {
        let mut used = 0;
        // Not mid-frame (the input would continue a payload) nor with inflating left (which
        // comes first, and may complete a message).
        while !self.is_mid_frame()
            && !self.has_pending_work()
            && input
                .get(used)
                .is_some_and(|&first| frame::is_non_final_data_frame(first))
        {
            let received = self.receive_frame(&mut input[used..], out, limits, shared)?;
            debug_assert!(received.event.is_none(), "a fragment completes nothing");
            used += received.consumed;
            if received.unfinished {
                return Ok((used, true));
            }
            if received.consumed == 0 {
                break; // the header is not all there yet
            }
        }
        Ok((used, false))
    }

    /// What a call that took input returns: on an error, the connection is failed first; what
    /// was received loses a message the application is not to get. (Both change the result in
    /// place: rebuilding the whole `Received` on every frame cost a store-forwarding stall per
    /// message in the echo's profile.)
    #[inline(always)]
    fn settle(
        &mut self,
        received: &mut Result<Received<Event<'_>>, ProtocolError>,
        out: &mut Outbox,
    ) {
        match received {
            Ok(received) => self.withhold_undeliverable(received),
            Err(error) => self.fail(*error, out),
        }
    }

    /// Drops from what was received a message the application is not to get.
    fn withhold_undeliverable(&self, received: &mut Received<Event<'_>>) {
        if !self.delivers_messages() && matches!(received.event, Some(Event::Message(_))) {
            received.event = None;
        }
    }

    /// Whether a message received now goes to the application. Every message does while the
    /// connection is open; after our Close, a client's still does and a server's does not.
    /// (Also the rule for the messages of a [`Batch`] taken before the application closed.)
    #[inline(always)]
    pub fn delivers_messages(&self) -> bool {
        //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5.1
        //= type=implication
        //= reason=A message that arrives after a server's Close is read but not delivered: the application asked to stop. A client's is delivered: it is the server's answer to what the client sent before closing (the echo of a terminal client's last line).
        //# However, there is no guarantee that the
        //# endpoint that has already sent a Close frame will continue to process
        //# data.
        self.state == State::Open || P::ROLE == Role::Client
    }

    /// Takes into `batch` (emptied first), from the front of `input`, the complete frames that
    /// each carry one whole uncompressed message, unmasking them in place, and stops before the
    /// first frame that is anything else (see [`crate::batch`]): read the messages from `input`
    /// ([`Batch::message`]), and give the input after [`Batch::consumed`] to
    /// [`receive`](Self::receive). Takes at most [`BATCH_MAX`](crate::batch::BATCH_MAX) messages, and no more once their
    /// payloads reach `payload_budget` bytes; takes nothing unless the connection is open with
    /// no message in progress.
    ///
    /// The application may close the connection while it handles one of the messages: give it
    /// each only while [`delivers_messages`](Self::delivers_messages).
    #[inline(always)]
    pub fn receive_batch(
        &mut self,
        input: &mut [u8],
        limits: &Limits,
        payload_budget: usize,
        batch: &mut Batch,
    ) {
        batch.clear();
        if self.state != State::Open || self.incoming.is_some() {
            return;
        }
        // A batch addresses its input with 32-bit offsets.
        let end = input.len().min(u32::MAX as usize);
        let mut pos = 0;
        let mut budget = payload_budget;
        while budget > 0 && !batch.is_full() {
            // Any failure, and any frame but a whole uncompressed message's, ends the batch
            // with that frame untouched: `receive` reports or handles it.
            let Ok(Status::Complete((header, header_len))) = frame::decode_header(&input[pos..end])
            else {
                break;
            };
            let kind = match header.opcode {
                Opcode::Text => MessageKind::Text,
                Opcode::Binary => MessageKind::Binary,
                _ => break,
            };
            if !header.fin || header.rsv1 || self.check_header(&header, limits).is_err() {
                break;
            }
            // The limits checked above keep the length within memory.
            let start = pos + header_len;
            let Some(payload) = input[..end].get_mut(start..start + header.payload_len as usize)
            else {
                break;
            };
            if unmask_whole_message(kind, header.mask, payload).is_err() {
                // Left as it came for `receive` to fail the connection on (after the messages
                // before it are handled): masking again undoes the unmasking.
                if let Some(key) = header.mask {
                    apply_mask(payload, key, 0);
                }
                break;
            }
            budget = budget.saturating_sub(payload.len());
            pos = start + payload.len();
            batch.push(kind, start..pos);
        }
    }

    #[inline(always)]
    fn receive_frame<'a>(
        &mut self,
        input: &'a mut [u8],
        out: &mut Outbox,
        limits: &Limits,
        shared: &mut SharedDeflate,
    ) -> Result<Received<Event<'a>>, ProtocolError> {
        // A compressed message still being inflated goes on before any new input is read.
        if let Some(incoming) = self.incoming.as_deref_mut()
            && incoming.message.has_work()
        {
            if incoming.message.inflate(self.deflate.as_mut(), limits)? {
                return Ok(Received {
                    consumed: 0,
                    event: None,
                    unfinished: true,
                });
            }
            if let Some(message) = self.take_complete_message(shared)? {
                return Ok(Received::used(0, Some(Event::Message(message))));
            }
        }
        if self.is_mid_frame() {
            return self.receive_payload(input, limits, shared);
        }
        //= https://www.rfc-editor.org/rfc/rfc6455#section-6.2
        //# Incoming data MUST be parsed as WebSocket frames
        //# as defined in Section 5.2.
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-5.4
        //# o  Clients and servers MUST support receiving both fragmented and
        //# unfragmented messages.
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-5.4
        //# o  An endpoint MUST be capable of handling control frames in the
        //# middle of a fragmented message.
        let (header, header_len) = match frame::decode_header(input)? {
            Status::Partial => return Ok(Received::nothing()),
            Status::Complete(decoded) => decoded,
        };
        self.check_header(&header, limits)?;
        // A control frame's length fits in 7 bits (checked by decode_header), a data frame's
        // length was checked against the limits above; neither allocates from it.
        let payload_len = header.payload_len as usize;
        let available = input.len() - header_len;
        let (_, rest) = input.split_at_mut(header_len);

        if header.opcode.is_control() {
            if available < payload_len {
                return Ok(Received::nothing());
            }
            let payload = rest.split_at_mut(payload_len).0;
            if let Some(key) = header.mask {
                apply_mask(payload, key, 0);
            }
            //= https://www.rfc-editor.org/rfc/rfc6455#section-6.2
            //# If a control frame (Section 5.5) is
            //# received, the frame MUST be handled as defined by Section 5.5.
            let event = self.receive_control(header.opcode, payload, out)?;
            return Ok(Received::used(header_len + payload_len, Some(event)));
        }

        //= https://www.rfc-editor.org/rfc/rfc6455#section-6.2
        //# Upon
        //# receiving a data frame (Section 5.6), the endpoint MUST note the
        //# /type/ of the data as defined by the opcode (frame-opcode) from
        //# Section 5.2.
        let kind = match header.opcode {
            Opcode::Text => Some(MessageKind::Text),
            Opcode::Binary => Some(MessageKind::Binary),
            _ => None,
        };
        if let (Some(kind), true, true, false) =
            (kind, header.fin, available >= payload_len, header.rsv1)
        {
            // The common case: a whole single-frame message in the input. Deliver it in place.
            let payload = rest.split_at_mut(payload_len).0;
            unmask_whole_message(kind, header.mask, payload)?;
            let payload: &'a [u8] = payload;
            let message = Message::new(kind, Cow::Borrowed(payload));
            return Ok(Received::used(
                header_len + payload_len,
                Some(Event::Message(message)),
            ));
        }

        // A fragment, or a frame whose payload has not fully arrived: stream it into the
        // assembler so that text is validated as it arrives and only a header is ever left over.
        let progress = PayloadProgress {
            fin: header.fin,
            mask: header.mask,
            remaining: header.payload_len,
            received: 0,
        };
        match (kind, self.incoming.as_deref_mut()) {
            (Some(kind), _) => {
                let compressed = match (header.rsv1, self.deflate.as_mut()) {
                    (true, Some(deflate)) => Some((deflate, &mut *shared)),
                    _ => None,
                };
                let message = Assembler::new(kind, compressed);
                self.incoming = Some(Box::new(Incoming {
                    message,
                    frame: Some(progress),
                    ended: false,
                }));
            }
            (None, Some(incoming)) => incoming.frame = Some(progress),
            (None, None) => unreachable!("check_header rejects a continuation without a message"),
        }
        let mut received = self.receive_payload(rest, limits, shared)?;
        received.consumed += header_len;
        Ok(received)
    }

    /// The checks on a header that depend on the role and on the message in progress.
    #[inline(always)]
    fn check_header(&mut self, header: &FrameHeader, limits: &Limits) -> Result<(), ProtocolError> {
        //= https://www.rfc-editor.org/rfc/rfc6455#section-10.4
        //# Implementations that have implementation- and/or platform-specific
        //# limitations regarding the frame size or total message size after
        //# reassembly from multiple frames MUST protect themselves against
        //# exceeding those limits.
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-10.4
        //# (For example, a malicious endpoint can try
        //# to exhaust its peer's memory or mount a denial-of-service attack by
        //# sending either a single big frame (e.g., of size 2**60) or by sending
        //# a long stream of small frames that are a part of a fragmented
        //# message.)  Such an implementation SHOULD impose a limit on frame
        //# sizes and the total message size after reassembly from multiple
        //# frames.
        // RFC 7692 §6: permessage-deflate gives RSV1 a meaning on the first frame of a data
        // message only: "An endpoint MUST NOT set the "Per-Message Compressed" bit of control
        // frames and non-first fragments of a data message."
        let compressed_first_frame = header.rsv1
            && self.deflate.is_some()
            && matches!(header.opcode, Opcode::Text | Opcode::Binary);
        //= https://www.rfc-editor.org/rfc/rfc6455#section-5.2
        //# If a nonzero value is received and none of the negotiated extensions
        //# defines the meaning of such a nonzero value, the receiving endpoint
        //# MUST _Fail the WebSocket Connection_.
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-10.7
        //# Incoming data MUST always be validated by both clients and servers.
        if (header.rsv1 && !compressed_first_frame) || header.rsv2 || header.rsv3 {
            return Err(ProtocolError::ReservedBitsSet);
        }
        match (P::ROLE, header.mask.is_some()) {
            // The framing machine does not know whether TLS is under it: the check is the same
            // over TLS (the server's TLS session hands it the plaintext).
            //
            //= https://www.rfc-editor.org/rfc/rfc6455#section-5.1
            //# (Note
            //# that masking is done whether or not the WebSocket Protocol is running
            //# over TLS.)  The server MUST close the connection upon receiving a
            //# frame that is not masked.
            (Role::Server, false) => return Err(ProtocolError::UnmaskedClientFrame),
            //= https://www.rfc-editor.org/rfc/rfc6455#section-5.1
            //# A client MUST close a connection if it detects a masked
            //# frame.
            (Role::Client, true) => return Err(ProtocolError::MaskedServerFrame),
            _ => {}
        }
        match (header.opcode, self.incoming.as_deref_mut()) {
            //= https://www.rfc-editor.org/rfc/rfc6455#section-5.4
            //# A fragmented message consists of a single frame with the FIN bit
            //# clear and an opcode other than 0, followed by zero or more frames
            //# with the FIN bit clear and the opcode set to 0, and terminated by
            //# a single frame with the FIN bit set and an opcode of 0.
            (Opcode::Continuation, None) => Err(ProtocolError::UnexpectedContinuation),
            (Opcode::Continuation, Some(incoming)) => {
                incoming.message.add_fragment(header.payload_len, limits)
            }
            //= https://www.rfc-editor.org/rfc/rfc6455#section-5.4
            //# o  The fragments of one message MUST NOT be interleaved between the
            //# fragments of another message unless an extension has been
            //# negotiated that can interpret the interleaving.
            //
            //= https://www.rfc-editor.org/rfc/rfc6455#section-5.4
            //# Since
            //# control frames cannot be fragmented, the type for all fragments in
            //# a message MUST be either text, binary, or one of the reserved
            //# opcodes.
            (Opcode::Text | Opcode::Binary, Some(_)) => Err(ProtocolError::ExpectedContinuation),
            (Opcode::Text | Opcode::Binary, None) => {
                message::check_message_size(0, header.payload_len, header.rsv1, limits)
            }
            _ => Ok(()),
        }
    }

    /// Takes the next piece of the current data frame's payload.
    fn receive_payload<'a>(
        &mut self,
        input: &'a mut [u8],
        limits: &Limits,
        shared: &mut SharedDeflate,
    ) -> Result<Received<Event<'a>>, ProtocolError> {
        let take = self.frame_progress().remaining.min(input.len() as u64) as usize;
        let piece = &mut input[..take];
        let (mask, message_rest) = self.count_piece(take);
        let incoming = self.incoming.as_deref_mut().expect("mid-frame");
        incoming.message.push(piece, mask, message_rest)?;
        self.piece_received(take, limits, shared)
    }

    /// The frame whose payload is being received.
    fn frame_progress(&mut self) -> &mut PayloadProgress {
        self.incoming
            .as_deref_mut()
            .and_then(|incoming| incoming.frame.as_mut())
            .expect("called only mid-frame")
    }

    /// Counts the next `len` bytes of the frame's payload as received. Returns the masking key
    /// with the offset of the first of them in the frame's payload, and, in the message's final
    /// frame, how many of its bytes are still to come after them.
    fn count_piece(&mut self, len: usize) -> (Option<([u8; 4], usize)>, Option<u64>) {
        let progress = self.frame_progress();
        assert!(len as u64 <= progress.remaining, "past the frame's end");
        let mask = progress
            .mask
            .map(|key| (key, (progress.received % 4) as usize));
        progress.received += len as u64;
        progress.remaining -= len as u64;
        (mask, progress.fin.then_some(progress.remaining))
    }

    /// Room for the next payload bytes of the frame being received, to be read straight into the
    /// message being assembled rather than passed to [`receive`](Self::receive) (which copies
    /// them there): offered for an uncompressed data frame with at least [`READ_IN_PLACE_MIN`]
    /// bytes still to come, at most [`READ_IN_PLACE_MAX`] at once and never more than the
    /// message's payload received so far (so a peer that announces a large frame and sends
    /// little makes the receiver zero and hold at most as much again). After reading into it,
    /// call [`receive_in_place`](Self::receive_in_place) with the number of bytes read.
    pub fn payload_room(&mut self) -> Option<&mut [u8]> {
        if matches!(self.state, State::CloseReceived | State::Failed) {
            return None;
        }
        let incoming = self.incoming.as_deref_mut()?;
        let progress = incoming.frame.as_ref()?;
        if incoming.message.is_compressed() {
            return None;
        }
        let len = (progress.remaining.min(READ_IN_PLACE_MAX as u64) as usize)
            .min(incoming.message.payload_len());
        if len < READ_IN_PLACE_MIN {
            return None;
        }
        let rest = progress.fin.then(|| progress.remaining - len as u64);
        Some(incoming.message.room(len, rest))
    }

    /// Takes `len` payload bytes read into the room [`payload_room`](Self::payload_room) lent,
    /// as [`receive`](Self::receive) takes input: unmasked, validated, and the message delivered
    /// if they complete it (always owned: its payload is the buffer they were read into).
    pub fn receive_in_place(
        &mut self,
        len: usize,
        out: &mut Outbox,
        limits: &Limits,
        shared: &mut SharedDeflate,
    ) -> Result<Received<Event<'static>>, ProtocolError> {
        let (mask, _) = self.count_piece(len);
        let incoming = self.incoming.as_deref_mut().expect("mid-frame");
        let mut received = incoming
            .message
            .fill(len, mask)
            .and_then(|()| self.piece_received(len, limits, shared));
        self.settle(&mut received, out);
        received
    }

    /// After `take` bytes of the frame's payload were added to the message: ends the frame and
    /// the message input as they are complete, inflates what it can, and delivers the message
    /// once it is whole.
    fn piece_received(
        &mut self,
        take: usize,
        limits: &Limits,
        shared: &mut SharedDeflate,
    ) -> Result<Received<Event<'static>>, ProtocolError> {
        let incoming = self
            .incoming
            .as_deref_mut()
            .expect("a piece of a frame was received");
        let progress = incoming
            .frame
            .as_ref()
            .expect("a piece of a frame was received");
        let (frame_done, fin) = (progress.remaining == 0, progress.fin);
        if frame_done {
            incoming.frame = None;
            if fin {
                incoming.ended = true;
                incoming.message.end_input();
            }
        }
        if incoming.message.inflate(self.deflate.as_mut(), limits)? {
            return Ok(Received {
                consumed: take,
                event: None,
                unfinished: true,
            });
        }
        let message = self.take_complete_message(shared)?;
        Ok(Received::used(take, message.map(Event::Message)))
    }

    /// The message in progress, if every frame of it arrived and (compressed) it is inflated.
    fn take_complete_message(
        &mut self,
        shared: &mut SharedDeflate,
    ) -> Result<Option<Message<'static>>, ProtocolError> {
        let complete = self
            .incoming
            .as_ref()
            .is_some_and(|incoming| incoming.message.is_complete(incoming.ended));
        if !complete {
            return Ok(None);
        }
        //= https://www.rfc-editor.org/rfc/rfc6455#section-6.2
        //# Subsequent data frames MUST be interpreted as belonging to a new
        //# WebSocket message.
        let incoming = self.incoming.take().expect("checked above");
        incoming
            .message
            .finish(self.deflate.as_mut(), shared)
            .map(Some)
    }

    fn receive_control<'a>(
        &mut self,
        opcode: Opcode,
        payload: &'a [u8],
        out: &mut Outbox,
    ) -> Result<Event<'a>, ProtocolError> {
        match opcode {
            Opcode::Ping => {
                // The state is Open or CloseSent here: after the peer's Close nothing is read.
                //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5.2
                //# Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in
                //# response, unless it already received a Close frame.
                //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5.3
                //# A Pong frame sent in response to a Ping frame must have identical
                //# "Application data" as found in the message body of the Ping frame
                //# being replied to.
                //
                //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5.2
                //# It SHOULD
                //# respond with Pong frame as soon as is practical.
                let mut pong = Vec::with_capacity(MAX_HEADER_LEN + payload.len());
                self.encode(Opcode::Pong, false, payload, &mut pong);
                out.queue_pong(&pong);
                Ok(Event::Ping(payload))
            }
            Opcode::Pong => Ok(Event::Pong(payload)),
            Opcode::Close => {
                let close_frame = close::parse_close_payload(payload)?;
                if self.state == State::Open {
                    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5.1
                    //# If an endpoint receives a Close frame and did not previously send a
                    //# Close frame, the endpoint MUST send a Close frame in response.
                    //
                    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5.1
                    //# (When sending a Close frame in response, the endpoint typically
                    //# echos the status code it received.)  It SHOULD do so as soon as practical.
                    let code = close_frame.map(|f| f.code.0.to_be_bytes());
                    let payload = code.as_ref().map_or(&[][..], |c| &c[..]);
                    self.queue_frame(Opcode::Close, payload, out);
                }
                self.state = State::CloseReceived;
                self.incoming = None;
                Ok(Event::Close(close_frame))
            }
            _ => unreachable!("receive_control is called only for control opcodes"),
        }
    }

    /// RFC 6455 §7.1.7 "Fail the WebSocket Connection": send a Close with the error's code and
    /// reason (unless one was sent already) and stop processing.
    fn fail(&mut self, error: ProtocolError, out: &mut Outbox) {
        //= https://www.rfc-editor.org/rfc/rfc6455#section-7.1.7
        //# If _The WebSocket Connection is Established_ prior to the point where
        //# the endpoint is required to _Fail the WebSocket Connection_, the
        //# endpoint SHOULD send a Close frame with an appropriate status code
        //# (Section 7.4) before proceeding to _Close the WebSocket Connection_.
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-10.7
        //# If the invalid data was received after
        //# a successful WebSocket handshake, the endpoint SHOULD send a Close
        //# frame with an appropriate status code (Section 7.4) before proceeding
        //# to _Close the WebSocket Connection_.
        self.terminate(error.close_code(), error.reason(), out);
    }

    /// Ends the connection from this side at once: a Close with `code` and `reason` is queued
    /// (unless one was sent already), the message being assembled is dropped, and nothing more
    /// is read or sent. For a failure (§7.1.7), or a server that must shed load. A code that may
    /// not be sent (§7.4) gives a Close without a code.
    pub fn terminate(&mut self, code: CloseCode, reason: &str, out: &mut Outbox) {
        if self.state == State::Open {
            let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
            // A code that may not be sent leaves the Close without one (§7.4.1).
            let len = match code.is_valid_on_wire() {
                true => close::encode_close_payload(code, reason, &mut payload),
                false => 0,
            };
            self.queue_frame(Opcode::Close, &payload[..len], out);
        }
        self.state = State::Failed;
        self.incoming = None;
    }

    /// Queues a data message, compressed when permessage-deflate is in use and the message is
    /// long enough.
    #[inline(always)]
    pub fn send(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        out: &mut Outbox,
        shared: &mut SharedDeflate,
    ) -> Result<(), SendError> {
        //= https://www.rfc-editor.org/rfc/rfc6455#section-6.1
        //# To _Send a WebSocket Message_ comprising of /data/ over a WebSocket
        //# connection, an endpoint MUST perform the following steps.
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-6.1
        //# The endpoint MUST ensure the WebSocket connection is in the OPEN
        //# state (cf.
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-6.1
        //# Sections 4.1 and 4.2.2.)  If at any point the state of
        //# the WebSocket connection changes, the endpoint MUST abort the
        //# following steps.
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-5.4
        //= type=implication
        //= reason=A message is sent as one frame, appended whole to the outbox, which writes in order.
        //# o  Message fragments MUST be delivered to the recipient in the order
        //# sent by the sender.
        //# o  The fragments of one message MUST NOT be interleaved between the
        //# fragments of another message unless an extension has been
        //# negotiated that can interpret the interleaving.
        self.check_open()?;
        //= https://www.rfc-editor.org/rfc/rfc6455#section-6.1
        //# The opcode (frame-opcode) of the first frame containing the data
        //# MUST be set to the appropriate value from Section 5.2 for data
        //# that is to be interpreted by the recipient as text or binary
        //# data.
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-6.1
        //# The frame(s) that have been formed MUST be transmitted over the
        //# underlying network connection.
        let opcode = kind.opcode();
        match &self.deflate {
            Some(deflate) if deflate.should_compress(payload.len()) => {
                // RFC 7692 §7.2.1: "Compress all the octets of the payload of the message
                // using DEFLATE."
                let mut compressed = Vec::with_capacity(payload.len() / 2 + 16);
                deflate.compress(payload, &mut compressed, shared);
                out.append(|buf| self.encode(opcode, true, &compressed, buf));
            }
            _ => self.queue_frame(opcode, payload, out),
        }
        Ok(())
    }

    /// Queues a data message whose payload is already an owned buffer, without copying it when it
    /// goes out uncompressed (the buffer becomes an output chunk of its own after the header).
    pub fn send_owned(
        &mut self,
        kind: MessageKind,
        mut payload: Vec<u8>,
        out: &mut Outbox,
        shared: &mut SharedDeflate,
    ) -> Result<(), SendError> {
        if self.compression_window(payload.len()).is_some() {
            return self.send(kind, &payload, out, shared);
        }
        self.check_open()?;
        let header = self.header(kind.opcode(), false, payload.len());
        if let Some(key) = header.mask {
            apply_mask(&mut payload, key, 0);
        }
        let mut header_bytes = [0u8; MAX_HEADER_LEN];
        let header_len = frame::encode_header(&header, &mut header_bytes);
        out.append(|buf| buf.extend_from_slice(&header_bytes[..header_len]));
        out.push_shared(&Bytes::from(payload));
        Ok(())
    }

    /// Queues a frame that was encoded once for many recipients (a broadcast), without copying
    /// it: the compressed frame when this connection compresses such a message and one was made
    /// for its window, the plain frame otherwise. Only a server may do this: its frames are
    /// unmasked, hence identical for every peer.
    pub fn send_prepared(
        &mut self,
        frame: &PreparedFrame,
        out: &mut Outbox,
    ) -> Result<(), SendError> {
        out.push_shared(self.prepared_bytes(frame)?);
        Ok(())
    }

    /// The bytes of `frame` this connection sends: the compressed frame when it compresses such
    /// a message and one was made for its window, the plain frame otherwise. Only a server may
    /// share a frame: its frames are unmasked, hence identical for every peer.
    pub fn prepared_bytes<'f>(&self, frame: &'f PreparedFrame) -> Result<&'f Bytes, SendError> {
        debug_assert_eq!(
            P::ROLE,
            Role::Server,
            "client frames are masked per connection"
        );
        self.check_open()?;
        Ok(self
            .compression_window(frame.payload_len())
            .and_then(|bits| frame.compressed_for(bits))
            .unwrap_or(frame.plain()))
    }

    /// The header of an unmasked, uncompressed data frame for a payload the IO layer writes itself,
    /// straight from where it lies; `None` when this connection would mask (client) or compress
    /// the payload, so that it must go through [`send`](Self::send). The caller must write the
    /// header and payload in full (queuing what the socket does not take) before anything else.
    pub fn direct_write_header(
        &mut self,
        kind: MessageKind,
        payload_len: usize,
    ) -> Result<Option<([u8; MAX_HEADER_LEN], usize)>, SendError> {
        self.check_open()?;
        if P::ROLE == Role::Client || self.compression_window(payload_len).is_some() {
            return Ok(None);
        }
        let mut bytes = [0u8; MAX_HEADER_LEN];
        let len = frame::encode_header(&FrameHeader::new(kind.opcode(), payload_len), &mut bytes);
        Ok(Some((bytes, len)))
    }

    /// Queues a ping (§5.5.2).
    pub fn ping(&mut self, payload: &[u8], out: &mut Outbox) -> Result<(), SendError> {
        self.check_open()?;
        //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5
        //# All control frames MUST have a payload length of 125 bytes or less
        //# and MUST NOT be fragmented.
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(SendError::ControlPayloadTooLong(payload.len()));
        }
        self.queue_frame(Opcode::Ping, payload, out);
        Ok(())
    }

    /// Starts the closing handshake (§7.1.2) with `code` and a reason (cut to fit 123 bytes).
    pub fn close(
        &mut self,
        code: CloseCode,
        reason: &str,
        out: &mut Outbox,
    ) -> Result<(), SendError> {
        //= https://www.rfc-editor.org/rfc/rfc6455#section-7.1.2
        //# To _Start the WebSocket Closing Handshake_ with a status code
        //# (Section 7.4) /code/ and an optional close reason (Section 7.1.6)
        //# /reason/, an endpoint MUST send a Close control frame, as described
        //# in Section 5.5.1, whose status code is set to /code/ and whose close
        //# reason is set to /reason/.
        self.check_open()?;
        //= https://www.rfc-editor.org/rfc/rfc6455#section-7.4.1
        //# 1005 is a reserved value and MUST NOT be set as a status code in a
        //# Close control frame by an endpoint.
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-7.4.1
        //# 1006 is a reserved value and MUST NOT be set as a status code in a
        //# Close control frame by an endpoint.
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-7.4.1
        //# 1015 is a reserved value and MUST NOT be set as a status code in a
        //# Close control frame by an endpoint.
        if !code.is_valid_on_wire() {
            return Err(SendError::InvalidCloseCode(code.0));
        }
        let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
        let len = close::encode_close_payload(code, reason, &mut payload);
        self.queue_frame(Opcode::Close, &payload[..len], out);
        self.state = State::CloseSent;
        Ok(())
    }

    pub(crate) fn check_open(&self) -> Result<(), SendError> {
        //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5.1
        //# The application MUST NOT send any more data frames after sending a
        //# Close frame.
        if self.state == State::Open {
            Ok(())
        } else {
            Err(SendError::NotOpen)
        }
    }

    /// Encodes one whole uncompressed frame into the outbox.
    #[inline(always)]
    fn queue_frame(&mut self, opcode: Opcode, payload: &[u8], out: &mut Outbox) {
        out.append(|buf| self.encode(opcode, false, payload, buf));
    }

    /// Encodes one whole frame this end sends: unmasked for a server, masked with a fresh key for
    /// a client (§5.1, §5.3), with RSV1 for a compressed message (RFC 7692 §6).
    #[inline(always)]
    fn encode(&mut self, opcode: Opcode, rsv1: bool, payload: &[u8], buf: &mut Vec<u8>) {
        frame::encode_frame(&self.header(opcode, rsv1, payload.len()), payload, buf);
    }

    /// The header of a whole frame this end sends: masked with a fresh key for a client.
    fn header(&mut self, opcode: Opcode, rsv1: bool, payload_len: usize) -> FrameHeader {
        //= https://www.rfc-editor.org/rfc/rfc6455#section-6.1
        //# An endpoint MUST encapsulate the /data/ in a WebSocket frame as
        //# defined in Section 5.2.
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-6.1
        //# The FIN bit (frame-fin) of the last frame containing the data
        //# MUST be set to 1 as defined in Section 5.2.
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-5.2
        //# MUST be 0 unless an extension is negotiated that defines meanings
        //# for non-zero values.
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-5.2
        //# frame-rsv1              = %x0 / %x1
        //# ; 1 bit in length, MUST be 0 unless
        //# ; negotiated otherwise
        //# frame-rsv2              = %x0 / %x1
        //# ; 1 bit in length, MUST be 0 unless
        //# ; negotiated otherwise
        //# frame-rsv3              = %x0 / %x1
        //# ; 1 bit in length, MUST be 0 unless
        //# ; negotiated otherwise
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-5.1
        //# To avoid confusing network intermediaries (such as
        //# intercepting proxies) and for security reasons that are further
        //# discussed in Section 10.3, a client MUST mask all frames that it
        //# sends to the server (see Section 5.3 for further details).
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-6.1
        //# If the data is being sent by the client, the frame(s) MUST be
        //# masked as defined in Section 5.3.
        let header = FrameHeader::new(opcode, payload_len).with_rsv1(rsv1);
        match self.end.next_mask() {
            Some(key) => header.masked(key),
            None => header,
        }
    }
}

/// Unmasks, in place, the payload of a frame that carries one whole message, and checks that
/// text is UTF-8 (as `receive`'s fast path and `receive_batch` take such a frame).
#[inline(always)]
fn unmask_whole_message(
    kind: MessageKind,
    mask: Option<[u8; 4]>,
    payload: &mut [u8],
) -> Result<(), ProtocolError> {
    //= https://www.rfc-editor.org/rfc/rfc6455#section-6.2
    //# A server MUST remove masking for data frames received from a client
    //# as described in Section 5.3.
    if let Some(key) = mask {
        apply_mask(payload, key, 0);
    }
    //= https://www.rfc-editor.org/rfc/rfc6455#section-8.1
    //# When an endpoint is to interpret a byte stream as UTF-8 but finds
    //# that the byte stream is not, in fact, a valid UTF-8 stream, that
    //# endpoint MUST _Fail the WebSocket Connection_.
    if kind == MessageKind::Text && std::str::from_utf8(payload).is_err() {
        return Err(ProtocolError::InvalidUtf8);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::BATCH_MAX;
    use crate::deflate::DeflateConfig;
    use std::io::IoSlice;

    const LIMITS: Limits = Limits {
        max_frame_size: crate::limits::DEFAULT_MAX_FRAME_SIZE,
        max_message_size: crate::limits::DEFAULT_MAX_MESSAGE_SIZE,
        max_fragments: crate::limits::DEFAULT_MAX_FRAGMENTS,
        max_head_size: crate::limits::DEFAULT_MAX_HEAD_SIZE,
        max_headers: crate::limits::DEFAULT_MAX_HEADERS,
    };

    fn drain(out: &mut Outbox) -> Vec<u8> {
        let mut slices = [IoSlice::new(&[]); 64];
        let n = out.io_slices(&mut slices);
        let bytes: Vec<u8> = slices[..n].iter().flat_map(|s| s.iter().copied()).collect();
        out.advance(bytes.len());
        bytes
    }

    /// A masked client frame.
    fn client_frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
        let key = [0x11, 0x22, 0x33, 0x44];
        let opcode = Opcode::from_u8(first_byte & 0xF).unwrap();
        let header = FrameHeader {
            fin: first_byte & 0x80 != 0,
            rsv1: first_byte & 0x40 != 0,
            rsv2: first_byte & 0x20 != 0,
            rsv3: first_byte & 0x10 != 0,
            opcode,
            mask: Some(key),
            payload_len: payload.len() as u64,
        };
        let mut h = [0u8; MAX_HEADER_LEN];
        let n = frame::encode_header(&header, &mut h);
        let mut bytes = h[..n].to_vec();
        let mut p = payload.to_vec();
        apply_mask(&mut p, key, 0);
        bytes.extend_from_slice(&p);
        bytes
    }

    /// An owned copy of an event, so results from different splits can be compared.
    #[derive(Debug, PartialEq, Eq, Clone)]
    enum Seen {
        Text(String),
        Binary(Vec<u8>),
        Ping(Vec<u8>),
        Pong(Vec<u8>),
        Close(Option<(u16, String)>),
        Error(ProtocolError),
    }

    fn seen_message(m: Message<'_>) -> Seen {
        match m.kind() {
            MessageKind::Text => Seen::Text(m.as_text().unwrap().to_string()),
            MessageKind::Binary => Seen::Binary(m.into_payload()),
        }
    }

    /// Feeds `input` in pieces of at most `piece` bytes, keeping unconsumed bytes as an IO layer
    /// would, and returns every event and the bytes the connection wrote.
    fn run(input: &[u8], piece: usize, limits: Limits) -> (Vec<Seen>, Vec<u8>) {
        run_batched(input, piece, limits, None)
    }

    /// As `run`, offering the input to `receive_batch` (with this payload budget) before each
    /// call of `receive`, as the server's loop does.
    fn run_batched(
        input: &[u8],
        piece: usize,
        limits: Limits,
        batch_budget: Option<usize>,
    ) -> (Vec<Seen>, Vec<u8>) {
        let mut conn = Connection::new(ServerEnd);
        let mut out = Outbox::new();
        let mut seen = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        // One batch for the whole run, as the loop keeps one: each call empties it first.
        let mut batch = Batch::new();
        'feed: for chunk in input.chunks(piece.max(1)) {
            pending.extend_from_slice(chunk);
            let mut pos = 0;
            loop {
                if let Some(budget) = batch_budget {
                    conn.receive_batch(&mut pending[pos..], &limits, budget, &mut batch);
                    if !batch.is_empty() {
                        assert!(batch.len() <= crate::batch::BATCH_MAX);
                        for index in 0..batch.len() {
                            seen.push(seen_message(batch.message(&pending[pos..], index)));
                        }
                        pos += batch.consumed();
                        continue;
                    }
                }
                match conn.receive(
                    &mut pending[pos..],
                    &mut out,
                    &limits,
                    &mut SharedDeflate::new(),
                ) {
                    Ok(received) => {
                        let stop = received.needs_more();
                        pos += received.consumed;
                        match received.event {
                            Some(Event::Message(m)) => seen.push(seen_message(m)),
                            Some(Event::Ping(p)) => seen.push(Seen::Ping(p.to_vec())),
                            Some(Event::Pong(p)) => seen.push(Seen::Pong(p.to_vec())),
                            Some(Event::Close(c)) => {
                                seen.push(Seen::Close(c.map(|c| (c.code.0, c.reason.to_string()))))
                            }
                            None => {}
                        }
                        if stop || pos == pending.len() && !conn.is_mid_frame() {
                            break;
                        }
                    }
                    Err(e) => {
                        seen.push(Seen::Error(e));
                        break 'feed;
                    }
                }
            }
            pending.drain(..pos);
            assert!(
                pending.len() <= MAX_HEADER_LEN + MAX_CONTROL_PAYLOAD,
                "left over {}",
                pending.len()
            );
        }
        (seen, drain(&mut out))
    }

    /// The same events and output whether the input arrives whole, split at any index, or one
    /// byte at a time, and whether or not whole messages are taken in batches first (with any
    /// budget).
    fn check_every_split(input: &[u8]) -> (Vec<Seen>, Vec<u8>) {
        let whole = run(input, input.len(), Limits::default());
        for piece in 1..input.len().min(40) {
            assert_eq!(
                run(input, piece, Limits::default()),
                whole,
                "pieces of {piece}"
            );
        }
        for budget in [0, 1, 5, usize::MAX] {
            for piece in [1, 2, 7, input.len()] {
                assert_eq!(
                    run_batched(input, piece, Limits::default(), Some(budget)),
                    whole,
                    "batches with a budget of {budget}, pieces of {piece}"
                );
            }
        }
        for split in 0..input.len() {
            assert_eq!(run_split(input, split), whole, "split at {split}");
        }
        whole
    }

    fn run_split(input: &[u8], split: usize) -> (Vec<Seen>, Vec<u8>) {
        // Two reads: [..split] and [split..].
        let mut conn = Connection::new(ServerEnd);
        let mut out = Outbox::new();
        let mut seen = Vec::new();
        let mut pending = Vec::new();
        for chunk in [&input[..split], &input[split..]] {
            pending.extend_from_slice(chunk);
            let mut pos = 0;
            loop {
                match conn.receive(
                    &mut pending[pos..],
                    &mut out,
                    &LIMITS,
                    &mut SharedDeflate::new(),
                ) {
                    Ok(r) => {
                        let stop = r.needs_more();
                        pos += r.consumed;
                        if let Some(e) = r.event {
                            seen.push(match e {
                                Event::Message(m) if m.kind() == MessageKind::Text => {
                                    Seen::Text(m.as_text().unwrap().into())
                                }
                                Event::Message(m) => Seen::Binary(m.into_payload()),
                                Event::Ping(p) => Seen::Ping(p.to_vec()),
                                Event::Pong(p) => Seen::Pong(p.to_vec()),
                                Event::Close(c) => {
                                    Seen::Close(c.map(|c| (c.code.0, c.reason.to_string())))
                                }
                            });
                        }
                        if stop || pos == pending.len() && !conn.is_mid_frame() {
                            break;
                        }
                    }
                    Err(e) => {
                        seen.push(Seen::Error(e));
                        return (seen, drain(&mut out));
                    }
                }
            }
            pending.drain(..pos);
        }
        (seen, drain(&mut out))
    }

    /// The Close that fails the connection for `error`: its close code (checked against the
    /// table) and its reason (§7.1.7).
    fn failure(error: ProtocolError, code: u16) -> Vec<u8> {
        assert_eq!(error.close_code().0, code, "{error:?}");
        let reason = error.reason().as_bytes();
        let mut frame = vec![0x88, 2 + reason.len() as u8];
        frame.extend_from_slice(&code.to_be_bytes());
        frame.extend_from_slice(reason);
        frame
    }

    fn concat(frames: &[Vec<u8>]) -> Vec<u8> {
        frames.concat()
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-6.2
    //= type=test
    //# Incoming data MUST be parsed as WebSocket frames
    //# as defined in Section 5.2.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-6.2
    //= type=test
    //# A server MUST remove masking for data frames received from a client
    //# as described in Section 5.3.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.4
    //= type=test
    //# o  Clients and servers MUST support receiving both fragmented and
    //# unfragmented messages.
    #[test]
    fn rfc_5_7_masked_hello() {
        let input = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (seen, out) = check_every_split(&input);
        assert_eq!(seen, [Seen::Text("Hello".into())]);
        assert!(out.is_empty());
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.4
    //= type=test
    //# o  An endpoint MUST be capable of handling control frames in the
    //# middle of a fragmented message.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.4
    //= type=test
    //# o  Clients and servers MUST support receiving both fragmented and
    //# unfragmented messages.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-6.2
    //= type=test
    //# If a control frame (Section 5.5) is
    //# received, the frame MUST be handled as defined by Section 5.5.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.4
    //= type=test
    //# Since
    //# control frames cannot be fragmented, the type for all fragments in
    //# a message MUST be either text, binary, or one of the reserved
    //# opcodes.
    #[test]
    fn rfc_5_7_fragmented_hello_with_ping_between() {
        let input = concat(&[
            client_frame(0x01, b"Hel"),
            client_frame(0x89, b"Hello"),
            client_frame(0x80, b"lo"),
        ]);
        let (seen, out) = check_every_split(&input);
        assert_eq!(
            seen,
            [Seen::Ping(b"Hello".to_vec()), Seen::Text("Hello".into())]
        );
        // RFC 6455 §5.7: the pong is "0x8a 0x05 0x48 0x65 0x6c 0x6c 0x6f".
        assert_eq!(out, [0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    }

    #[test]
    fn binary_of_every_length_form() {
        for len in [0usize, 125, 126, 65535, 65536] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let input = client_frame(0x82, &payload);
            let (seen, _) = run(&input, 1000, Limits::default());
            assert_eq!(seen, [Seen::Binary(payload.clone())], "len {len}");
        }
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.1
    //= type=test
    //# The server MUST close the connection upon receiving a
    //# frame that is not masked.
    #[test]
    fn rejects_unmasked_client_frame() {
        let (seen, out) = check_every_split(&[0x81, 0x05, b'H', b'e', b'l', b'l', b'o']);
        assert_eq!(seen, [Seen::Error(ProtocolError::UnmaskedClientFrame)]);
        assert_eq!(out, failure(ProtocolError::UnmaskedClientFrame, 1002));
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.2
    //= type=test
    //# If a nonzero value is received and none of
    //# the negotiated extensions defines the meaning of such a nonzero
    //# value, the receiving endpoint MUST _Fail the WebSocket
    //# Connection_.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-10.7
    //= type=test
    //# Incoming data MUST always be validated by both clients and servers.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.2
    //= type=test
    //# MUST be 0 unless an extension is negotiated that defines meanings
    //# for non-zero values.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.2
    //= type=test
    //# frame-rsv1              = %x0 / %x1
    //# ; 1 bit in length, MUST be 0 unless
    //# ; negotiated otherwise
    //# frame-rsv2              = %x0 / %x1
    //# ; 1 bit in length, MUST be 0 unless
    //# ; negotiated otherwise
    //# frame-rsv3              = %x0 / %x1
    //# ; 1 bit in length, MUST be 0 unless
    //# ; negotiated otherwise
    #[test]
    fn rejects_rsv_bits_without_extension() {
        for first in [0xC1, 0xA1, 0x91] {
            let (seen, _) = check_every_split(&client_frame(first, b"x"));
            assert_eq!(
                seen,
                [Seen::Error(ProtocolError::ReservedBitsSet)],
                "{first:#x}"
            );
        }
    }

    #[test]
    fn rejects_continuation_without_message() {
        let (seen, _) = check_every_split(&client_frame(0x80, b"x"));
        assert_eq!(seen, [Seen::Error(ProtocolError::UnexpectedContinuation)]);
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.4
    //= type=test
    //# o  The fragments of one message MUST NOT be interleaved between the
    //# fragments of another message unless an extension has been
    //# negotiated that can interpret the interleaving.
    #[test]
    fn rejects_new_message_inside_fragmented_one() {
        let input = concat(&[client_frame(0x01, b"a"), client_frame(0x81, b"b")]);
        let (seen, _) = check_every_split(&input);
        assert_eq!(seen, [Seen::Error(ProtocolError::ExpectedContinuation)]);
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-6.2
    //= type=test
    //# Subsequent data frames MUST be interpreted as belonging to a new
    //# WebSocket message.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-6.2
    //= type=test
    //# Upon
    //# receiving a data frame (Section 5.6), the endpoint MUST note the
    //# /type/ of the data as defined by the opcode (frame-opcode) from
    //# Section 5.2.
    #[test]
    fn each_final_frame_ends_its_message() {
        // Each message has the type of its first frame's opcode, whole or fragmented.
        let input = concat(&[
            client_frame(0x01, b"a"),
            client_frame(0x80, b"b"),
            client_frame(0x81, b"c"),
            client_frame(0x82, b"d"),
            client_frame(0x02, b"e"),
            client_frame(0x80, b"f"),
        ]);
        let (seen, _) = check_every_split(&input);
        assert_eq!(
            seen,
            [
                Seen::Text("ab".into()),
                Seen::Text("c".into()),
                Seen::Binary(b"d".to_vec()),
                Seen::Binary(b"ef".to_vec())
            ]
        );
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-7.1.7
    //= type=test
    //# An endpoint MUST NOT continue to attempt to
    //# process data (including a responding Close frame) from the remote
    //# endpoint after being instructed to _Fail the WebSocket Connection_.
    #[test]
    fn messages_before_a_bad_frame_are_delivered() {
        let input = concat(&[
            client_frame(0x81, b"Hello"),
            client_frame(0xC1, b"x"),
            client_frame(0x89, b""),
        ]);
        let (seen, out) = check_every_split(&input);
        assert_eq!(
            seen,
            [
                Seen::Text("Hello".into()),
                Seen::Error(ProtocolError::ReservedBitsSet)
            ]
        );
        assert_eq!(out, failure(ProtocolError::ReservedBitsSet, 1002));
    }

    #[test]
    fn invalid_utf8_fails_with_1007_at_the_bad_byte() {
        // A single text frame whose payload arrives in pieces: the error comes as soon as the
        // piece holding the bad byte arrives, before the rest of the frame.
        let payload =
            b"\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xF4\x90\x80\x80\x65\x64\x69\x74\x65\x64";
        let frame = client_frame(0x81, payload);
        let bad_at = frame.len() - payload.len() + 12; // the 0x90 after 0xF4
        let mut conn = Connection::new(ServerEnd);
        let mut out = Outbox::new();
        let mut prefix = frame[..bad_at].to_vec();
        let mut pos = 0;
        while pos < prefix.len() {
            let r = conn
                .receive(
                    &mut prefix[pos..],
                    &mut out,
                    &LIMITS,
                    &mut SharedDeflate::new(),
                )
                .unwrap();
            assert!(r.event.is_none());
            assert!(!r.needs_more(), "every byte of the prefix is consumed");
            pos += r.consumed;
        }
        let mut bad = frame[bad_at..bad_at + 1].to_vec();
        assert_eq!(
            conn.receive(&mut bad, &mut out, &LIMITS, &mut SharedDeflate::new()),
            Err(ProtocolError::InvalidUtf8)
        );
        assert_eq!(drain(&mut out), failure(ProtocolError::InvalidUtf8, 1007));
        assert_eq!(conn.state(), State::Failed);
    }

    #[test]
    fn invalid_utf8_across_fragments() {
        let input = concat(&[
            client_frame(0x01, b"\xCE\xBA\xE1"),
            client_frame(0x00, b"\xBD\xB9\xED\xA0\x80"),
            client_frame(0x80, b"ok"),
        ]);
        let (seen, out) = check_every_split(&input);
        assert_eq!(seen, [Seen::Error(ProtocolError::InvalidUtf8)]);
        assert_eq!(out, failure(ProtocolError::InvalidUtf8, 1007));
    }

    #[test]
    fn text_ending_mid_code_point_is_invalid() {
        let input = concat(&[client_frame(0x01, b"\xE2\x82"), client_frame(0x80, b"")]);
        let (seen, _) = check_every_split(&input);
        assert_eq!(seen, [Seen::Error(ProtocolError::InvalidUtf8)]);
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5.1
    //= type=test
    //# If an endpoint receives a Close frame and did not previously send a
    //# Close frame, the endpoint MUST send a Close frame in response.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5.1
    //= type=test
    //# (When sending a Close frame in response, the endpoint typically
    //# echos the status code it received.)  It SHOULD do so as soon as practical.
    #[test]
    fn close_is_echoed_and_then_tcp_closes() {
        let input = concat(&[
            client_frame(0x88, b"\x03\xe8bye"),
            client_frame(0x81, b"ignored"),
        ]);
        let (seen, out) = check_every_split(&input);
        assert_eq!(seen, [Seen::Close(Some((1000, "bye".into())))]);
        assert_eq!(out, [0x88, 0x02, 0x03, 0xE8]);
    }

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
    #[test]
    fn a_close_code_that_may_not_be_sent_is_refused() {
        for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
            let mut conn = Connection::new(ServerEnd);
            let mut out = Outbox::new();
            assert_eq!(
                conn.close(CloseCode(code), "no", &mut out),
                Err(SendError::InvalidCloseCode(code))
            );
            assert!(out.is_empty() && conn.state() == State::Open, "{code}");
        }
        for code in [1000, 1003, 1007, 1014, 3000, 4999] {
            let mut conn = Connection::new(ServerEnd);
            let mut out = Outbox::new();
            assert_eq!(conn.close(CloseCode(code), "", &mut out), Ok(()), "{code}");
        }
        // Terminating with one sends a Close without a code instead.
        let mut conn = Connection::new(ServerEnd);
        let mut out = Outbox::new();
        conn.terminate(CloseCode(1006), "gone", &mut out);
        let mut sent = Vec::new();
        out.write_to(&mut sent).unwrap();
        assert_eq!(sent, [0x88, 0x00]);
    }

    #[test]
    fn empty_close_gets_empty_reply() {
        let (seen, out) = check_every_split(&client_frame(0x88, b""));
        assert_eq!(seen, [Seen::Close(None)]);
        assert_eq!(out, [0x88, 0x00]);
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-7.1.7
    //= type=test
    //# If _The WebSocket Connection is Established_ prior to the point where
    //# the endpoint is required to _Fail the WebSocket Connection_, the
    //# endpoint SHOULD send a Close frame with an appropriate status code
    //# (Section 7.4) before proceeding to _Close the WebSocket Connection_.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-10.7
    //= type=test
    //# If the invalid data was received after
    //# a successful WebSocket handshake, the endpoint SHOULD send a Close
    //# frame with an appropriate status code (Section 7.4) before proceeding
    //# to _Close the WebSocket Connection_.
    #[test]
    fn bad_close_payloads_fail() {
        for (payload, error, code) in [
            (&b"\x03"[..], ProtocolError::CloseFrameTooShort, 1002u16),
            (b"\x03\xed", ProtocolError::InvalidCloseCode(1005), 1002),
            (b"\x03\xe8\xff", ProtocolError::InvalidUtf8, 1007),
        ] {
            let (seen, out) = check_every_split(&client_frame(0x88, payload));
            assert_eq!(seen, [Seen::Error(error)]);
            assert_eq!(out, failure(error, code));
        }
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-7.1.2
    //= type=test
    //# To _Start the WebSocket Closing Handshake_ with a status code
    //# (Section 7.4) /code/ and an optional close reason (Section 7.1.6)
    //# /reason/, an endpoint MUST send a Close control frame, as described
    //# in Section 5.5.1, whose status code is set to /code/ and whose close
    //# reason is set to /reason/.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5.1
    //= type=test
    //# The application MUST NOT send any more data frames after sending a
    //# Close frame.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5.2
    //= type=test
    //# Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in
    //# response, unless it already received a Close frame.
    #[test]
    fn our_close_then_theirs() {
        let mut conn = Connection::new(ServerEnd);
        let mut out = Outbox::new();
        conn.close(CloseCode::GOING_AWAY, "bye", &mut out).unwrap();
        assert_eq!(drain(&mut out), [0x88, 0x05, 0x03, 0xE9, b'b', b'y', b'e']);
        assert_eq!(
            conn.send(MessageKind::Text, b"x", &mut out, &mut SharedDeflate::new()),
            Err(SendError::NotOpen)
        );
        // Data arriving after our close is not delivered; a ping is still answered, since the
        // peer's Close has not arrived (§5.5.2); after the peer's Close, nothing is read.
        let mut input = concat(&[
            client_frame(0x81, b"late"),
            client_frame(0x89, b"?"),
            client_frame(0x88, b"\x03\xe9"),
            client_frame(0x89, b"after"),
        ]);
        let mut pos = 0;
        let mut events = Vec::new();
        while pos < input.len() {
            let r = conn
                .receive(
                    &mut input[pos..],
                    &mut out,
                    &LIMITS,
                    &mut SharedDeflate::new(),
                )
                .unwrap();
            pos += r.consumed;
            events.extend(r.event.map(|e| format!("{e:?}")));
        }
        assert_eq!(events.len(), 2, "{events:?}"); // the ping and the close
        assert_eq!(
            drain(&mut out),
            [0x8A, 0x01, b'?'],
            "one pong, for the first ping"
        );
        assert_eq!(conn.state(), State::CloseReceived);
    }

    #[test]
    fn unsolicited_pong_is_reported() {
        let (seen, out) = check_every_split(&client_frame(0x8A, b"hi"));
        assert_eq!(seen, [Seen::Pong(b"hi".to_vec())]);
        assert!(out.is_empty());
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-10.4
    //= type=test
    //# Implementations that have implementation- and/or platform-specific
    //# limitations regarding the frame size or total message size after
    //# reassembly from multiple frames MUST protect themselves against
    //# exceeding those limits.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-10.4
    //= type=test
    //# (For example, a malicious endpoint can try
    //# to exhaust its peer's memory or mount a denial-of-service attack by
    //# sending either a single big frame (e.g., of size 2**60) or by sending
    //# a long stream of small frames that are a part of a fragmented
    //# message.)  Such an implementation SHOULD impose a limit on frame
    //# sizes and the total message size after reassembly from multiple
    //# frames.
    #[test]
    fn size_limits_fail_from_the_header() {
        let limits = Limits {
            max_frame_size: 100,
            max_message_size: 150,
            ..Limits::default()
        };
        // The header alone declares too much: failed before any payload arrives.
        let frame = client_frame(0x82, &[0u8; 101]);
        let (seen, out) = run(&frame[..8], 8, limits);
        assert_eq!(
            seen,
            [Seen::Error(ProtocolError::FrameTooBig {
                len: 101,
                limit: 100
            })]
        );
        assert_eq!(
            out,
            failure(
                ProtocolError::FrameTooBig {
                    len: 101,
                    limit: 100
                },
                1009
            )
        );
        let input = concat(&[
            client_frame(0x02, &[0u8; 100]),
            client_frame(0x80, &[0u8; 51]),
        ]);
        let (seen, _) = run(&input, input.len(), limits);
        assert_eq!(
            seen,
            [Seen::Error(ProtocolError::MessageTooBig {
                len: 151,
                limit: 150
            })]
        );
        let input = concat(&[
            client_frame(0x02, &[0u8; 100]),
            client_frame(0x80, &[0u8; 50]),
        ]);
        assert_eq!(run(&input, 7, limits).0, [Seen::Binary(vec![0; 150])]);
    }

    #[test]
    fn empty_continuations_are_capped() {
        let limits = Limits {
            max_fragments: 4,
            ..Limits::default()
        };
        let mut input = client_frame(0x02, b"");
        for _ in 0..4 {
            input.extend(client_frame(0x00, b""));
        }
        let (seen, out) = run(&input, input.len(), limits);
        assert_eq!(
            seen,
            [Seen::Error(ProtocolError::TooManyFragments { limit: 4 })]
        );
        assert_eq!(
            out,
            failure(ProtocolError::TooManyFragments { limit: 4 }, 1008)
        );
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-6.1
    //= type=test
    //# To _Send a WebSocket Message_ comprising of /data/ over a WebSocket
    //# connection, an endpoint MUST perform the following steps.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-6.1
    //= type=test
    //# The endpoint MUST ensure the WebSocket connection is in the OPEN
    //# state (cf.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-6.1
    //= type=test
    //# Sections 4.1 and 4.2.2.)  If at any point the state of
    //# the WebSocket connection changes, the endpoint MUST abort the
    //# following steps.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-6.1
    //= type=test
    //# An endpoint MUST encapsulate the /data/ in a WebSocket frame as
    //# defined in Section 5.2.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-6.1
    //= type=test
    //# The opcode (frame-opcode) of the first frame containing the data
    //# MUST be set to the appropriate value from Section 5.2 for data
    //# that is to be interpreted by the recipient as text or binary
    //# data.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-6.1
    //= type=test
    //# The FIN bit (frame-fin) of the last frame containing the data
    //# MUST be set to 1 as defined in Section 5.2.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-6.1
    //= type=test
    //# The frame(s) that have been formed MUST be transmitted over the
    //# underlying network connection.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.2
    //= type=test
    //# MUST be 0 unless an extension is negotiated that defines meanings
    //# for non-zero values.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.2
    //= type=test
    //# frame-rsv1              = %x0 / %x1
    //# ; 1 bit in length, MUST be 0 unless
    //# ; negotiated otherwise
    //# frame-rsv2              = %x0 / %x1
    //# ; 1 bit in length, MUST be 0 unless
    //# ; negotiated otherwise
    //# frame-rsv3              = %x0 / %x1
    //# ; 1 bit in length, MUST be 0 unless
    //# ; negotiated otherwise
    #[test]
    fn a_message_goes_out_as_one_final_frame_of_its_opcode() {
        let mut conn = Connection::new(ServerEnd);
        let mut out = Outbox::new();
        let mut shared = SharedDeflate::new();
        conn.send(MessageKind::Text, b"hi", &mut out, &mut shared)
            .unwrap();
        conn.send(MessageKind::Binary, &[1, 2, 3], &mut out, &mut shared)
            .unwrap();
        // FIN set, RSV bits clear, the message's opcode, unmasked: one frame each, in order.
        assert_eq!(
            drain(&mut out),
            [0x81, 0x02, b'h', b'i', 0x82, 0x03, 1, 2, 3]
        );
        conn.terminate(CloseCode::GOING_AWAY, "", &mut out);
        drain(&mut out);
        assert_eq!(
            conn.send(MessageKind::Text, b"late", &mut out, &mut shared),
            Err(SendError::NotOpen)
        );
        assert!(drain(&mut out).is_empty());
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.3
    //= type=test
    //# When preparing a masked frame, the client MUST pick a fresh masking
    //# key from the set of allowed 32-bit values.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-10.3
    //= type=test
    //# Clients MUST choose a new masking key for each frame, using an
    //# algorithm that cannot be predicted by end applications that provide
    //# data.
    //
    // No test can show that a key is unpredictable: this one shows that each frame's key is the
    // next four bytes of the connection's entropy and nothing else (both shells give theirs the
    // operating system's, `OsEntropy`).
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.3
    //= type=test
    //# The masking key needs to
    //# be unpredictable; thus, the masking key MUST be derived from a strong
    //# source of entropy, and the masking key for a given frame MUST NOT
    //# make it simple for a server/proxy to predict the masking key for a
    //# subsequent frame.
    #[test]
    fn every_client_frame_gets_a_fresh_key_from_its_entropy() {
        let mut conn = Connection::new(ClientEnd(crate::entropy::Sequence(0)));
        let mut out = Outbox::new();
        let mut shared = SharedDeflate::new();
        conn.send(MessageKind::Text, b"a", &mut out, &mut shared)
            .unwrap();
        conn.send(MessageKind::Text, b"b", &mut out, &mut shared)
            .unwrap();
        let sent = drain(&mut out);
        // Each frame: 2 header bytes, a 4-byte key, 1 payload byte.
        assert_eq!(sent[2..6], [0, 1, 2, 3]);
        assert_eq!(sent[9..13], [4, 5, 6, 7]);
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.1
    //= type=test
    //# To avoid confusing network intermediaries (such as
    //# intercepting proxies) and for security reasons that are further
    //# discussed in Section 10.3, a client MUST mask all frames that it
    //# sends to the server (see Section 5.3 for further details).
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-6.1
    //= type=test
    //# If the data is being sent by the client, the frame(s) MUST be
    //# masked as defined in Section 5.3.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.1
    //= type=test
    //# A client MUST close a connection if it detects a masked
    //# frame.
    #[test]
    fn client_role_masks_and_accepts_unmasked() {
        let mut conn = Connection::new(ClientEnd(crate::entropy::Sequence(1)));
        let mut out = Outbox::new();
        conn.send(
            MessageKind::Text,
            b"Hello",
            &mut out,
            &mut SharedDeflate::new(),
        )
        .unwrap();
        let mut sent = drain(&mut out);
        // Decode it as a server would.
        let mut server = Connection::new(ServerEnd);
        let r = server
            .receive(&mut sent, &mut out, &LIMITS, &mut SharedDeflate::new())
            .unwrap();
        assert_eq!(
            r.event.map(|e| format!("{e:?}")),
            Some(format!(
                "{:?}",
                Event::Message(Message::new(MessageKind::Text, Cow::Borrowed(b"Hello")))
            ))
        );
        let mut input = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        assert!(matches!(
            conn.receive(&mut input, &mut out, &LIMITS, &mut SharedDeflate::new())
                .unwrap()
                .event,
            Some(Event::Message(_))
        ));
        let mut masked = client_frame(0x81, b"x");
        assert_eq!(
            conn.receive(&mut masked, &mut out, &LIMITS, &mut SharedDeflate::new()),
            Err(ProtocolError::MaskedServerFrame)
        );
    }

    #[test]
    fn a_client_delivers_messages_that_arrive_after_its_close() {
        // The server's answers to what the client sent before its Close (a terminal client's
        // last lines echoed) still reach the application; a server drops them (our_close_then_theirs).
        let mut conn = Connection::new(ClientEnd(crate::entropy::Sequence(1)));
        let mut out = Outbox::new();
        conn.close(CloseCode::NORMAL, "", &mut out).unwrap();
        drain(&mut out);
        let mut input = [
            &[0x81, 0x04][..],
            b"late",
            &[0x89, 0x01, b'?'],
            &[0x88, 0x02, 0x03, 0xe8],
        ]
        .concat();
        let mut pos = 0;
        let mut events = Vec::new();
        while pos < input.len() {
            let r = conn
                .receive(
                    &mut input[pos..],
                    &mut out,
                    &LIMITS,
                    &mut SharedDeflate::new(),
                )
                .unwrap();
            pos += r.consumed;
            events.extend(r.event.map(|e| format!("{e:?}")));
        }
        assert_eq!(events.len(), 3, "{events:?}");
        assert_eq!(
            events[0],
            format!(
                "{:?}",
                Event::Message(Message::new(MessageKind::Text, Cow::Borrowed(b"late")))
            )
        );
        assert_eq!(conn.state(), State::CloseReceived);
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-8.1
    //= type=test
    //# When an endpoint is to interpret a byte stream as UTF-8 but finds
    //# that the byte stream is not, in fact, a valid UTF-8 stream, that
    //# endpoint MUST _Fail the WebSocket Connection_.
    #[test]
    fn a_whole_text_frame_of_invalid_utf8_fails_and_a_binary_one_is_delivered() {
        // One frame that arrives whole is delivered in place, without the assembler: its text
        // is checked there, and a binary payload is not text, so is not checked at all.
        let payload = b"\xCE\xBA\xFF";
        let (seen, out) = check_every_split(&client_frame(0x81, payload));
        assert_eq!(seen, [Seen::Error(ProtocolError::InvalidUtf8)]);
        assert_eq!(out, failure(ProtocolError::InvalidUtf8, 1007));
        let (seen, out) = check_every_split(&client_frame(0x82, payload));
        assert_eq!(seen, [Seen::Binary(payload.to_vec())]);
        assert!(out.is_empty());
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5
    //= type=test
    //# All control frames MUST have a payload length of 125 bytes or less
    //# and MUST NOT be fragmented.
    #[test]
    fn a_ping_carries_at_most_125_bytes() {
        let mut conn = Connection::new(ServerEnd);
        let mut out = Outbox::new();
        assert_eq!(
            conn.ping(&[7; 126], &mut out),
            Err(SendError::ControlPayloadTooLong(126))
        );
        assert!(out.is_empty());
        conn.ping(&[7; 125], &mut out).unwrap();
        let mut expected = vec![0x89, 125];
        expected.extend_from_slice(&[7; 125]);
        assert_eq!(drain(&mut out), expected);
        assert_eq!(conn.state(), State::Open);
    }

    /// permessage-deflate for an end that compresses with `our_window_bits` and whose peer
    /// compresses each message on its own, under the default configuration (messages of 64
    /// bytes or more are worth compressing).
    fn deflate(our_window_bits: u8) -> Deflate {
        let params = Negotiated {
            our_window_bits,
            peer_resets_context: true,
        };
        Deflate::new(params, &DeflateConfig::default())
    }

    #[test]
    fn reports_the_permessage_deflate_parameters_it_was_given() {
        assert_eq!(Connection::new(ServerEnd).deflate_params(), None);
        let params = Negotiated {
            our_window_bits: 10,
            peer_resets_context: false,
        };
        let conn = Connection::new(ServerEnd)
            .with_deflate(Deflate::new(params, &DeflateConfig::default()));
        assert_eq!(conn.deflate_params(), Some(params));
    }

    #[test]
    fn with_permessage_deflate_a_message_is_compressed_from_the_threshold_on() {
        let threshold = DeflateConfig::default().threshold;
        let mut shared = SharedDeflate::new();
        let mut out = Outbox::new();
        let mut server = Connection::new(ServerEnd).with_deflate(deflate(15));
        // Under the threshold: RSV1 clear and the payload as it is (RFC 7692 §6 lets an end
        // send any message uncompressed).
        let short = vec![b'a'; threshold - 1];
        server
            .send(MessageKind::Text, &short, &mut out, &mut shared)
            .unwrap();
        assert_eq!(
            drain(&mut out),
            [&[0x81, threshold as u8 - 1][..], &short].concat()
        );
        // From the threshold on: RSV1 set, and a client that agreed to the extension reads back
        // the message.
        let long = vec![b'a'; threshold];
        server
            .send(MessageKind::Text, &long, &mut out, &mut shared)
            .unwrap();
        let mut sent = drain(&mut out);
        assert_eq!(sent[0], 0xC1);
        assert!(sent.len() < 2 + long.len(), "{} bytes", sent.len());
        let mut client =
            Connection::new(ClientEnd(crate::entropy::Sequence(0))).with_deflate(deflate(15));
        let mut pos = 0;
        let message = loop {
            let r = client
                .receive(&mut sent[pos..], &mut out, &LIMITS, &mut shared)
                .unwrap();
            pos += r.consumed;
            match r.event {
                Some(Event::Message(message)) => break message.into_payload(),
                None => assert!(!r.needs_more(), "the whole frame is there"),
                Some(event) => panic!("{event:?}"),
            }
        };
        assert_eq!(message, long);
        // With a window of 8 bits, which zlib cannot compress with, nothing is compressed.
        let mut server = Connection::new(ServerEnd).with_deflate(deflate(8));
        server
            .send(MessageKind::Binary, &long, &mut out, &mut shared)
            .unwrap();
        assert_eq!(
            drain(&mut out),
            [&[0x82, threshold as u8][..], &long].concat()
        );
    }

    #[test]
    fn a_header_to_write_directly_only_for_a_frame_sent_as_it_is() {
        // A server's frame of a message not worth compressing goes out as it is: the header
        // of an unmasked final frame of the message's opcode.
        let mut server = Connection::new(ServerEnd);
        let (bytes, len) = server
            .direct_write_header(MessageKind::Binary, 200)
            .unwrap()
            .expect("a server without permessage-deflate writes every message as it is");
        assert_eq!(bytes[..len], [0x82, 126, 0, 200]);
        let mut server = Connection::new(ServerEnd).with_deflate(deflate(15));
        let (bytes, len) = server
            .direct_write_header(MessageKind::Text, 10)
            .unwrap()
            .expect("under the threshold");
        assert_eq!(bytes[..len], [0x81, 10]);
        // A message worth compressing must be compressed first.
        assert_eq!(server.direct_write_header(MessageKind::Text, 64), Ok(None));
        // A client masks every frame (§5.1), so it cannot write a payload as it lies.
        let mut client = Connection::new(ClientEnd(crate::entropy::Sequence(0)));
        assert_eq!(client.direct_write_header(MessageKind::Text, 10), Ok(None));
        // Nor may anything be sent after our Close.
        server
            .close(CloseCode::NORMAL, "", &mut Outbox::new())
            .unwrap();
        assert_eq!(
            server.direct_write_header(MessageKind::Text, 10),
            Err(SendError::NotOpen)
        );
    }

    /// Pseudo-random bytes (incompressible, and with every byte value).
    fn noise(len: usize) -> Vec<u8> {
        let mut state = 0x2545_f491_u32;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as u8
            })
            .collect()
    }

    #[test]
    fn a_large_frame_is_read_in_place_once_a_piece_of_it_arrived() {
        let payload = noise(300 * 1024);
        let wire = client_frame(0x82, &payload);
        let header_len = wire.len() - payload.len();
        let mut conn = Connection::new(ServerEnd);
        let mut out = Outbox::new();
        let mut shared = SharedDeflate::new();
        assert!(conn.payload_room().is_none(), "no frame under way");
        // The header and 100 KiB arrive through the shell's buffer.
        let mut first = wire[..header_len + 100 * 1024].to_vec();
        let first_len = first.len();
        let received = conn
            .receive(&mut first, &mut out, &LIMITS, &mut shared)
            .unwrap();
        assert_eq!(received.consumed, first_len);
        assert!(received.event.is_none());
        // Room for as much again as arrived (not the 200 KiB still to come), and the buffer
        // reserved to the frame's end (within half as much again as doubling).
        assert_eq!(conn.payload_room().map(|room| room.len()), Some(100 * 1024));
        let message = &conn.incoming.as_ref().unwrap().message;
        assert_eq!(message.capacity(), 300 * 1024);
        let mut fed = header_len + 100 * 1024;
        let mut rooms = Vec::new();
        let message = loop {
            let room = conn.payload_room().expect("room is lent");
            rooms.push(room.len());
            // An odd number of bytes first, so that the next piece starts mid-key.
            let take = if rooms.len() == 1 { 1001 } else { room.len() };
            room[..take].copy_from_slice(&wire[fed..fed + take]);
            fed += take;
            let received = conn
                .receive_in_place(take, &mut out, &LIMITS, &mut shared)
                .unwrap();
            assert_eq!(received.consumed, take);
            if let Some(Event::Message(message)) = received.event {
                break message;
            }
        };
        assert_eq!(fed, wire.len());
        assert_eq!(
            rooms,
            [100 * 1024, 100 * 1024 + 1001, 100 * 1024 - 2 * 1001]
        );
        assert_eq!(message.kind(), MessageKind::Binary);
        assert!(
            message.as_bytes() == payload.as_slice(),
            "unmasked, in order"
        );
        assert!(conn.payload_room().is_none(), "the frame is over");
        assert!(out.is_empty());
    }

    #[test]
    fn room_is_lent_only_for_an_uncompressed_frame_with_64_kib_or_more_to_come() {
        let mut shared = SharedDeflate::new();
        let mut out = Outbox::new();
        // 64 KiB still to come after 64 KiB: lent; one byte less: not.
        for (len, lent) in [(128 * 1024, true), (128 * 1024 - 1, false)] {
            let wire = client_frame(0x82, &vec![1; len]);
            let mut conn = Connection::new(ServerEnd);
            let mut first = wire[..wire.len() - (len - 64 * 1024)].to_vec();
            conn.receive(&mut first, &mut out, &LIMITS, &mut shared)
                .unwrap();
            assert_eq!(
                conn.payload_room().map(|room| room.len()),
                lent.then_some(64 * 1024),
                "{len}"
            );
        }
        // A compressed message is inflated, not read in place.
        let mut compressed = Vec::new();
        let mut encoder =
            flate2::write::DeflateEncoder::new(&mut compressed, flate2::Compression::fast());
        std::io::Write::write_all(&mut encoder, &noise(300 * 1024)).unwrap();
        encoder.finish().unwrap();
        let wire = client_frame(0xC2, &compressed);
        let mut conn = Connection::new(ServerEnd).with_deflate(deflate(15));
        let mut first = wire[..150 * 1024].to_vec();
        conn.receive(&mut first, &mut out, &LIMITS, &mut shared)
            .unwrap();
        assert!(conn.is_mid_frame());
        assert!(conn.payload_room().is_none());
        // Nor is anything once the connection has failed.
        let wire = client_frame(0x82, &vec![1; 200 * 1024]);
        let mut conn = Connection::new(ServerEnd);
        let mut first = wire[..100 * 1024].to_vec();
        conn.receive(&mut first, &mut out, &LIMITS, &mut shared)
            .unwrap();
        assert!(conn.payload_room().is_some());
        conn.fail(ProtocolError::InvalidUtf8, &mut out);
        assert!(conn.payload_room().is_none());
    }

    #[test]
    fn room_lent_and_not_used_is_given_back() {
        let payload = noise(200 * 1024);
        let mut wire = client_frame(0x82, &payload);
        let header_len = wire.len() - payload.len();
        let mut conn = Connection::new(ServerEnd);
        let mut out = Outbox::new();
        let mut shared = SharedDeflate::new();
        let split = header_len + 100 * 1024;
        conn.receive(&mut wire[..split], &mut out, &LIMITS, &mut shared)
            .unwrap();
        assert_eq!(conn.payload_room().unwrap().len(), 100 * 1024);
        assert_eq!(conn.buffered(), 200 * 1024, "the room lent is held");
        // The rest comes through `receive` after all.
        let received = conn
            .receive(&mut wire[split..], &mut out, &LIMITS, &mut shared)
            .unwrap();
        let Some(Event::Message(message)) = received.event else {
            panic!("the message is complete");
        };
        assert!(message.as_bytes() == payload.as_slice());
    }

    #[test]
    fn invalid_utf8_read_in_place_fails_the_connection_with_1007() {
        let mut text = vec![b'a'; 200 * 1024];
        text[150 * 1024] = 0xFF;
        let wire = client_frame(0x81, &text);
        let header_len = wire.len() - text.len();
        let mut conn = Connection::new(ServerEnd);
        let mut out = Outbox::new();
        let mut shared = SharedDeflate::new();
        let mut first = wire[..header_len + 100 * 1024].to_vec();
        conn.receive(&mut first, &mut out, &LIMITS, &mut shared)
            .unwrap();
        let room = conn.payload_room().unwrap();
        let len = room.len();
        room.copy_from_slice(&wire[header_len + 100 * 1024..][..len]);
        assert_eq!(
            conn.receive_in_place(len, &mut out, &LIMITS, &mut shared)
                .unwrap_err(),
            ProtocolError::InvalidUtf8
        );
        let close = drain(&mut out);
        assert_eq!(
            (close[0], &close[2..4]),
            (0x88, &[0x03, 0xEF][..]),
            "Close 1007"
        );
        assert!(conn.payload_room().is_none());
    }

    #[test]
    fn a_message_completed_in_place_after_the_server_closed_is_not_delivered() {
        let payload = noise(200 * 1024);
        let wire = client_frame(0x82, &payload);
        let header_len = wire.len() - payload.len();
        let mut conn = Connection::new(ServerEnd);
        let mut out = Outbox::new();
        let mut shared = SharedDeflate::new();
        let mut first = wire[..header_len + 100 * 1024].to_vec();
        conn.receive(&mut first, &mut out, &LIMITS, &mut shared)
            .unwrap();
        conn.close(CloseCode::NORMAL, "", &mut out).unwrap();
        let room = conn
            .payload_room()
            .expect("still reading what the peer sent");
        let len = room.len();
        room.copy_from_slice(&wire[header_len + 100 * 1024..]);
        let received = conn
            .receive_in_place(len, &mut out, &LIMITS, &mut shared)
            .unwrap();
        assert_eq!(received.consumed, len);
        assert!(received.event.is_none());
    }

    #[test]
    fn a_fragment_read_in_place_counts_towards_the_message_limit_once() {
        let payload = noise(300 * 1024);
        let mut wire = client_frame(0x02, &payload);
        let header_len = wire.len() - payload.len();
        wire.extend_from_slice(&client_frame(0x80, b"end"));
        let limits = Limits {
            max_message_size: 300 * 1024 + 3,
            ..LIMITS
        };
        let mut conn = Connection::new(ServerEnd);
        let mut out = Outbox::new();
        let mut shared = SharedDeflate::new();
        let mut fed = header_len + 150 * 1024;
        conn.receive(&mut wire[..fed].to_vec(), &mut out, &limits, &mut shared)
            .unwrap();
        let room = conn.payload_room().expect("room is lent in a fragment too");
        let len = room.len();
        room.copy_from_slice(&wire[fed..fed + len]);
        fed += len;
        assert!(
            conn.receive_in_place(len, &mut out, &limits, &mut shared)
                .unwrap()
                .event
                .is_none()
        );
        let mut rest = wire[fed..].to_vec();
        let received = conn
            .receive(&mut rest, &mut out, &limits, &mut shared)
            .unwrap();
        let Some(Event::Message(message)) = received.event else {
            panic!("a message of exactly the limit is delivered");
        };
        assert_eq!(message.as_bytes().len(), 300 * 1024 + 3);
        assert!(message.as_bytes()[..300 * 1024] == payload[..]);
    }

    /// Non-final fragments in front of a frame that completes something are taken in the same
    /// call as that frame: a control frame among fragments, or the message's final frame.
    #[test]
    fn one_receive_takes_a_run_of_fragments_and_the_frame_after_it() {
        let mut shared = SharedDeflate::new();
        let mut out = Outbox::new();
        let mut conn = Connection::new(ServerEnd);
        let fragments = concat(&[
            client_frame(0x01, b"He"),
            client_frame(0x00, b""),
            client_frame(0x00, b"l"),
        ]);
        let ping = client_frame(0x89, b"p");
        let last = client_frame(0x80, b"lo");
        let mut input = concat(&[fragments.clone(), ping.clone(), last.clone()]);
        let received = conn
            .receive(&mut input, &mut out, &LIMITS, &mut shared)
            .unwrap();
        assert_eq!(received.consumed, fragments.len() + ping.len());
        assert!(matches!(received.event, Some(Event::Ping(b"p"))));
        let rest = &mut input[fragments.len() + ping.len()..];
        let received = conn.receive(rest, &mut out, &LIMITS, &mut shared).unwrap();
        assert_eq!(received.consumed, last.len());
        let Some(Event::Message(message)) = received.event else {
            panic!("the final fragment completes the message");
        };
        assert_eq!(message.as_text(), Some("Hello"));

        // Fragments and their final frame together: one call.
        let mut whole = concat(&[fragments.clone(), last.clone()]);
        let whole_len = whole.len();
        let received = conn
            .receive(&mut whole, &mut out, &LIMITS, &mut shared)
            .unwrap();
        assert_eq!(received.consumed, whole_len);
        assert!(matches!(received.event, Some(Event::Message(m)) if m.as_text() == Some("Hello")));

        // A fragment cut short ends the run mid-frame: its bytes are taken, the rest awaited.
        let mut cut = concat(&[fragments.clone(), client_frame(0x00, b"xyz")[..8].to_vec()]);
        let cut_len = cut.len();
        let received = conn
            .receive(&mut cut, &mut out, &LIMITS, &mut shared)
            .unwrap();
        assert_eq!((received.consumed, received.event), (cut_len, None));
        assert!(conn.is_mid_frame());
        assert_eq!(
            drain(&mut out),
            [0x8A, 0x01, b'p'],
            "only the Pong was sent"
        );
    }

    /// A fragment that breaks a rule in the middle of a run fails the connection, as it would
    /// on its own.
    #[test]
    fn a_run_of_fragments_fails_on_the_first_bad_one() {
        let mut shared = SharedDeflate::new();
        let mut out = Outbox::new();
        let mut conn = Connection::new(ServerEnd);
        let limits = Limits {
            max_fragments: 3,
            ..LIMITS
        };
        let mut input = concat(&[
            client_frame(0x02, b"a"),
            client_frame(0x00, b"b"),
            client_frame(0x00, b"c"),
            client_frame(0x00, b"d"),
        ]);
        let error = conn
            .receive(&mut input, &mut out, &limits, &mut shared)
            .unwrap_err();
        assert_eq!(conn.state(), State::Failed);
        assert_eq!(drain(&mut out), failure(error, 1008));

        // A new message's first frame inside a fragmented one (§5.4): 1002.
        let mut conn = Connection::new(ServerEnd);
        let mut input = concat(&[client_frame(0x01, b"a"), client_frame(0x01, b"b")]);
        assert_eq!(
            conn.receive(&mut input, &mut out, &LIMITS, &mut shared),
            Err(ProtocolError::ExpectedContinuation)
        );
        assert_eq!(conn.state(), State::Failed);
    }

    #[test]
    fn a_non_final_data_frame_is_known_by_its_first_byte() {
        for (first, expected) in [
            (0x00, true),
            (0x01, true),
            (0x02, true),
            (0x80, false),
            (0x81, false),
            (0x82, false),
            (0x03, false),
            (0x08, false),
            (0x09, false),
            (0x0A, false),
            (0x89, false),
            (0x41, true),
        ] {
            assert_eq!(
                frame::is_non_final_data_frame(first),
                expected,
                "{first:#04x}"
            );
        }
    }

    /// The batch `conn` takes from the front of `input`.
    fn take_batch<P: Endpoint>(
        conn: &mut Connection<P>,
        input: &mut [u8],
        limits: &Limits,
        budget: usize,
    ) -> Batch {
        let mut batch = Batch::new();
        conn.receive_batch(input, limits, budget, &mut batch);
        batch
    }

    /// The messages of a batch taken from `input`, owned.
    fn batch_messages(batch: &Batch, input: &[u8]) -> Vec<Seen> {
        (0..batch.len())
            .map(|index| seen_message(batch.message(input, index)))
            .collect()
    }

    #[test]
    fn a_batch_takes_whole_messages_and_leaves_any_other_frame_as_it_came() {
        let first = concat(&[client_frame(0x81, b"a"), client_frame(0x82, b"bc")]);
        let limits = Limits {
            max_frame_size: 10,
            ..LIMITS
        };
        let unmasked = [0x81, 0x01, b'x'].to_vec();
        let mut reserved_opcode = client_frame(0x82, b"z");
        reserved_opcode[0] = 0x83;
        for (name, stopper) in [
            ("a ping", client_frame(0x89, b"p")),
            ("a pong", client_frame(0x8A, b"p")),
            ("a close", client_frame(0x88, &1000u16.to_be_bytes())),
            ("a first fragment", client_frame(0x01, b"frag")),
            ("a continuation", client_frame(0x80, b"more")),
            ("a compressed-looking frame", client_frame(0xC1, b"z")),
            ("reserved bits", client_frame(0xA1, b"z")),
            ("a reserved opcode", reserved_opcode),
            ("an unmasked frame", unmasked),
            ("a frame over the limit", client_frame(0x82, &[0; 11])),
            (
                "a partial header",
                client_frame(0x82, b"part")[..1].to_vec(),
            ),
            (
                "a partial payload",
                client_frame(0x82, b"part")[..7].to_vec(),
            ),
            ("invalid text", client_frame(0x81, b"\xff\xfe")),
        ] {
            let mut input = concat(&[first.clone(), stopper.clone()]);
            let mut conn = Connection::new(ServerEnd);
            let mut out = Outbox::new();
            let mut batch = take_batch(&mut conn, &mut input, &limits, usize::MAX);
            assert_eq!(
                batch_messages(&batch, &input),
                [Seen::Text("a".into()), Seen::Binary(b"bc".to_vec())],
                "{name}"
            );
            assert_eq!(batch.consumed(), first.len(), "{name}");
            assert_eq!(input[first.len()..], stopper, "{name}: left as it came");
            assert_eq!(drain(&mut out), b"", "{name}: nothing sent");
            assert_eq!(conn.state(), State::Open, "{name}");
            // Nothing more to take until `receive` has taken the frame: the same batch, given
            // again, is emptied.
            conn.receive_batch(&mut input[first.len()..], &limits, usize::MAX, &mut batch);
            assert!(batch.is_empty() && batch.consumed() == 0, "{name}");
        }
    }

    #[test]
    fn invalid_text_after_a_batch_fails_the_connection_when_received() {
        let mut input = concat(&[
            client_frame(0x81, b"ok"),
            client_frame(0x81, b"\xce"),
            client_frame(0x81, b"never"),
        ]);
        let mut conn = Connection::new(ServerEnd);
        let mut out = Outbox::new();
        let mut shared = SharedDeflate::new();
        let batch = take_batch(&mut conn, &mut input, &LIMITS, usize::MAX);
        assert_eq!(batch_messages(&batch, &input), [Seen::Text("ok".into())]);
        let consumed = batch.consumed();
        assert_eq!(
            conn.receive(&mut input[consumed..], &mut out, &LIMITS, &mut shared),
            Err(ProtocolError::InvalidUtf8)
        );
        assert_eq!(drain(&mut out), failure(ProtocolError::InvalidUtf8, 1007));
    }

    #[test]
    fn a_batch_takes_at_most_its_size_and_stops_once_its_budget_is_used() {
        let frames: Vec<Vec<u8>> = (0..BATCH_MAX + 5)
            .map(|i| client_frame(0x82, &[i as u8; 3]))
            .collect();
        let input = concat(&frames);
        for (budget, taken) in [
            (0, 0),
            (1, 1),
            (3, 1),
            (4, 2),
            (7, 3),
            (usize::MAX, BATCH_MAX),
        ] {
            let mut conn = Connection::new(ServerEnd);
            let mut copy = input.clone();
            let batch = take_batch(&mut conn, &mut copy, &LIMITS, budget);
            assert_eq!(batch.len(), taken, "a budget of {budget}");
            assert_eq!(batch.consumed(), frames[..taken].concat().len());
            let expected: Vec<Seen> = (0..taken).map(|i| Seen::Binary(vec![i as u8; 3])).collect();
            assert_eq!(batch_messages(&batch, &copy), expected);
        }
        // Empty messages use no budget: they are taken as long as some is left.
        let mut empties = concat(&[client_frame(0x82, b""), client_frame(0x81, b"")]);
        let mut conn = Connection::new(ServerEnd);
        assert_eq!(take_batch(&mut conn, &mut empties, &LIMITS, 1).len(), 2);
    }

    #[test]
    fn a_batch_takes_nothing_mid_message_or_once_the_connection_is_closing() {
        let mut shared = SharedDeflate::new();
        let mut out = Outbox::new();
        let mut conn = Connection::new(ServerEnd);
        conn.receive(
            &mut client_frame(0x01, b"frag"),
            &mut out,
            &LIMITS,
            &mut shared,
        )
        .unwrap();
        let mut last = client_frame(0x80, b"ment");
        assert!(take_batch(&mut conn, &mut last, &LIMITS, usize::MAX).is_empty());
        assert_eq!(last, client_frame(0x80, b"ment"), "left as it came");

        let mut conn = Connection::new(ServerEnd);
        assert!(conn.delivers_messages());
        conn.close(CloseCode::NORMAL, "", &mut out).unwrap();
        let mut input = client_frame(0x81, b"late");
        assert!(take_batch(&mut conn, &mut input, &LIMITS, usize::MAX).is_empty());
        // A server's application that closed gets no more messages; a client's does.
        assert!(!conn.delivers_messages());
        let mut client = Connection::new(ClientEnd(crate::entropy::Sequence(0)));
        client.close(CloseCode::NORMAL, "", &mut out).unwrap();
        assert!(client.delivers_messages());
    }

    #[test]
    fn a_client_takes_batches_of_unmasked_frames_and_stops_at_a_masked_one() {
        let mut conn = Connection::new(ClientEnd(crate::entropy::Sequence(0)));
        let masked = client_frame(0x81, b"masked");
        let mut input = concat(&[
            vec![0x81, 0x02, b'h', b'i'],
            vec![0x82, 0x00],
            masked.clone(),
        ]);
        let batch = take_batch(&mut conn, &mut input, &LIMITS, usize::MAX);
        assert_eq!(
            batch_messages(&batch, &input),
            [Seen::Text("hi".into()), Seen::Binary(vec![])]
        );
        assert_eq!(input[6..], masked);
    }
}
