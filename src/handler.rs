//! The application's side of the server: the [`Handler`] trait it implements, the [`Context`]
//! it acts through, and the two handlers the binary ships ([`Echo`] and [`Broadcast`]).

use crate::broadcast;
use crate::close::CloseCode;
use crate::connection::Connection;
use crate::error::SendError;
use crate::handshake::Request;
use crate::message::{Message, MessageKind};
use crate::outbox::Outbox;
use crate::peer::Peer;
use crate::server::{Config, Stats, Timers};
use slab::Slab;
use std::borrow::Cow;
use std::io::{IoSlice, Write};
use std::rc::Rc;

/// Names one connection for as long as it is open. Slab slots are reused; the generation makes
/// an id of a closed connection stale instead of pointing at a newer one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerId {
    pub(crate) key: usize,
    pub(crate) generation: u32,
}

/// What the application does with connections. Every method runs on the event loop's thread and
/// should return quickly.
pub trait Handler {
    /// A WebSocket connection opened.
    fn on_open(&mut self, _ctx: &mut Context<'_>, _peer: PeerId) {}
    /// A complete text or binary message arrived.
    fn on_message(&mut self, ctx: &mut Context<'_>, peer: PeerId, message: Message<'_>);
    /// A connection that was open is gone (closed cleanly, failed, or dropped).
    fn on_close(&mut self, _ctx: &mut Context<'_>, _peer: PeerId) {}
    /// Picks a subprotocol from the client's offer (RFC 6455 §4.2.2 item 5.4), or none.
    fn choose_protocol<'r>(&mut self, _request: &Request<'r>) -> Option<&'r str> {
        None
    }
}

/// Access to every connection, handed to the [`Handler`] for the duration of a call.
pub struct Context<'s> {
    pub(crate) peers: &'s mut Slab<Peer>,
    pub(crate) dirty: &'s mut Vec<usize>,
    pub(crate) config: &'s Config,
    pub(crate) stats: &'s mut Stats,
    pub(crate) timers: &'s mut Timers,
}

impl Context<'_> {
    /// The live peer `id` names, if it still exists.
    fn find(peers: &mut Slab<Peer>, id: PeerId) -> Option<&mut Peer> {
        peers
            .get_mut(id.key)
            .filter(|p| p.generation == id.generation && !p.doomed)
    }

    pub(crate) fn mark_dirty(peer: &mut Peer, key: usize, dirty: &mut Vec<usize>) {
        if !peer.dirty {
            peer.dirty = true;
            dirty.push(key);
        }
    }

    /// Queues a message to one connection. Its output is written at the end of the current pass,
    /// together with everything else queued for it. If its queue grows past the outbound
    /// high-water mark, the server stops reading from it until the queue drains (backpressure).
    pub fn send(&mut self, to: PeerId, kind: MessageKind, payload: &[u8]) -> Result<(), SendError> {
        self.queue(to, |connection, outbox| {
            connection.send(kind, payload, outbox)
        })
    }

    /// Runs `send` on one connection's state and outbox, then applies the outbound high-water
    /// mark and marks the peer for flushing.
    fn queue(
        &mut self,
        to: PeerId,
        send: impl FnOnce(&mut Connection, &mut Outbox) -> Result<(), SendError>,
    ) -> Result<(), SendError> {
        let high_water = self.config.outbound_high_water;
        let Some(peer) = Self::find(self.peers, to) else {
            return Err(SendError::NotOpen);
        };
        let Some((connection, outbox)) = peer.connection() else {
            return Err(SendError::NotOpen);
        };
        send(connection, outbox)?;
        self.stats.messages_out += 1;
        Self::queued(peer, to.key, self.dirty, high_water);
        Ok(())
    }

    /// After output was queued for a peer that sends to it: pause reading from it while its queue
    /// is over the high-water mark (backpressure), and mark it for flushing.
    fn queued(peer: &mut Peer, key: usize, dirty: &mut Vec<usize>, high_water: usize) {
        if peer.outbox.len() > high_water {
            peer.read_paused = true;
        }
        Self::mark_dirty(peer, key, dirty);
    }

    /// Sends a received message on to one connection as the same type. A large payload that the
    /// connection already owns (an assembled or inflated message) is queued without a copy.
    pub fn forward(&mut self, to: PeerId, message: Message<'_>) -> Result<(), SendError> {
        /// Below this size copying the payload is cheaper than giving it an output chunk of its own
        /// or a write of its own.
        const ZERO_COPY_MIN: usize = 4096;
        let kind = message.kind();
        match message.into_cow() {
            Cow::Owned(payload) if payload.len() >= ZERO_COPY_MIN => self
                .queue(to, |connection, outbox| {
                    connection.send_owned(kind, payload, outbox)
                }),
            Cow::Borrowed(payload) if payload.len() >= ZERO_COPY_MIN => {
                self.write_through(to, kind, payload)
            }
            payload => self.send(to, kind, &payload),
        }
    }

    /// Writes a large message straight from where it lies (the loop's read buffer) when nothing is
    /// queued ahead of it, and queues only what the kernel does not take. Small messages are
    /// queued instead, so that all of a pass's frames share one write.
    fn write_through(
        &mut self,
        to: PeerId,
        kind: MessageKind,
        payload: &[u8],
    ) -> Result<(), SendError> {
        let Some(peer) = Self::find(self.peers, to) else {
            return Err(SendError::NotOpen);
        };
        if !peer.outbox.is_empty() {
            return self.send(to, kind, payload); // keep the order of what is queued
        }
        let Some((connection, _)) = peer.connection() else {
            return Err(SendError::NotOpen);
        };
        let Some((header, header_len)) = connection.direct_write_header(kind, payload.len())?
        else {
            return self.send(to, kind, payload); // compressed or masked: not sent as it lies
        };
        let header = &header[..header_len];
        // On WouldBlock nothing went out; another error shows again when the queued bytes are
        // flushed, which drops the peer.
        let slices = [IoSlice::new(header), IoSlice::new(payload)];
        let written = peer.stream.write_vectored(&slices).unwrap_or_default();
        self.stats.bytes_out += written as u64;
        self.stats.messages_out += 1;
        if written < header.len() + payload.len() {
            let (header_rest, payload_rest) = if written < header.len() {
                (&header[written..], payload)
            } else {
                (&[][..], &payload[written - header.len()..])
            };
            peer.outbox.append(|buf| {
                buf.extend_from_slice(header_rest);
                buf.extend_from_slice(payload_rest);
            });
            Self::queued(peer, to.key, self.dirty, self.config.outbound_high_water);
        }
        Ok(())
    }

    /// Sends a message to every open connection. The frame is encoded once and shared by every
    /// recipient's queue. A recipient whose queue is over the outbound high-water mark is a slow
    /// consumer and is disconnected, so that one client cannot make the server buffer without
    /// bound; every other recipient still gets every message, in order. Returns the number of
    /// recipients.
    pub fn broadcast(&mut self, kind: MessageKind, payload: &[u8]) -> usize {
        let high_water = self.config.outbound_high_water;
        let level = self.config.deflate.level;
        // One plain frame, and one compressed frame per window size in use: each is encoded once,
        // when first needed, and shared by every recipient of its kind.
        let mut plain: Option<Rc<[u8]>> = None;
        let mut compressed: [Option<Rc<[u8]>>; 16] = Default::default();
        let mut recipients = 0;
        for (key, peer) in self.peers.iter_mut() {
            if peer.doomed {
                continue;
            }
            let Some((connection, outbox)) = peer.connection() else {
                continue;
            };
            let frame = match connection.deflate_params() {
                Some(params) if connection.compresses(payload.len()) => {
                    let bits = params.server_max_window_bits;
                    compressed[bits as usize]
                        .get_or_insert_with(|| {
                            broadcast::encode_shared_compressed(kind, payload, bits, level)
                        })
                        .clone()
                }
                _ => plain
                    .get_or_insert_with(|| broadcast::encode_shared(kind, payload))
                    .clone(),
            };
            let frame_len = frame.len();
            if connection.send_shared(frame, outbox).is_err() {
                continue;
            }
            recipients += 1;
            if peer.outbox.len() > high_water + frame_len {
                peer.doomed = true;
                self.stats.slow_consumer_disconnects += 1;
            }
            Self::mark_dirty(peer, key, self.dirty);
        }
        self.stats.messages_out += recipients as u64;
        recipients
    }

    /// Starts the closing handshake with one connection (RFC 6455 §7.1.2). If the peer does not
    /// answer within the close timeout, TCP is closed anyway.
    pub fn close(&mut self, id: PeerId, code: CloseCode, reason: &str) -> Result<(), SendError> {
        let close_timeout = self.config.close_timeout_ms();
        let Some(peer) = Self::find(self.peers, id) else {
            return Err(SendError::NotOpen);
        };
        let Some((connection, outbox)) = peer.connection() else {
            return Err(SendError::NotOpen);
        };
        connection.close(code, reason, outbox)?;
        self.stats.count_close_sent(code);
        let at = self.timers.now + close_timeout;
        self.timers.set(peer, id.key, at);
        Self::mark_dirty(peer, id.key, self.dirty);
        Ok(())
    }

    /// How many connections the server holds (open, handshaking or closing).
    pub fn connection_count(&self) -> usize {
        self.peers.len()
    }
}

/// Echoes every message back to its sender as the same type: the Autobahn|Testsuite testee.
#[derive(Debug, Default)]
pub struct Echo;

impl Handler for Echo {
    fn on_message(&mut self, ctx: &mut Context<'_>, peer: PeerId, message: Message<'_>) {
        // Fails only if the connection is closing, when there is nothing to echo to.
        let _ = ctx.forward(peer, message);
    }
}

/// Sends every message to every open connection, the sender included (a chat relay, like
/// `wss.clients.forEach(c => c.send(msg))` in Node's `ws`).
#[derive(Debug, Default)]
pub struct Broadcast;

impl Handler for Broadcast {
    fn on_message(&mut self, ctx: &mut Context<'_>, _peer: PeerId, message: Message<'_>) {
        ctx.broadcast(message.kind(), message.as_bytes());
    }
}
