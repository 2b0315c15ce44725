//! The single-threaded mio event loop: the listener, every peer in a `Slab`, timers, and the
//! passes that move bytes between sockets and the protocol core.
//!
//! The loop makes no protocol decisions; `connection.rs` and `handshake.rs` do. Its rules:
//! - Tokens carry the slab key and a generation, so an event for a peer that was dropped (and
//!   whose slot was reused) in the same poll batch never reaches the new peer.
//! - Sockets are edge-triggered: accept until `WouldBlock`, read until `WouldBlock` (unless reading
//!   is paused for backpressure, in which case the loop resumes it itself).
//! - All input is read into one buffer owned by the loop; a peer keeps only the bytes of an
//!   incomplete header or control frame. All output produced during a pass over one peer's input
//!   leaves in one `writev` per recipient at the end of the pass. `WRITABLE` interest is held only
//!   while a peer has unwritten bytes.

use crate::close::CloseCode;
use crate::connection::{Connection, Event, Role, State};
use crate::deflate::{self, Deflate, DeflateConfig};
use crate::error::HandshakeError;
use crate::frame::Status;
use crate::handler::{Context, Handler, PeerId};
use crate::handshake::{self, OriginPolicy, Request};
use crate::http::Response;
use crate::limits::Limits;
use crate::page;
use crate::peer::{Peer, Phase, ReadOutcome};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);

/// Size of the loop's one read buffer. Larger than any input a peer can leave pending (the
/// request head limit), so a read always has room.
pub const READ_BUFFER_SIZE: usize = 256 * 1024;
/// How long accepting pauses after the process runs out of file descriptors.
pub const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Server settings. Every limit is documented in the README's "Limits and defaults" table.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Protocol limits applied to every connection.
    pub limits: Limits,
    /// Most connections held at once; past it new connections get 503 and are closed.
    pub max_connections: usize,
    /// Queued output per connection past which a broadcast recipient is disconnected and an echo
    /// client's input stops being read.
    pub outbound_high_water: usize,
    /// Queued output below which reading from a paused client resumes.
    pub outbound_low_water: usize,
    /// Time from accept to a completed upgrade; a slower client is disconnected. Zero disables.
    pub handshake_timeout: Duration,
    /// Silence after which an open connection is pinged. Zero disables keepalive.
    pub idle_timeout: Duration,
    /// Time after the keepalive ping with no traffic at all before the connection is dropped.
    /// Zero means the ping is never followed by a drop.
    pub pong_timeout: Duration,
    /// Time to wait for the peer's Close (after ours) and for its TCP close (after ours).
    pub close_timeout: Duration,
    /// On shutdown, time to wait for every connection's closing handshake.
    pub shutdown_timeout: Duration,
    /// permessage-deflate (RFC 7692) settings.
    pub deflate: DeflateConfig,
    /// Which `Origin`s may open a WebSocket; others get 403.
    pub origins: OriginPolicy,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            limits: Limits::default(),
            max_connections: 10_000,
            outbound_high_water: 16 * 1024 * 1024,
            outbound_low_water: 1024 * 1024,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            pong_timeout: Duration::from_secs(30),
            close_timeout: Duration::from_secs(1),
            shutdown_timeout: Duration::from_secs(5),
            deflate: DeflateConfig::default(),
            origins: OriginPolicy::default(),
        }
    }
}

impl Config {
    pub(crate) fn close_timeout_ms(&self) -> u64 {
        self.close_timeout.as_millis() as u64
    }
}

/// Counters the server keeps, logged at shutdown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// TCP connections accepted.
    pub accepted: u64,
    /// Connections refused at accept because `max_connections` was reached.
    pub refused_over_capacity: u64,
    /// Upgrades completed.
    pub opened: u64,
    /// Plain HTTP requests answered (the chat page, 404, 405).
    pub http_responses: u64,
    /// Connections dropped, for any reason.
    pub closed: u64,
    /// Upgrade requests refused, by HTTP status.
    pub handshake_rejections: Vec<(u16, u64)>,
    /// Messages received.
    pub messages_in: u64,
    /// Messages queued for sending (a broadcast counts once per recipient).
    pub messages_out: u64,
    /// Bytes read from sockets.
    pub bytes_in: u64,
    /// Bytes written to sockets.
    pub bytes_out: u64,
    /// Close frames sent, by code (1005 for a close without a code).
    pub close_codes_sent: Vec<(u16, u64)>,
    /// Close frames received, by code (1005 for a close without a code).
    pub close_codes_received: Vec<(u16, u64)>,
    /// Broadcast recipients disconnected for exceeding the outbound high-water mark.
    pub slow_consumer_disconnects: u64,
    /// Connections dropped by a timer (handshake, idle, close).
    pub timeouts: u64,
}

fn bump(counts: &mut Vec<(u16, u64)>, key: u16) {
    match counts.iter_mut().find(|(k, _)| *k == key) {
        Some((_, n)) => *n += 1,
        None => counts.push((key, 1)),
    }
}

impl Stats {
    pub(crate) fn count_close_sent(&mut self, code: CloseCode) {
        bump(&mut self.close_codes_sent, code.0);
    }
}

/// Deadlines of every peer, in one heap. A peer has at most one live entry (`Peer::timer_at`);
/// entries that no longer match it are stale and skipped when they come up.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(u64, usize, u32)>>,
    /// Milliseconds since the server started, plus one (0 means "no timer").
    pub now: u64,
}

impl Timers {
    pub(crate) fn set(&mut self, peer: &mut Peer, key: usize, at: u64) {
        peer.timer_at = at;
        self.heap.push(Reverse((at, key, peer.generation)));
    }
}

/// Asks a running server to shut down gracefully, from any thread.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    waker: Arc<Waker>,
    requested: Arc<AtomicBool>,
}

impl ShutdownHandle {
    /// Stops accepting, sends 1001 to every connection and ends `run` once they closed (or the
    /// shutdown timeout passed).
    pub fn shutdown(&self) {
        self.requested.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
    }
}

/// A WebSocket server on one thread.
pub struct Server {
    poll: Poll,
    listener: TcpListener,
    local_addr: SocketAddr,
    config: Config,
    peers: Slab<Peer>,
    read_buffer: Vec<u8>,
    /// Peers with output queued during the current pass.
    dirty: Vec<usize>,
    timers: Timers,
    started: Instant,
    next_generation: u32,
    accept_paused_until: Option<u64>,
    shutdown: ShutdownHandle,
    shutdown_deadline: Option<u64>,
    stats: Stats,
}

fn token(key: usize, generation: u32) -> Token {
    Token(key | (generation as usize) << 32)
}

fn split_token(token: Token) -> (usize, u32) {
    (token.0 & 0xFFFF_FFFF, (token.0 >> 32) as u32)
}

impl Server {
    /// Binds the listening socket.
    pub fn bind(config: Config) -> io::Result<Server> {
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(config.addr)?;
        let local_addr = listener.local_addr()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        Ok(Server {
            poll,
            listener,
            local_addr,
            peers: Slab::new(),
            read_buffer: vec![0; READ_BUFFER_SIZE.max(config.limits.max_head_size * 2)],
            dirty: Vec::new(),
            timers: Timers::default(),
            started: Instant::now(),
            next_generation: 0,
            accept_paused_until: None,
            shutdown: ShutdownHandle {
                waker,
                requested: Arc::new(AtomicBool::new(false)),
            },
            shutdown_deadline: None,
            stats: Stats::default(),
            config,
        })
    }

    /// The address the server listens on (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle that shuts the server down from another thread (or a signal handler thread).
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// The counters so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64 + 1
    }

    /// Runs the event loop until a graceful shutdown completes. Only a failure of the poll itself
    /// ends it with an error; IO errors on a connection end that connection.
    pub fn run<H: Handler>(&mut self, handler: &mut H) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.poll_timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            self.timers.now = self.now();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => {
                        if self.shutdown.requested.load(Ordering::SeqCst)
                            && self.shutdown_deadline.is_none()
                        {
                            self.begin_shutdown(handler);
                        }
                    }
                    token => {
                        let (key, generation) = split_token(token);
                        if self
                            .peers
                            .get(key)
                            .is_none_or(|p| p.generation != generation)
                        {
                            continue; // a stale event for a peer that is gone
                        }
                        if event.is_writable() {
                            self.on_writable(key, handler);
                        }
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            let to_eof = event.is_read_closed() || event.is_error();
                            self.on_readable(key, handler, to_eof);
                        }
                        self.flush_dirty(handler);
                    }
                }
            }
            self.run_timers(handler);
            self.flush_dirty(handler);
            if self
                .accept_paused_until
                .is_some_and(|t| t <= self.timers.now)
            {
                self.accept_paused_until = None;
                self.accept();
            }
            if let Some(deadline) = self.shutdown_deadline
                && (self.peers.is_empty() || self.timers.now >= deadline)
            {
                log::info!("shutdown complete: {:?}", self.stats);
                return Ok(());
            }
        }
    }

    fn poll_timeout(&mut self) -> Option<Duration> {
        let now = self.now();
        // Drop stale entries from the top so the timeout reflects a live deadline.
        while let Some(Reverse((at, key, generation))) = self.timers.heap.peek().copied() {
            let live = self
                .peers
                .get(key)
                .is_some_and(|p| p.generation == generation && p.timer_at == at);
            if live {
                break;
            }
            self.timers.heap.pop();
        }
        let next_timer = self.timers.heap.peek().map(|Reverse((at, _, _))| *at);
        let next = [next_timer, self.accept_paused_until, self.shutdown_deadline]
            .into_iter()
            .flatten()
            .min()?;
        Some(Duration::from_millis(next.saturating_sub(now)))
    }

    fn accept(&mut self) {
        if self.accept_paused_until.is_some() || self.shutdown_deadline.is_some() {
            return;
        }
        loop {
            match self.listener.accept() {
                Ok((stream, addr)) => self.add_peer(stream, addr),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc_emfile) if libc_emfile == 24 || libc_emfile == 23) =>
                {
                    // EMFILE (24) or ENFILE (23): out of file descriptors. Retrying at once would
                    // spin; pause accepting and let closes free some.
                    log::warn!("accept: {e}; pausing accepts for {ACCEPT_PAUSE:?}");
                    self.accept_paused_until = Some(self.now() + ACCEPT_PAUSE.as_millis() as u64);
                    return;
                }
                Err(e) => log::debug!("accept: {e}"), // e.g. ECONNABORTED: that client only
            }
        }
    }

    fn add_peer(&mut self, mut stream: TcpStream, addr: SocketAddr) {
        self.stats.accepted += 1;
        if self.peers.len() >= self.config.max_connections {
            self.stats.refused_over_capacity += 1;
            log::debug!("{addr}: refused, {} connections open", self.peers.len());
            let mut response = Vec::new();
            Response::text(503, "too many connections\n").write_to(&mut response);
            let _ = stream.write(&response); // best effort; the socket is dropped either way
            return;
        }
        if let Err(e) = stream.set_nodelay(true) {
            log::debug!("{addr}: set_nodelay: {e}");
        }
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1);
        let now = self.now();
        let entry = self.peers.vacant_entry();
        let key = entry.key();
        if let Err(e) =
            self.poll
                .registry()
                .register(&mut stream, token(key, generation), Interest::READABLE)
        {
            log::warn!("{addr}: register: {e}");
            return;
        }
        let peer = entry.insert(Peer::new(stream, generation, now));
        log::debug!("{addr}: accepted as {key}");
        if !self.config.handshake_timeout.is_zero() {
            let at = now + self.config.handshake_timeout.as_millis() as u64;
            self.timers.set(peer, key, at);
        }
        // Data may already be waiting; edge-triggered readiness fires for it, so nothing to do.
    }

    fn context(&mut self) -> Context<'_> {
        Context {
            peers: &mut self.peers,
            dirty: &mut self.dirty,
            config: &self.config,
            stats: &mut self.stats,
            timers: &mut self.timers,
        }
    }

    fn mark_dirty(&mut self, key: usize) {
        Context::mark_dirty(&mut self.peers[key], key, &mut self.dirty);
    }

    /// Reads and processes a peer's input until the socket is drained.
    ///
    /// Edge-triggered readiness must be consumed until `WouldBlock`, but a read that returns less
    /// than the buffer had room for has already drained the socket: any byte that arrives later
    /// raises a new edge. So unless the event also reported the peer's FIN (`to_eof`), which
    /// raises no further edge, a short read ends the loop and saves the `read` that would only
    /// return `WouldBlock`.
    fn on_readable<H: Handler>(&mut self, key: usize, handler: &mut H, to_eof: bool) {
        loop {
            let Some(peer) = self.peers.get_mut(key) else {
                return;
            };
            if peer.read_paused || peer.doomed {
                return;
            }
            let handshaking = matches!(peer.phase, Phase::Handshaking(_));
            let peer_pending = peer.pending.len();
            let outcome = if handshaking {
                // The request head accumulates in `pending`, each byte copied once, so a client
                // dripping its head costs linear work, not a copy of the head per read.
                peer.read_appending(&mut self.read_buffer)
            } else {
                peer.read(&mut self.read_buffer)
            };
            match outcome {
                Ok(ReadOutcome::Data(len)) => {
                    let new_bytes = if handshaking { len } else { len - peer_pending };
                    self.stats.bytes_in += new_bytes as u64;
                    peer.last_activity = self.timers.now;
                    peer.awaiting_pong = false;
                    if handshaking {
                        if let Some(frames_len) = self.handshake(key, handler) {
                            self.process_input(key, frames_len, handler);
                        }
                    } else {
                        self.process_input(key, len, handler);
                    }
                    if len < self.read_buffer.len() && !to_eof {
                        return;
                    }
                }
                Ok(ReadOutcome::WouldBlock) => return,
                Ok(ReadOutcome::Eof) => {
                    self.remove_peer(key, handler, "peer closed TCP");
                    return;
                }
                Err(e) => {
                    log::debug!("{key}: read: {e}");
                    self.remove_peer(key, handler, "read error");
                    return;
                }
            }
        }
    }

    /// Handles `len` bytes of frames at the front of the read buffer (pending input followed by
    /// new input).
    fn process_input<H: Handler>(&mut self, key: usize, len: usize, handler: &mut H) {
        let mut pos = 0;
        if !matches!(self.peers[key].phase, Phase::Open(_)) {
            return; // draining: discard
        }
        loop {
            let Server {
                peers,
                read_buffer,
                dirty,
                config,
                stats,
                timers,
                ..
            } = self;
            let peer = &mut peers[key];
            if peer.doomed {
                return;
            }
            let Phase::Open(connection) = &mut peer.phase else {
                return;
            };
            let generation = peer.generation;
            // A Close received while open is answered with one (§5.5.1); counted below.
            let was_open = connection.state() == State::Open;
            let received = match connection.receive(&mut read_buffer[pos..len], &mut peer.outbox) {
                Ok(received) => received,
                Err(error) => {
                    log::debug!("{key}: failing the connection: {error}");
                    stats.count_close_sent(error.close_code());
                    Context::mark_dirty(peer, key, dirty);
                    return;
                }
            };
            if received.needs_more() {
                break;
            }
            pos += received.consumed;
            if !peer.outbox.is_empty() {
                // A pong or a close reply.
                Context::mark_dirty(peer, key, dirty);
            }
            match received.event {
                Some(Event::Message(message)) => {
                    stats.messages_in += 1;
                    let mut context = Context {
                        peers,
                        dirty,
                        config,
                        stats,
                        timers,
                    };
                    handler.on_message(&mut context, PeerId { key, generation }, message);
                }
                Some(Event::Close(frame)) => {
                    bump(
                        &mut stats.close_codes_received,
                        frame.map_or(1005, |f| f.code.0),
                    );
                    if was_open {
                        stats.count_close_sent(frame.map_or(CloseCode::NO_STATUS, |f| f.code));
                    }
                }
                Some(Event::Ping(_) | Event::Pong(_)) | None => {}
            }
        }
        let peer = &mut self.peers[key];
        if pos < len && matches!(peer.phase, Phase::Open(_)) {
            peer.pending = self.read_buffer[pos..len].to_vec();
        }
        if peer.connection().is_some_and(|(c, _)| c.wants_tcp_close()) {
            // The closing handshake ended (possibly with no reply to send): flushing moves the
            // peer on to closing TCP.
            self.mark_dirty(key);
        }
    }

    /// Runs the opening handshake on the request bytes gathered in the peer's `pending`. Once the
    /// connection is open, copies whatever followed the head (the first frames) to the front of
    /// the read buffer and returns its length; returns `None` while waiting for more bytes, after
    /// refusing the request, or after answering plain HTTP.
    fn handshake<H: Handler>(&mut self, key: usize, handler: &mut H) -> Option<usize> {
        let limits = self.config.limits;
        let peer = &mut self.peers[key];
        let Phase::Handshaking(scanner) = &mut peer.phase else {
            return None;
        };
        let received = std::mem::take(&mut peer.pending);
        let head_len = match scanner.scan(&received, limits.max_head_size) {
            Ok(Status::Partial) => {
                peer.pending = received;
                return None;
            }
            Ok(Status::Complete(head_len)) => head_len,
            Err(error) => {
                self.refuse(key, error);
                return None;
            }
        };
        // Bytes after the head are the client's first frames: hand them to the frame loop.
        let frames = &received[head_len..];
        self.read_buffer[..frames.len()].copy_from_slice(frames);
        let frames_len = frames.len();
        let head = &received[..head_len];
        let deflate_config = self.config.deflate;
        let origins = &self.config.origins;
        let mut plain_http = None;
        let accepted = handshake::parse_request(head, &limits).and_then(|request: Request<'_>| {
            if !request.is_websocket_attempt() {
                // Plain HTTP on the same port: the chat page, or 404/405.
                let mut response = Vec::with_capacity(4096);
                let answer = page::respond(&request);
                answer.write_to(&mut response);
                plain_http = Some((answer.status(), response));
                return Ok((Vec::new(), None));
            }
            let upgrade = handshake::validate_upgrade(&request)?;
            handshake::check_origin(&request, origins)?;
            let protocol = handler.choose_protocol(&request);
            let deflate = deflate::negotiate(&request, &deflate_config)?;
            let extensions = deflate.map(|negotiated| negotiated.response());
            let mut response = Vec::with_capacity(256);
            handshake::accept_response(upgrade.key, protocol, extensions.as_deref())
                .write_to(&mut response);
            Ok((response, deflate))
        });
        if let Some((status, response)) = plain_http {
            log::debug!("{key}: plain HTTP, answered {status}");
            self.stats.http_responses += 1;
            self.peers[key]
                .outbox
                .append(|out| out.extend_from_slice(&response));
            self.shut_after_flush(key);
            return None;
        }
        let (response, deflate) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                self.refuse(key, error);
                return None;
            }
        };
        let peer = &mut self.peers[key];
        peer.outbox.append(|out| out.extend_from_slice(&response));
        let mut connection = Connection::new(Role::Server, limits);
        if let Some(negotiated) = deflate {
            connection = connection.with_deflate(Deflate::new(negotiated, &deflate_config));
        }
        peer.phase = Phase::Open(connection);
        self.stats.opened += 1;
        if !self.config.idle_timeout.is_zero() {
            let at = self.timers.now + self.config.idle_timeout.as_millis() as u64;
            self.timers.set(peer, key, at);
        } else {
            peer.timer_at = 0;
        }
        let generation = peer.generation;
        self.mark_dirty(key);
        log::debug!("{key}: open");
        handler.on_open(&mut self.context(), PeerId { key, generation });
        Some(frames_len)
    }

    fn refuse(&mut self, key: usize, error: HandshakeError) {
        log::debug!("{key}: handshake refused: {error}");
        bump(&mut self.stats.handshake_rejections, error.status());
        let peer = &mut self.peers[key];
        peer.outbox
            .append(|out| handshake::error_response(error).write_to(out));
        self.shut_after_flush(key);
    }

    /// The peer gets no more input processed; once its output is written, our side of TCP is
    /// shut down and the loop waits (at most the close timeout) for the peer to close its side.
    fn shut_after_flush(&mut self, key: usize) {
        let at = self.timers.now + self.config.close_timeout_ms();
        let peer = &mut self.peers[key];
        peer.phase = Phase::Draining;
        peer.pending = Vec::new();
        self.timers.set(peer, key, at);
        self.mark_dirty(key);
    }

    fn on_writable<H: Handler>(&mut self, key: usize, handler: &mut H) {
        self.flush_peer(key, handler);
    }

    /// Writes the output of every peer that got some during this pass.
    fn flush_dirty<H: Handler>(&mut self, handler: &mut H) {
        while let Some(key) = self.dirty.pop() {
            if let Some(peer) = self.peers.get_mut(key) {
                peer.dirty = false;
                self.flush_peer(key, handler);
            }
        }
    }

    fn flush_peer<H: Handler>(&mut self, key: usize, handler: &mut H) {
        let Some(peer) = self.peers.get_mut(key) else {
            return;
        };
        if peer.doomed {
            self.remove_peer(key, handler, "slow consumer");
            return;
        }
        let before = peer.outbox.len();
        if let Err(e) = peer.flush() {
            log::debug!("{key}: write: {e}");
            self.remove_peer(key, handler, "write error");
            return;
        }
        self.stats.bytes_out += (before - peer.outbox.len()) as u64;
        // Close TCP once the closing handshake is over and its last frame is written (§7.1.1).
        let closing = peer.connection().is_some_and(|(c, _)| c.wants_tcp_close());
        if closing && peer.outbox.is_empty() {
            let generation = peer.generation;
            self.shut_after_flush(key);
            handler.on_close(&mut self.context(), PeerId { key, generation });
        }
        let peer = &mut self.peers[key];
        if matches!(peer.phase, Phase::Draining) && peer.outbox.is_empty() {
            // Half-close: the peer reads our last bytes, then EOF. Reading continues until it
            // closes too, so that unread input does not turn our close into a reset.
            if let Err(e) = peer.stream.shutdown(Shutdown::Write)
                && e.kind() != io::ErrorKind::NotConnected
            {
                log::debug!("{key}: shutdown: {e}");
            }
        }
        let wants_write = !peer.outbox.is_empty();
        if wants_write != peer.write_interest {
            let interest = if wants_write {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let peer_token = token(key, peer.generation);
            if let Err(e) = self
                .poll
                .registry()
                .reregister(&mut peer.stream, peer_token, interest)
            {
                log::debug!("{key}: reregister: {e}");
                self.remove_peer(key, handler, "reregister failed");
                return;
            }
            peer.write_interest = wants_write;
        }
        if peer.read_paused && peer.outbox.len() <= self.config.outbound_low_water {
            // Backpressure released: nothing will signal the input that waited meanwhile
            // (edge-triggered), so read it now.
            peer.read_paused = false;
            self.on_readable(key, handler, true);
        }
    }

    fn remove_peer<H: Handler>(&mut self, key: usize, handler: &mut H, why: &str) {
        let Some(mut peer) = self.peers.try_remove(key) else {
            return;
        };
        log::debug!("{key}: dropped: {why}");
        let _ = self.poll.registry().deregister(&mut peer.stream);
        self.stats.closed += 1;
        if matches!(peer.phase, Phase::Open(_)) {
            handler.on_close(
                &mut self.context(),
                PeerId {
                    key,
                    generation: peer.generation,
                },
            );
        }
    }

    fn run_timers<H: Handler>(&mut self, handler: &mut H) {
        let now = self.timers.now;
        while let Some(Reverse((at, key, generation))) = self.timers.heap.peek().copied() {
            if at > now {
                break;
            }
            self.timers.heap.pop();
            let Some(peer) = self.peers.get_mut(key) else {
                continue;
            };
            if peer.generation != generation || peer.timer_at != at {
                continue; // stale
            }
            peer.timer_at = 0;
            let idle = self.config.idle_timeout.as_millis() as u64;
            let pong = self.config.pong_timeout.as_millis() as u64;
            let Phase::Open(connection) = &mut peer.phase else {
                self.stats.timeouts += 1;
                self.remove_peer(key, handler, "handshake or close timeout");
                continue;
            };
            if connection.state() != State::Open {
                self.stats.timeouts += 1;
                self.remove_peer(key, handler, "close timeout");
                continue;
            }
            if peer.awaiting_pong {
                // Pinged, and nothing at all arrived since.
                self.stats.timeouts += 1;
                self.remove_peer(key, handler, "keepalive timeout");
                continue;
            }
            let idle_until = peer.last_activity + idle;
            if idle_until > now {
                self.timers.set(peer, key, idle_until);
                continue;
            }
            // RFC 6455 §5.5.2: "A Ping frame MAY be sent ... as a means to verify that the remote
            // endpoint is still responsive."
            let _ = connection.ping(b"", &mut peer.outbox);
            if pong > 0 {
                peer.awaiting_pong = true;
                self.timers.set(peer, key, now + pong);
            } else {
                self.timers.set(peer, key, now + idle);
            }
            self.mark_dirty(key);
        }
    }

    fn begin_shutdown<H: Handler>(&mut self, handler: &mut H) {
        log::info!("shutting down: closing {} connections", self.peers.len());
        let _ = self.poll.registry().deregister(&mut self.listener);
        let now = self.now();
        self.shutdown_deadline = Some(now + self.config.shutdown_timeout.as_millis() as u64);
        let keys: Vec<usize> = self.peers.iter().map(|(key, _)| key).collect();
        for key in keys {
            let peer = &mut self.peers[key];
            let generation = peer.generation;
            match peer.phase {
                Phase::Open(_) => {
                    let id = PeerId { key, generation };
                    let _ = self
                        .context()
                        .close(id, CloseCode::GOING_AWAY, "server shutting down");
                }
                Phase::Handshaking(_) => self.remove_peer(key, handler, "shutdown"),
                Phase::Draining => {}
            }
        }
        self.flush_dirty(handler);
    }
}
