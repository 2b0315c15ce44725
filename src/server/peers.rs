//! Every connection of the server, in a `Slab`, and the output policy around them: queuing a
//! message for one connection or for all of them, backpressure and slow consumers, writing, and
//! each connection's timer. The protocol itself is the core's ([`ServerConnection`]); this
//! table only moves its bytes and applies the server's memory policy.

use super::config::Config;
use super::conn::Conn;
use super::outbound::{self, ConnectError, ConnectOptions, Outbound};
use super::peer::Peer;
use super::stats::{Stats, bump};
use super::timers::Timers;
use super::tls::TlsSession;
use super::topics::{TopicError, Topics};
use crate::client_handshake::WsUrl;
use crate::close::CloseCode;
use crate::deflate::SharedDeflate;
use crate::error::SendError;
use crate::message::{Message, MessageKind};
use crate::outbox::{COPY_MAX, SPARE_MAX, Spare};
use crate::prepared::PreparedFrame;
use crate::server_connection::{ServerConfig, ServerConnection};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use slab::Slab;
use std::borrow::Cow;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Names one connection for as long as it exists. Slab slots are reused; the generation makes
/// an id of a closed connection stale instead of pointing at a newer one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId {
    pub(crate) key: usize,
    pub(crate) generation: u32,
}

impl std::fmt::Display for PeerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}.{}", self.key, self.generation)
    }
}

/// The id of `peer`, which is in slot `key`.
fn peer_id(key: usize, peer: &Peer) -> PeerId {
    PeerId {
        key,
        generation: peer.generation,
    }
}

/// The limits on one connection's queued output, applied whenever something is queued: over the
/// high-water mark, stop reading from it; over the hard limit, disconnect it.
#[inline]
fn apply_output_limits(key: usize, peer: &mut Peer, config: &Config, stats: &mut Stats) {
    let queued = peer.conn.queued();
    // Checked on every message queued; almost always under both limits.
    if queued > config.outbound_high_water.min(config.max_outbound) {
        over_output_limit(key, peer, queued, config, stats);
    }
}

/// What [`apply_output_limits`] does once `queued` is over one of the limits.
#[cold]
fn over_output_limit(
    key: usize,
    peer: &mut Peer,
    queued: usize,
    config: &Config,
    stats: &mut Stats,
) {
    if queued > config.max_outbound && !peer.conn.is_closed() {
        let id = peer_id(key, peer);
        log::debug!("{id}: slow consumer: {queued} bytes queued, over the hard limit");
        peer.conn.abort("slow consumer");
        stats.slow_consumer_disconnects += 1;
    } else if queued > config.outbound_high_water {
        peer.read_paused = true;
    }
}

/// The bytes a peer holds for its client: output queued, input not consumed, and the message
/// being assembled (saturating at `u32::MAX`, far above any per-connection limit's default).
fn held(peer: &Peer) -> u32 {
    let bytes = peer.conn.queued() + peer.pending_len() + peer.conn.buffered();
    bytes.min(u32::MAX as usize) as u32
}

/// Puts `peer` (at `key`) on the `dirty` list, once.
fn list_dirty(dirty: &mut Vec<usize>, key: usize, peer: &mut Peer) {
    if !peer.dirty {
        peer.dirty = true;
        dirty.push(key);
    }
}

/// Applies the output policy after a message was queued for `peer` (slot `key`): a connection
/// whose queue is over the high-water mark is not read from until it drains (backpressure), and
/// one whose queue passes the hard limit is disconnected at once. The peer goes on the list of
/// those to flush.
#[inline(always)]
fn queued(key: usize, peer: &mut Peer, config: &Config, stats: &mut Stats, dirty: &mut Vec<usize>) {
    apply_output_limits(key, peer, config, stats);
    list_dirty(dirty, key, peer);
    stats.messages_out += 1;
}

/// The peer `id` names, or `NotOpen` if it is gone.
fn live(slab: &mut Slab<Peer>, id: PeerId) -> Result<&mut Peer, SendError> {
    slab.get_mut(id.key)
        .filter(|peer| peer.generation == id.generation)
        .ok_or(SendError::NotOpen)
}

/// The token that routes a socket's events to slot `key` of `generation`.
pub(crate) fn token(key: usize, generation: u32) -> Token {
    Token(key | (generation as usize) << 32)
}

/// The slot and generation a token names.
pub(crate) fn split_token(token: Token) -> (usize, u32) {
    (token.0 & 0xFFFF_FFFF, (token.0 >> 32) as u32)
}

/// Below this size, copying a message into the output queue is cheaper than giving it a chunk
/// (or a write) of its own.
const ZERO_COPY_MIN: usize = 4096;

/// The most emptied output buffers the loop keeps for reuse: as many connections as are served
/// between two writes of one of them need no allocation for their output. The buffers of every
/// other connection are freed as soon as written, so that a connection with nothing to send
/// holds none.
pub const SPARE_POOL: usize = 16;
/// The largest output buffer (with its list of chunks), in bytes, kept for reuse: the pool holds
/// at most 16 × 16 KiB.
pub const SPARE_POOLED_MAX: usize = 16 * 1024;

/// What flushing a peer found.
pub(crate) enum Flushed {
    /// Nothing more to do.
    Done,
    /// Its queue drained below the low-water mark while its input was paused: read it now
    /// (edge-triggered readiness will not report input that waited meanwhile).
    ResumeReading,
    /// The connection is over: remove it.
    Closed,
}

/// One peer and the state it is served with, borrowed at once.
pub(crate) struct Parts<'a> {
    pub peer: &'a mut Peer,
    pub shared: &'a mut SharedDeflate,
    pub stats: &'a mut Stats,
}

/// Every connection, and what the loop needs to serve them.
pub(crate) struct Peers {
    slab: Slab<Peer>,
    /// Peers with output queued (or a state change) during the current pass.
    dirty: Vec<usize>,
    registry: Registry,
    pub config: Arc<Config>,
    connection_config: Arc<ServerConfig>,
    /// The same, with the metrics listener's `Host` allow-list.
    metrics_connection_config: Arc<ServerConfig>,
    pub stats: Stats,
    /// The compressors and inflater every connection on this thread shares.
    pub shared: SharedDeflate,
    pub timers: Timers,
    /// The current time, read once per turn of the loop.
    pub now: Instant,
    /// The bytes every peer held when last counted (the sum of their `held`).
    pub held_total: u64,
    /// Memory taken from output queues as they were emptied, for the next queues to fill (at
    /// most [`SPARE_POOL`] of at most [`SPARE_POOLED_MAX`] bytes each).
    spares: Vec<Spare>,
    /// Frames published during this pass, in order, not yet handed to their recipients.
    published: Vec<Run>,
    /// Where a recipient's frames are gathered for one write.
    scratch: Vec<u8>,
    next_generation: u32,
    /// Every topic with subscribers, and every connection's subscriptions.
    pub topics: Topics,
    /// The broker that carries topics to other processes, if there is one.
    #[cfg(feature = "redis")]
    broker: Option<super::redis::Broker>,
}

impl Peers {
    /// The peer table for a server with `config`; connections from the metrics listener run
    /// under `metrics_connection` (the same settings with that listener's `Host` allow-list).
    pub fn new(
        config: Arc<Config>,
        metrics_connection: ServerConfig,
        registry: Registry,
        now: Instant,
    ) -> Self {
        Peers {
            slab: Slab::new(),
            dirty: Vec::new(),
            registry,
            connection_config: Arc::new(config.connection.clone()),
            metrics_connection_config: Arc::new(metrics_connection),
            config,
            stats: Stats::default(),
            shared: SharedDeflate::new(),
            timers: Timers::new(now),
            now,
            held_total: 0,
            spares: Vec::new(),
            published: Vec::new(),
            scratch: Vec::new(),
            next_generation: 0,
            topics: Topics::default(),
            #[cfg(feature = "redis")]
            broker: None,
        }
    }

    pub fn len(&self) -> usize {
        self.slab.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// Whether every connection is still reading (or answering) its request head.
    pub fn all_handshaking(&self) -> bool {
        self.slab.iter().all(|(_, peer)| peer.conn.is_handshaking())
    }

    /// The slots in use.
    pub fn keys(&self) -> Vec<usize> {
        self.slab.iter().map(|(key, _)| key).collect()
    }

    /// Adds an accepted socket, registered for reading.
    pub fn insert(
        &mut self,
        mut stream: TcpStream,
        on_metrics_listener: bool,
    ) -> io::Result<PeerId> {
        let tls = self.tls_session(on_metrics_listener)?;
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1);
        let entry = self.slab.vacant_entry();
        let key = entry.key();
        self.registry
            .register(&mut stream, token(key, generation), Interest::READABLE)?;
        let config = if on_metrics_listener {
            &self.metrics_connection_config
        } else {
            &self.connection_config
        };
        let conn = Conn::Accepted(ServerConnection::new(config.clone(), self.now));
        entry.insert(Peer::new(
            stream,
            generation,
            conn,
            tls,
            on_metrics_listener,
        ));
        self.arm_timer(key);
        Ok(PeerId { key, generation })
    }

    /// Opens a connection to `url`, whose host must be an address (see
    /// [`Context::connect`](super::Context::connect)).
    pub fn connect_url(
        &mut self,
        url: &str,
        options: ConnectOptions,
    ) -> Result<PeerId, ConnectError> {
        let url = outbound::parse(url)?;
        let addr = outbound::address(&url)?;
        self.connect(addr, &url, options)
    }

    /// Opens a connection to `addr` for `url` (see [`Context::connect_to`](super::Context::connect_to)):
    /// starts the TCP connect, and queues the opening request to be written once it completes.
    pub fn connect(
        &mut self,
        addr: SocketAddr,
        url: &WsUrl,
        options: ConnectOptions,
    ) -> Result<PeerId, ConnectError> {
        if self.slab.len() >= self.config.max_connections {
            return Err(ConnectError::TooManyConnections);
        }
        let outbound = Outbound::new(url, options, self.now)?;
        let mut stream = TcpStream::connect(addr).map_err(ConnectError::Io)?;
        if let Err(e) = stream.set_nodelay(true) {
            log::debug!("{addr}: set_nodelay: {e}");
        }
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1);
        let entry = self.slab.vacant_entry();
        let key = entry.key();
        // WRITABLE reports the end of the connect; the request then waits to be written.
        self.registry
            .register(
                &mut stream,
                token(key, generation),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(ConnectError::Io)?;
        let conn = Conn::Outbound(Box::new(outbound));
        let mut peer = Peer::new(stream, generation, conn, None, false);
        peer.write_interest = true;
        entry.insert(peer);
        self.arm_timer(key);
        let id = PeerId { key, generation };
        log::debug!("{id}: connecting to {addr} for {}", url.resource);
        Ok(id)
    }

    /// A peer whose TCP connect was in progress got an event: finds out whether the connect
    /// completed (the request is then written at the end of the pass) or failed (the peer is
    /// then closed, and the failure kept for the handler). Returns whether it is still
    /// connecting.
    pub fn complete_connect(&mut self, key: usize) -> bool {
        let Some(peer) = self.slab.get_mut(key) else {
            return false;
        };
        let id = peer_id(key, peer);
        let result = match peer.stream.take_error() {
            Ok(Some(e)) | Err(e) => Err(e),
            Ok(None) => peer.stream.peer_addr().map(drop),
        };
        let Some(outbound) = peer.conn.outbound_mut() else {
            return false;
        };
        match result {
            Ok(()) => {
                log::debug!("{id}: connected");
                outbound.connected();
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return true,
            Err(e) => {
                log::debug!("{id}: connect: {e}");
                outbound.fail_with(|| ConnectError::Io(e));
                peer.conn.abort("connect failed");
            }
        }
        self.mark_dirty(key);
        false
    }

    /// A TLS session for a new client of the WebSocket listener, if it serves TLS.
    #[cfg(feature = "tls")]
    fn tls_session(&self, on_metrics_listener: bool) -> io::Result<Option<TlsSession>> {
        match &self.config.tls {
            Some(tls) if !on_metrics_listener => TlsSession::new(tls).map(Some),
            _ => Ok(None),
        }
    }

    /// Without the `tls` feature, no client has a TLS session.
    #[cfg(not(feature = "tls"))]
    fn tls_session(&self, _on_metrics_listener: bool) -> io::Result<Option<TlsSession>> {
        Ok(None)
    }

    /// The peer in slot `key`, if any.
    pub fn slot(&mut self, key: usize) -> Option<&mut Peer> {
        self.slab.get_mut(key)
    }

    /// The peer `id` names, if it still exists.
    pub fn get(&mut self, id: PeerId) -> Option<&mut Peer> {
        self.slab
            .get_mut(id.key)
            .filter(|peer| peer.generation == id.generation)
    }

    /// The peer in slot `key` with the state it is served with, borrowed together.
    pub fn parts(&mut self, key: usize) -> Option<Parts<'_>> {
        Some(Parts {
            peer: self.slab.get_mut(key)?,
            shared: &mut self.shared,
            stats: &mut self.stats,
        })
    }

    /// The id of the peer in slot `key`.
    pub fn id(&self, key: usize) -> Option<PeerId> {
        self.slab.get(key).map(|peer| peer_id(key, peer))
    }

    /// Puts a peer on the list to flush at the end of the pass.
    pub fn mark_dirty(&mut self, key: usize) {
        if let Some(peer) = self.slab.get_mut(key) {
            list_dirty(&mut self.dirty, key, peer);
        }
    }

    /// The next peer to flush. A listed peer that was flushed since (see
    /// [`take_dirty`](Self::take_dirty)), or is gone, is passed over.
    pub fn pop_dirty(&mut self) -> Option<usize> {
        while let Some(key) = self.dirty.pop() {
            if self.take_dirty(key) {
                return Some(key);
            }
        }
        None
    }

    /// Takes the peer off the list of peers to flush, if it is on it, for a caller that flushes
    /// it now: whether it was.
    pub fn take_dirty(&mut self, key: usize) -> bool {
        self.slab
            .get_mut(key)
            .is_some_and(|peer| std::mem::take(&mut peer.dirty))
    }

    /// Queues a message for one connection.
    #[inline(always)]
    pub fn send(&mut self, to: PeerId, kind: MessageKind, payload: &[u8]) -> Result<(), SendError> {
        self.hand_out();
        let peer = live(&mut self.slab, to)?;
        peer.conn.send(kind, payload, &mut self.shared)?;
        queued(to.key, peer, &self.config, &mut self.stats, &mut self.dirty);
        Ok(())
    }

    /// Queues a message whose payload is an owned buffer for one connection, without copying it.
    pub fn send_owned(
        &mut self,
        to: PeerId,
        kind: MessageKind,
        payload: Vec<u8>,
    ) -> Result<(), SendError> {
        self.hand_out();
        let peer = live(&mut self.slab, to)?;
        peer.conn.send_owned(kind, payload, &mut self.shared)?;
        queued(to.key, peer, &self.config, &mut self.stats, &mut self.dirty);
        Ok(())
    }

    /// Sends a received message on to one connection as the same type, copying it only when
    /// that is cheaper: a large payload the connection already owns (an assembled or inflated
    /// message) is queued by reference, and a large one still in the read buffer is written
    /// straight from it when nothing is queued ahead of it.
    #[inline(always)]
    pub fn forward(&mut self, to: PeerId, message: Message<'_>) -> Result<(), SendError> {
        let kind = message.kind();
        match message.into_cow() {
            Cow::Borrowed(payload) if payload.len() < ZERO_COPY_MIN => self.send(to, kind, payload),
            payload => self.forward_large(to, kind, payload),
        }
    }

    /// [`forward`](Self::forward) for a payload still in the read buffer of [`ZERO_COPY_MIN`]
    /// bytes or more, or one the connection owns (out of line: the small message's path stays
    /// short).
    #[inline(never)]
    fn forward_large(
        &mut self,
        to: PeerId,
        kind: MessageKind,
        payload: Cow<'_, [u8]>,
    ) -> Result<(), SendError> {
        match payload {
            Cow::Owned(payload) if payload.len() >= ZERO_COPY_MIN => {
                self.send_owned(to, kind, payload)
            }
            Cow::Owned(payload) => self.send(to, kind, &payload),
            Cow::Borrowed(payload) => {
                debug_assert!(payload.len() >= ZERO_COPY_MIN, "forward sends a small one");
                self.hand_out();
                let peer = live(&mut self.slab, to)?;
                let (conn, mut transport) = peer.transport();
                let written = conn.send_through(kind, payload, &mut transport, &mut self.shared)?;
                self.stats.bytes_out += written as u64;
                queued(to.key, peer, &self.config, &mut self.stats, &mut self.dirty);
                Ok(())
            }
        }
    }

    /// Publishes a frame to every open connection; it is written at the end of the pass (see
    /// [`hand_out`](Self::hand_out)). The output limits apply to each recipient as to any
    /// connection: over the high-water mark it is not read from; judged a slow consumer only once
    /// its queue stays over the mark after writing (see [`flush`](Self::flush)). Returns the
    /// number of connections open now (one that closes before the end of the pass does not get
    /// it).
    pub fn broadcast(&mut self, frame: PreparedFrame) -> usize {
        self.add_publication(None, frame, None);
        self.stats.open as usize
    }

    /// Publishes a frame to every subscriber of `topic` on this server but `except`, with the
    /// same output limits and timing as [`broadcast`](Self::broadcast). Returns the number of
    /// those subscribers.
    pub fn deliver(&mut self, topic: &str, frame: PreparedFrame, except: Option<PeerId>) -> usize {
        let recipients = self.subscribers_but(topic, except);
        if recipients > 0 {
            self.add_publication(Some(topic), frame, except);
        }
        recipients
    }

    /// Adds a frame to this pass's publications, for the subscribers of `topic` (every open
    /// connection if `None`) but `except`: to the last run if it has the same audience,
    /// otherwise as a new run.
    fn add_publication(
        &mut self,
        topic: Option<&str>,
        frame: PreparedFrame,
        except: Option<PeerId>,
    ) {
        match self.published.last_mut() {
            Some(run) if run.audience.is(topic) => run.frames.push((frame, except)),
            _ => self.published.push(Run {
                audience: Audience::of(topic),
                frames: vec![(frame, except)],
            }),
        }
    }

    /// The number of subscribers of `topic` here, `except` not counted.
    fn subscribers_but(&self, topic: &str, except: Option<PeerId>) -> usize {
        let except_subscribed = except.is_some_and(|id| self.topics.is_subscribed(id, topic));
        self.topics.count(topic) - usize::from(except_subscribed)
    }

    /// Hands the frames published during this pass to their recipients, in the order they were
    /// published. Anything else queued for a connection calls this first, so that a connection
    /// gets its output in the order it was produced.
    ///
    /// Publishing is deferred to here so that each recipient is visited once for everything
    /// published to it during the pass (uWebSockets drains its topics the same way): its small
    /// frames are gathered into one buffer, which stays in the processor's cache from one
    /// recipient to the next, and written at once when nothing is queued ahead of them; only
    /// what the socket does not take is queued. A large frame is queued by reference (never
    /// copied per recipient) and written when the dirty connections are flushed.
    #[inline]
    pub fn hand_out(&mut self) {
        // Called before anything is queued for a connection: most of the time nothing waits.
        if !self.published.is_empty() {
            self.hand_out_published();
        }
    }

    fn hand_out_published(&mut self) {
        let mut published = std::mem::take(&mut self.published);
        let level = self.config.connection.deflate.level;
        for mut run in published.drain(..) {
            let gather = run
                .frames
                .iter()
                .all(|(frame, _)| frame.plain().len() <= COPY_MAX);
            let (config, shared, stats, dirty, scratch) = (
                &*self.config,
                &mut self.shared,
                &mut self.stats,
                &mut self.dirty,
                &mut self.scratch,
            );
            each_recipient(&mut self.slab, &self.topics, &run.audience, |key, peer| {
                let id = peer_id(key, peer);
                let for_it = |except: &Option<PeerId>| *except != Some(id);
                let count = run.frames.iter().filter(|(_, ex)| for_it(ex)).count();
                if count == 0 {
                    return;
                }
                // Each frame is compressed once per window, when a recipient first needs it.
                for (frame, _) in run.frames.iter_mut().filter(|(_, ex)| for_it(ex)) {
                    if let Some(bits) = peer.conn.compression_window(frame.payload_len()) {
                        frame.compress_for(bits, level, shared);
                    }
                }
                let frames = run
                    .frames
                    .iter()
                    .filter(|(_, ex)| for_it(ex))
                    .map(|(frame, _)| frame);
                let sent = if gather {
                    let (conn, mut transport) = peer.transport();
                    conn.send_prepared_through(frames, scratch, &mut transport, shared)
                        .map(|written| stats.bytes_out += written as u64)
                } else {
                    frames
                        .into_iter()
                        .try_for_each(|frame| peer.conn.send_prepared(frame, shared))
                };
                if sent.is_err() {
                    return;
                }
                stats.messages_out += count as u64;
                if peer.wants_write() {
                    apply_output_limits(key, peer, config, stats);
                    if !peer.dirty {
                        peer.dirty = true;
                        dirty.push(key);
                    }
                }
            });
        }
        // Keep the list's memory for the next pass, and the scratch buffer's unless it grew large.
        self.published = published;
        if self.scratch.capacity() > SPARE_MAX {
            self.scratch = Vec::new();
        }
    }

    /// Publishes a message to `topic`: through the broker if there is one (which delivers it
    /// here when it comes back), otherwise encoded once for every local subscriber but `except`
    /// and handed to them at the end of the pass ([`hand_out`](Self::hand_out)). Returns the
    /// number of those subscribers (0 when it goes through the broker).
    pub fn publish(
        &mut self,
        topic: &str,
        kind: MessageKind,
        payload: &[u8],
        except: Option<PeerId>,
    ) -> usize {
        #[cfg(feature = "redis")]
        if let Some(broker) = self.broker.as_mut() {
            if super::topics::validate_topic(topic).is_err() {
                return 0; // no one can be subscribed to it, here or elsewhere
            }
            // A topic joined during this turn is subscribed to (or held for) before routing.
            broker.sync(&mut self.topics);
            let local = self.topics.count(topic) > 0;
            if broker.publish(topic, kind, payload, except, local) == super::redis::Routed::Broker {
                return 0;
            }
        }
        self.publish_here(topic, kind, payload, except)
    }

    /// Publishes a message to this process's subscribers of `topic` only.
    pub fn publish_here(
        &mut self,
        topic: &str,
        kind: MessageKind,
        payload: &[u8],
        except: Option<PeerId>,
    ) -> usize {
        match self.subscribers_but(topic, except) {
            0 => 0, // not even encoded
            _ => self.deliver(topic, PreparedFrame::new(kind, payload), except),
        }
    }

    /// Attaches a Redis broker: topics then span every process on it.
    #[cfg(feature = "redis")]
    pub fn attach_broker(&mut self, config: super::RedisConfig) -> io::Result<()> {
        let registry = self.registry.try_clone()?;
        self.topics.track_interest();
        self.broker = Some(super::redis::Broker::new(config, registry, self.now));
        Ok(())
    }

    /// Runs `work` on the broker with a way to deliver what it hands back to local subscribers.
    #[cfg(feature = "redis")]
    fn with_broker(
        &mut self,
        work: impl FnOnce(&mut super::redis::Broker, &mut dyn FnMut(super::redis::Delivery<'_>)),
    ) {
        let Some(mut broker) = self.broker.take() else {
            return;
        };
        work(&mut broker, &mut |d| {
            self.deliver(d.topic, PreparedFrame::new(d.kind, d.payload), d.except);
        });
        self.stats.redis = Some(broker.stats());
        self.broker = Some(broker);
    }

    /// Whether `token` is one of the broker's sockets.
    pub fn is_broker_token(&self, token: Token) -> bool {
        #[cfg(feature = "redis")]
        if self.broker.is_some() {
            return token == super::redis::SUBSCRIBER || token == super::redis::PUBLISHER;
        }
        let _ = token;
        false
    }

    /// Handles readiness of one of the broker's sockets.
    pub fn broker_ready(&mut self, token: Token) {
        #[cfg(feature = "redis")]
        {
            let now = self.now;
            self.with_broker(|broker, deliver| broker.ready(token, now, deliver));
        }
        let _ = token;
    }

    /// The broker's work at the end of a turn: its deadlines, the turn's changes of interest,
    /// its output.
    pub fn broker_turn(&mut self) {
        #[cfg(feature = "redis")]
        {
            let now = self.now;
            let Some(broker) = self.broker.as_mut() else {
                return;
            };
            broker.sync(&mut self.topics);
            broker.publish_counts(&self.topics, now);
            self.with_broker(|broker, deliver| {
                broker.run_timers(now, deliver);
                broker.flush(now, deliver);
            });
        }
    }

    /// How many connections are subscribed to `topic` in every process on the broker (this
    /// process's alone without one).
    pub fn subscribers_everywhere(&self, topic: &str) -> usize {
        #[cfg(feature = "redis")]
        if let Some(broker) = &self.broker {
            return self.topics.count(topic) + broker.remote_count(topic);
        }
        self.topics.count(topic)
    }

    /// Whether counts changed that the handler has not been told of.
    pub fn has_count_changes(&self) -> bool {
        self.topics.has_counted()
    }

    /// The topics whose number of subscribers changed, here or (with a broker) in another
    /// process, since the last call, each with its number everywhere. Topics changed elsewhere
    /// are reported only if they have subscribers here.
    pub fn take_count_changes(&mut self) -> Vec<(String, usize)> {
        let local = self.topics.take_counted();
        #[cfg_attr(not(feature = "redis"), allow(unused_mut))]
        let mut changed: Vec<String> = local.iter().map(|t| t.to_string()).collect();
        #[cfg(feature = "redis")]
        if let Some(broker) = self.broker.as_mut() {
            broker.local_counts_changed(&local);
            for topic in broker.take_remote_changed() {
                if self.topics.count(&topic) > 0 && !changed.contains(&topic) {
                    changed.push(topic);
                }
            }
        }
        changed
            .into_iter()
            .map(|topic| {
                let count = self.subscribers_everywhere(&topic);
                (topic, count)
            })
            .collect()
    }

    /// When the broker next needs attention.
    pub fn broker_deadline(&self) -> Option<Instant> {
        #[cfg(feature = "redis")]
        if let Some(broker) = &self.broker {
            return broker.deadline();
        }
        None
    }

    /// Unsubscribes a connection from `topic`, after handing it what was published before.
    /// Returns whether it was subscribed.
    pub fn unsubscribe(&mut self, peer: PeerId, topic: &str) -> bool {
        self.hand_out();
        self.topics.unsubscribe(peer, topic)
    }

    /// Subscribes an open connection to `topic`.
    pub fn subscribe(&mut self, peer: PeerId, topic: &str) -> Result<bool, TopicError> {
        self.hand_out();
        match live(&mut self.slab, peer) {
            Ok(p) if p.conn.is_open() => {}
            _ => return Err(TopicError::NotOpen),
        }
        let limit = self.config.max_topics_per_connection;
        self.topics.subscribe(peer, topic, limit)
    }

    /// Starts the closing handshake with one connection.
    pub fn close(&mut self, id: PeerId, code: CloseCode, reason: &str) -> Result<(), SendError> {
        self.hand_out();
        let now = self.now;
        let peer = self.get(id).ok_or(SendError::NotOpen)?;
        peer.conn.close(code, reason, now)?;
        bump(&mut self.stats.close_codes_sent, code.0);
        self.mark_dirty(id.key);
        Ok(())
    }

    /// Writes what the peer has queued, shuts its sending side down once its output has ended,
    /// re-arms its timer, and keeps its interest in WRITABLE in step with its queue.
    pub fn flush(&mut self, key: usize) -> Flushed {
        let Some(peer) = self.slab.get_mut(key) else {
            return Flushed::Done;
        };
        let id = peer_id(key, peer);
        match peer.write_queued() {
            Ok(written) => self.stats.bytes_out += written as u64,
            Err(e) => {
                log::debug!("{id}: write: {e}");
                if let Some(outbound) = peer.conn.outbound_mut() {
                    outbound.fail_with(|| ConnectError::Io(e));
                }
                peer.conn.abort("write error");
            }
        }
        if let Some(spare) = peer.conn.outbox().take_spare()
            && self.spares.len() < SPARE_POOL
            && spare.capacity() <= SPARE_POOLED_MAX
        {
            self.spares.push(spare);
        }
        if peer.conn.outbox().take_eof() {
            // Half-close (after TLS close_notify): the peer reads our last bytes, then EOF.
            // Reading goes on until it closes too, so that unread input does not turn our close
            // into a reset.
            if let Err(e) = peer.shutdown_write() {
                log::debug!("{id}: shutdown: {e}");
            }
        }
        if peer.tls_mut().is_some_and(TlsSession::take_handshake_done) {
            log::debug!("{id}: TLS handshake complete");
            self.stats.tls_handshakes += 1;
        }
        self.judge_slow_consumer(key);
        let peer = &mut self.slab[key];
        self.held_total = self.held_total - u64::from(peer.held) + u64::from(held(peer));
        peer.held = held(peer);
        if peer.conn.is_closed() {
            return Flushed::Closed;
        }
        let wants_write = peer.wants_write();
        if wants_write != peer.write_interest {
            let interest = if wants_write {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let peer_token = token(key, peer.generation);
            if let Err(e) = self
                .registry
                .reregister(&mut peer.stream, peer_token, interest)
            {
                log::debug!("{id}: reregister: {e}");
                peer.conn.abort("reregister failed");
                return Flushed::Closed;
            }
            peer.write_interest = wants_write;
        }
        self.arm_timer(key);
        let peer = &mut self.slab[key];
        if peer.read_paused && peer.conn.queued() <= self.config.outbound_low_water {
            peer.read_paused = false;
            return Flushed::ResumeReading;
        }
        Flushed::Done
    }

    /// After a write attempt: a queue still over the high-water mark starts the slow-consumer
    /// clock; one that stayed over it for the whole timeout ends the connection.
    fn judge_slow_consumer(&mut self, key: usize) {
        let now = self.timers.millis(self.now);
        let timeout = self.config.slow_consumer_timeout.as_millis() as u64;
        let Some(peer) = self.slab.get_mut(key) else {
            return;
        };
        if peer.conn.queued() <= self.config.outbound_high_water || peer.conn.is_closed() {
            peer.over_high_water_since = 0;
        } else if peer.over_high_water_since == 0 {
            peer.over_high_water_since = now;
        } else if now >= peer.over_high_water_since + timeout {
            let id = peer_id(key, peer);
            log::debug!("{id}: slow consumer: {} bytes queued", peer.conn.queued());
            peer.conn.abort("slow consumer");
            self.stats.slow_consumer_disconnects += 1;
        }
    }

    /// Lends the peer memory for its output from the pool, if its queue has none: called before
    /// its input is processed, so that its replies fill a buffer emptied earlier instead of a
    /// new one. [`flush`](Self::flush) takes it back once the queue is written.
    pub fn lend_spare(&mut self, key: usize) {
        let Some(spare) = self.spares.pop() else {
            return;
        };
        let Some(peer) = self.slab.get_mut(key) else {
            self.spares.push(spare);
            return;
        };
        if let Some(spare) = peer.conn.outbox().reuse(spare) {
            self.spares.push(spare);
        }
    }

    /// Makes sure the heap holds an entry no later than the connection's next deadline (or the
    /// end of its slow-consumer grace). An entry that comes too early (the deadline moved later)
    /// is re-armed when it fires. A connection left without a deadline (open, with no idle
    /// timeout) keeps no live entry: its old one turns stale, and is dropped as soon as it comes
    /// to the top of the heap instead of when its time comes.
    pub fn arm_timer(&mut self, key: usize) {
        let slow_consumer_timeout = self.config.slow_consumer_timeout.as_millis() as u64;
        let Some(peer) = self.slab.get_mut(key) else {
            return;
        };
        let conn_deadline = peer.conn.poll_timeout().map(|at| self.timers.millis(at));
        let slow_deadline = (peer.over_high_water_since != 0)
            .then(|| peer.over_high_water_since + slow_consumer_timeout);
        let Some(at) = [conn_deadline, slow_deadline].into_iter().flatten().min() else {
            // Kept live, the handshake's entry of every connection of a burst would stay in the
            // heap (24 bytes each) until its deadline passed.
            peer.timer_at = 0;
            return;
        };
        if peer.timer_at == 0 || at < peer.timer_at {
            peer.timer_at = at;
            self.timers.push(at, key, peer.generation);
        }
    }

    /// The next time a timer entry is due, dropping stale entries from the top.
    pub fn next_timer(&mut self) -> Option<Instant> {
        while let Some((at, key, generation)) = self.timers.peek() {
            let live = self
                .slab
                .get(key)
                .is_some_and(|p| p.generation == generation && p.timer_at == at);
            if live {
                return Some(self.timers.instant(at));
            }
            self.timers.pop();
        }
        None
    }

    /// Takes the next live timer entry that is due, and hands its deadline to the connection.
    /// Returns the slot, to be flushed (or removed) by the caller.
    pub fn fire_next_timer(&mut self) -> Option<usize> {
        while let Some((at, key, generation)) = self.timers.peek() {
            // Due once its (rounded up) time has come: the connection's deadline is then past.
            if self.timers.instant(at) > self.now {
                return None;
            }
            self.timers.pop();
            let Some(peer) = self.slab.get_mut(key) else {
                continue;
            };
            if peer.generation != generation || peer.timer_at != at {
                continue; // stale
            }
            peer.timer_at = 0;
            let handshaking = peer.conn.is_handshaking();
            peer.conn.handle_timeout(self.now);
            if peer.conn.is_closed() {
                self.stats.timeouts += 1;
                if let (Some(outbound), true) = (peer.conn.outbound_mut(), handshaking) {
                    outbound.fail_with(|| ConnectError::TimedOut);
                }
                if peer.tls().is_some_and(TlsSession::is_handshaking) {
                    // A plain client on the TLS port, or a TLS handshake that stalled.
                    self.stats.tls_handshake_timeouts += 1;
                }
            }
            return Some(key);
        }
        None
    }

    /// Whether the memory budget has room for a new connection: a tenth of it is kept for the
    /// connections that are open already.
    pub fn has_room_for_upgrades(&self) -> bool {
        self.held_total < self.config.max_memory as u64 / 10 * 9
    }

    /// While the peers hold more than the memory budget, closes the one that holds the most:
    /// one assembling a message is closed with 1009 (its message is dropped at once), one whose
    /// output is not read is dropped. Called at the end of a turn, after flushing.
    pub fn enforce_memory_budget(&mut self) -> Vec<usize> {
        let budget = self.config.max_memory as u64;
        let mut closed = Vec::new();
        while self.held_total > budget {
            let Some((key, _)) = self
                .slab
                .iter()
                .filter(|(_, peer)| !peer.conn.is_closed())
                .max_by_key(|(_, peer)| peer.held)
            else {
                break;
            };
            let now = self.now;
            let peer = &mut self.slab[key];
            log::debug!(
                "{key}: over the memory budget ({} bytes held in all): closing the largest holder ({} bytes)",
                self.held_total,
                peer.held
            );
            if peer.conn.buffered() >= peer.conn.queued() {
                peer.conn
                    .terminate(CloseCode::MESSAGE_TOO_BIG, "server memory budget", now);
                bump(
                    &mut self.stats.close_codes_sent,
                    CloseCode::MESSAGE_TOO_BIG.0,
                );
            } else {
                peer.conn.abort("server memory budget");
            }
            self.stats.memory_budget_closes += 1;
            // Count what it still holds (its queue until written or dropped).
            self.held_total = self.held_total - u64::from(peer.held) + u64::from(held(peer));
            peer.held = held(peer);
            closed.push(key);
            if peer.held > 0 && peer.conn.is_closed() {
                // Dropped: its memory goes with it when it is removed.
                self.held_total -= u64::from(peer.held);
                peer.held = 0;
            }
        }
        closed
    }

    /// Removes the peer in slot `key`. Its subscriptions stay until the caller ends them
    /// (after the handler's `on_close`, which may read them).
    pub fn remove(&mut self, key: usize) -> Option<(PeerId, Peer)> {
        let mut peer = self.slab.try_remove(key)?;
        self.held_total -= u64::from(peer.held);
        if let Some(tls) = peer.tls() {
            if tls.failed() && tls.is_handshaking() {
                self.stats.tls_handshake_failures += 1;
            }
            // Best effort: the alert rustls queued when it failed, the last records.
            let _ = peer.write_queued();
        }
        let _ = self.registry.deregister(&mut peer.stream);
        self.stats.closed += 1;
        if peer.conn.closure().is_some() {
            // It was open: every connection that opened has a closure once it ends.
            self.stats.open = self.stats.open.saturating_sub(1);
        }
        let id = peer_id(key, &peer);
        Some((id, peer))
    }
}

/// Who a published frame goes to.
enum Audience {
    /// Every open connection.
    Everyone,
    /// The subscribers of a topic.
    Topic(Box<str>),
}

/// Frames published one after another during the current pass to the same audience.
struct Run {
    audience: Audience,
    /// Each frame, with a connection that does not get it (the sender, say).
    frames: Vec<(PreparedFrame, Option<PeerId>)>,
}

impl Audience {
    /// The subscribers of `topic`, or every open connection.
    fn of(topic: Option<&str>) -> Self {
        topic.map_or(Audience::Everyone, |name| Audience::Topic(name.into()))
    }

    /// Whether this is [`Audience::of`] `topic`.
    fn is(&self, topic: Option<&str>) -> bool {
        match (self, topic) {
            (Audience::Everyone, None) => true,
            (Audience::Topic(mine), Some(name)) => **mine == *name,
            _ => false,
        }
    }
}

/// Calls `visit` for every connection in `audience`, in slab order (which is memory
/// order: a topic's subscribers are kept sorted by key).
fn each_recipient(
    slab: &mut Slab<Peer>,
    topics: &Topics,
    audience: &Audience,
    mut visit: impl FnMut(usize, &mut Peer),
) {
    match audience {
        Audience::Everyone => {
            for (key, peer) in slab.iter_mut() {
                visit(key, peer);
            }
        }
        Audience::Topic(topic) => {
            for &id in topics.subscribers(topic).into_iter().flatten() {
                if let Some(peer) = slab
                    .get_mut(id.key)
                    .filter(|peer| peer.generation == id.generation)
                {
                    visit(id.key, peer);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server_connection::ServerEvent;
    use std::time::Duration;

    /// With no idle timeout, an open connection has no deadline: the entry its handshake put in
    /// the timer heap must not stay live until the handshake timeout, or a burst of connections
    /// keeps 24 bytes each in the heap (and the heap's capacity for good).
    #[test]
    fn an_open_connection_without_a_deadline_keeps_no_timer_entry() {
        let mut config = Config::default();
        config.connection.idle_timeout = Duration::ZERO;
        assert!(!config.connection.handshake_timeout.is_zero());
        let metrics = config.connection.clone();
        let poll = mio::Poll::new().unwrap();
        let registry = poll.registry().try_clone().unwrap();
        let now = Instant::now();
        let mut peers = Peers::new(Arc::new(config), metrics, registry, now);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        accepted.set_nonblocking(true).unwrap();
        let id = peers.insert(TcpStream::from_std(accepted), false).unwrap();
        assert!(peers.next_timer().is_some(), "the handshake has a deadline");

        let Parts { peer, shared, .. } = peers.parts(id.key).unwrap();
        let Conn::Accepted(conn) = &mut peer.conn else {
            unreachable!("an accepted peer")
        };
        let mut request = b"GET / HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
            Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
            Sec-WebSocket-Version: 13\r\n\r\n"
            .to_vec();
        let received = conn.handle_input(&mut request, now, shared).unwrap();
        let Some(ServerEvent::Upgrade(request)) = received.event else {
            panic!("no upgrade request")
        };
        conn.accept(&request, None, now).unwrap();
        assert!(conn.poll_timeout().is_none(), "open, with no idle timeout");
        peers.arm_timer(id.key);
        assert_eq!(peers.slot(id.key).unwrap().timer_at, 0);
        assert_eq!(
            peers.next_timer(),
            None,
            "the handshake's entry is still live"
        );
    }
}
