//! The single-threaded mio event loop: the listener, the waker, and the passes that move bytes
//! between sockets and the connections.
//!
//! The loop makes no protocol decisions: [`ServerConnection`](crate::ServerConnection) does.
//! Its rules:
//! - Tokens carry the slab key and a generation, so an event for a peer that was dropped (and
//!   whose slot was reused) in the same poll batch never reaches the new peer.
//! - Sockets are edge-triggered: accept until `WouldBlock`, read until `WouldBlock` (unless reading
//!   is paused for backpressure, in which case the loop resumes it itself).
//! - All input is read into one buffer owned by the loop; a peer keeps only the bytes of an
//!   incomplete request head, frame header or control frame. What a connection's input
//!   produced for it (replies, a Pong, a Close) is written as soon as that input is processed;
//!   everything else produced during a turn of the loop (every event of one poll) leaves in one
//!   write per recipient at the end of the turn, where what was published is handed out, each
//!   recipient's frames gathered into that write
//!   ([`Peers::hand_out`](super::peers::Peers::hand_out)). `WRITABLE` interest is held only
//!   while a peer has unwritten bytes.

use super::config::Config;
use super::conn::Conn;
use super::descriptors::{self, Spare};
use super::handle::{Command, Handle};
use super::handler::{Context, Handler, Opening, Upgrade};
use super::ops;
use super::outbound::ConnectOptions;
use super::outbound::{self, ConnectError};
use super::peer::ReadOutcome;
use super::peers::{Flushed, PeerId, Peers, split_token};
use super::stats::{Stats, bump};
use crate::batch::Batch;
use crate::client_connection::ClientError;
use crate::close::{CloseCode, CloseFrame};
use crate::closure::{CloseCause, Closure, Deadline};
use crate::error::Error;
use crate::http::Response;
use crate::message::{INFLATE_PER_CALL, Message};
use crate::prepared::PreparedFrame;
use crate::server_connection::ServerEvent;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use std::fmt;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);
const METRICS_LISTENER: Token = Token(usize::MAX - 2);

/// Size of the loop's one read buffer. Larger than any input a peer can leave pending (the
/// request head limit), so a read always has room.
pub const READ_BUFFER_SIZE: usize = 256 * 1024;
/// The most work done for one connection in one turn of the loop, in bytes: the bytes read from
/// it, and the payload of the messages it delivered (a compressed message counts its inflated
/// size). A connection with more to do is served again in the next turn, after every other
/// connection that was ready: one client streaming without pause, or sending messages that
/// inflate to megabytes, cannot monopolise the thread (libuv caps reads per event the same
/// way). At two bytes for the smallest frame, the bytes read bound the frames per turn too.
pub const READ_BUDGET: usize = READ_BUFFER_SIZE;
/// How long accepting pauses after the process runs out of file descriptors.
pub const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// A WebSocket server on one thread.
pub struct Server {
    poll: Poll,
    listener: TcpListener,
    local_addr: SocketAddr,
    /// The operators' listener (`Config::metrics_addr`) and its address.
    metrics_listener: Option<(TcpListener, SocketAddr)>,
    /// A descriptor held back to answer clients with 503 when the process runs out.
    spare: Spare,
    peers: Peers,
    read_buffer: Vec<u8>,
    /// Where the whole messages taken from the read buffer in one call are (refilled by every
    /// call, kept so that none builds one).
    batch: Batch,
    accept_paused_until: Option<Instant>,
    handle: Handle,
    commands: Receiver<Command>,
    shutdown_deadline: Option<Instant>,
    /// Connections that used their read budget with input left: slot, generation, and whether
    /// their FIN was reported (so that reading must go on to EOF).
    read_again: Vec<(usize, u32, bool)>,
}

impl Server {
    /// Binds the listening socket (and the metrics listener, if `metrics_addr` is set).
    ///
    /// Raises the process's soft limit on open descriptors to its hard limit, and lowers
    /// `max_connections` to what fits under it (logging the cap in force), so that the server
    /// never promises more connections than it has descriptors for.
    pub fn bind(mut config: Config) -> io::Result<Server> {
        let fd_limit = descriptors::raise_limit();
        let poll = Poll::new()?;
        let mut listener = super::listen::bind(config.addr, config.reuse_port)?;
        let local_addr = listener.local_addr()?;
        let mut metrics_connection = config.connection.clone();
        let metrics_listener = match config.metrics_addr {
            Some(addr) => {
                let mut metrics = TcpListener::bind(addr)?;
                let metrics_addr = metrics.local_addr()?;
                poll.registry()
                    .register(&mut metrics, METRICS_LISTENER, Interest::READABLE)?;
                metrics_connection.hosts = config.host_policy(metrics_addr);
                Some((metrics, metrics_addr))
            }
            None => None,
        };
        config.connection.hosts = config.host_policy(local_addr);
        let spare = Spare::new();
        let cap =
            descriptors::connection_cap(config.max_connections, fd_limit, descriptors::open_now());
        if cap < config.max_connections {
            log::warn!(
                "connection cap lowered from {} to {cap}: the process may open {} descriptors",
                config.max_connections,
                fd_limit.unwrap_or_default()
            );
            config.max_connections = cap;
        }
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (handle, commands) = Handle::new(waker, config.command_queue.max(1));
        let read_buffer = vec![0; READ_BUFFER_SIZE.max(config.connection.limits.max_head_size * 2)];
        #[cfg(feature = "redis")]
        let redis = config.redis.clone();
        #[allow(unused_mut)] // without the broker
        let mut peers = Peers::new(
            Arc::new(config),
            metrics_connection,
            poll.registry().try_clone()?,
            Instant::now(),
        );
        #[cfg(feature = "redis")]
        if let Some(redis) = redis {
            peers.attach_broker(redis)?;
        }
        Ok(Server {
            poll,
            listener,
            local_addr,
            metrics_listener,
            spare,
            peers,
            read_buffer,
            batch: Batch::new(),
            accept_paused_until: None,
            handle,
            commands,
            shutdown_deadline: None,
            read_again: Vec::new(),
        })
    }

    /// The address the server listens on (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address `/metrics` and `/healthz` are served on when `Config::metrics_addr` is set
    /// (useful after binding port 0).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().map(|(_, addr)| *addr)
    }

    /// A handle that other threads (a signal handler's, for one) can use to send, broadcast,
    /// close and shut the server down.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Opens a WebSocket connection from the loop before it runs (or between runs): see
    /// [`Context::connect`]. The handler hears of it once [`run`](Self::run) runs.
    pub fn connect(&mut self, url: &str, options: ConnectOptions) -> Result<PeerId, ConnectError> {
        self.peers.now = Instant::now();
        self.peers.connect_url(url, options)
    }

    /// The most connections this server holds at once (after fitting them under the
    /// descriptor limit).
    pub fn max_connections(&self) -> usize {
        self.peers.config.max_connections
    }

    /// The counters so far.
    pub fn stats(&self) -> &Stats {
        &self.peers.stats
    }

    /// Runs the event loop until a graceful shutdown completes. Only a failure of the poll itself
    /// ends it with an error; IO errors on a connection end that connection.
    pub fn run<H: Handler>(&mut self, handler: &mut H) -> io::Result<()> {
        self.handle.set_loop_thread();
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.poll_timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            self.peers.now = Instant::now();
            // Connections with input left over from the last turn go first, once each.
            for (key, generation, to_eof) in std::mem::take(&mut self.read_again) {
                if self
                    .peers
                    .id(key)
                    .is_some_and(|id| id.generation == generation)
                {
                    self.on_readable(key, handler, to_eof);
                    self.reply_now(key, handler);
                }
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(false),
                    METRICS_LISTENER => self.accept(true),
                    WAKER => self.on_wake(handler),
                    token if self.peers.is_broker_token(token) => self.peers.broker_ready(token),
                    token => {
                        let (key, generation) = split_token(token);
                        if self
                            .peers
                            .id(key)
                            .is_none_or(|id| id.generation != generation)
                        {
                            continue; // a stale event for a peer that is gone
                        }
                        if self.peers.slot(key).is_some_and(|p| p.conn.is_connecting())
                            && self.peers.complete_connect(key)
                        {
                            continue; // an outbound connection's TCP connect goes on
                        }
                        if event.is_writable() {
                            self.peers.mark_dirty(key);
                        }
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            let to_eof = event.is_read_closed() || event.is_error();
                            self.on_readable(key, handler, to_eof);
                            self.reply_now(key, handler);
                        }
                    }
                }
            }
            self.run_timers(handler);
            self.peers.broker_turn();
            self.report_counts(handler);
            // One write per connection per turn, carrying everything every sender produced for
            // it during the turn (uWebSockets drains its topics once per iteration the same way),
            // after the replies written as each connection's input was processed.
            self.flush_dirty(handler);
            if self.peers.held_total > self.peers.config.max_memory as u64 {
                for key in self.peers.enforce_memory_budget() {
                    self.peers.mark_dirty(key);
                }
                self.flush_dirty(handler);
            }
            self.peers.stats.memory_held = self.peers.held_total;
            if self
                .accept_paused_until
                .is_some_and(|t| t <= self.peers.now)
            {
                self.accept_paused_until = None;
                self.accept(false);
                self.accept(true);
            }
            if let Some(deadline) = self.shutdown_deadline {
                // Done at the deadline, or once no WebSocket connection is left: clients that
                // connected meanwhile and have not sent a whole request are not waited for.
                let timed_out = self.peers.now >= deadline;
                if timed_out || self.peers.stats.open == 0 && self.peers.all_handshaking() {
                    let why = if timed_out {
                        "shutdown timeout"
                    } else {
                        "shutdown"
                    };
                    for key in self.peers.keys() {
                        if let Some(peer) = self.peers.slot(key) {
                            peer.conn.abort(why);
                        }
                        self.remove(key, handler);
                    }
                }
                if self.peers.is_empty() {
                    log::info!("shutdown complete; counters follow");
                    for line in self.peers.stats.to_string().lines() {
                        log::info!("{line}");
                    }
                    return Ok(());
                }
            }
        }
    }

    fn poll_timeout(&mut self) -> Option<Duration> {
        if !self.read_again.is_empty() || self.peers.has_count_changes() {
            return Some(Duration::ZERO);
        }
        let now = Instant::now();
        let next = [
            self.peers.next_timer(),
            self.peers.broker_deadline(),
            self.accept_paused_until,
            self.shutdown_deadline,
        ]
        .into_iter()
        .flatten()
        .min()?;
        Some(next.saturating_duration_since(now))
    }

    /// Accepts one client from one listener (`metrics`: the operators' one).
    fn listener_accept(&self, metrics: bool) -> io::Result<(mio::net::TcpStream, SocketAddr)> {
        match (&self.metrics_listener, metrics) {
            (_, false) => self.listener.accept(),
            (Some((listener, _)), true) => listener.accept(),
            (None, true) => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    /// Accepts every client waiting on one listener (`metrics`: the operators' one). Accepting
    /// goes on during a shutdown: upgrades are then refused with 503, and `/healthz` says the
    /// server is going away.
    fn accept(&mut self, metrics: bool) {
        if self.accept_paused_until.is_some() {
            return;
        }
        loop {
            match self.listener_accept(metrics) {
                Ok((stream, addr)) => self.add_peer(stream, addr, metrics),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if matches!(e.raw_os_error(), Some(code) if code == 24 || code == 23) => {
                    // EMFILE (24) or ENFILE (23): out of file descriptors. Give up the spare one
                    // to accept the client and tell it so, rather than leave it hanging.
                    if self.spare.is_held() {
                        self.spare.release();
                        let answered = self.refuse_one(metrics, "out of file descriptors\n");
                        self.spare.restore();
                        if answered {
                            continue;
                        }
                    }
                    // No spare to give: retrying at once would spin; pause accepting and let
                    // closes free some.
                    log::warn!("accept: {e}; pausing accepts for {ACCEPT_PAUSE:?}");
                    self.accept_paused_until = Some(Instant::now() + ACCEPT_PAUSE);
                    return;
                }
                Err(e) => log::debug!("accept: {e}"), // e.g. ECONNABORTED: that client only
            }
        }
    }

    /// Whether a listener serves TLS: a refusal at accept is then the closed socket alone (a
    /// plain-text 503 would only break the client's handshake, and a TLS one would cost the
    /// state the refusal is there to save).
    fn serves_tls(&self, metrics: bool) -> bool {
        !metrics && self.peers.config.serves_tls()
    }

    /// Accepts one client only to answer it 503 and close. Returns whether one was answered.
    fn refuse_one(&mut self, metrics: bool, why: &'static str) -> bool {
        match self.listener_accept(metrics) {
            Ok((mut stream, addr)) => {
                log::debug!("{addr}: refused: {}", why.trim_end());
                self.peers.stats.accepted += 1;
                self.peers.stats.refused_over_capacity += 1;
                if !self.serves_tls(metrics) {
                    let mut response = Vec::new();
                    Response::text(503, why).write_to(&mut response);
                    let _ = stream.write(&response); // best effort; the socket is dropped anyway
                }
                true
            }
            Err(_) => false,
        }
    }

    fn add_peer(&mut self, mut stream: mio::net::TcpStream, addr: SocketAddr, metrics: bool) {
        self.peers.stats.accepted += 1;
        if self.peers.len() >= self.peers.config.max_connections {
            self.peers.stats.refused_over_capacity += 1;
            log::debug!("{addr}: refused, {} connections open", self.peers.len());
            if !self.serves_tls(metrics) {
                let mut response = Vec::new();
                Response::text(503, "too many connections\n").write_to(&mut response);
                let _ = stream.write(&response); // best effort; the socket is dropped anyway
            }
            return;
        }
        if let Err(e) = stream.set_nodelay(true) {
            log::debug!("{addr}: set_nodelay: {e}");
        }
        match self.peers.insert(stream, metrics) {
            Ok(id) => log::debug!("{addr}: accepted as {id}"),
            Err(e) => log::warn!("{addr}: register: {e}"),
        }
        // Data may already be waiting; edge-triggered readiness fires for it.
    }

    /// Reads and processes a peer's input until the socket is drained.
    ///
    /// Edge-triggered readiness must be consumed until `WouldBlock`, but a read that returns less
    /// than the buffer had room for has already drained the socket: any byte that arrives later
    /// raises a new edge. So unless the event also reported the peer's FIN (`to_eof`), which
    /// raises no further edge, a short read ends the loop and saves the `read` that would only
    /// return `WouldBlock`.
    ///
    /// At most [`READ_BUDGET`] bytes are read per turn; a connection that may have more is read
    /// again next turn.
    fn on_readable<H: Handler>(&mut self, key: usize, handler: &mut H, to_eof: bool) {
        let mut budget = READ_BUDGET;
        loop {
            let now = self.peers.now;
            let Some(peer) = self.peers.slot(key) else {
                return;
            };
            if peer.read_paused || peer.conn.is_closed() {
                return;
            }
            let handshaking = peer.conn.is_handshaking();
            let carried = peer.pending_len();
            // The payload of a large frame is read straight into its message when the
            // connection lends room for it; other input goes through the loop's buffer.
            let in_place = if handshaking {
                None
            } else {
                peer.read_in_place()
            };
            let (outcome, room) = match in_place {
                Some((outcome, room)) => (outcome, Some(room)),
                // The request head accumulates in `pending`, each byte copied once, so a client
                // dripping its head costs linear work, not a copy of the head per read.
                None if handshaking => (peer.read_appending(&mut self.read_buffer), None),
                None => (peer.read(&mut self.read_buffer), None),
            };
            let (len, socket_drained) = match outcome {
                // A read that did not fill the buffer drained the socket, unless the FIN is
                // still to come.
                Ok(ReadOutcome::Data(len)) => (
                    len,
                    len < room.unwrap_or(self.read_buffer.len())
                        && !to_eof
                        && !peer.has_more_input(),
                ),
                // Over TLS, the leftover may have left too little room to read the socket.
                Ok(ReadOutcome::Leftover(len)) => (len, !peer.has_more_input()),
                // Nothing to read, but a message is still being inflated: go on with it.
                Ok(ReadOutcome::WouldBlock) if peer.conn.has_pending_work() => (0, true),
                Ok(ReadOutcome::WouldBlock) => {
                    // A TLS handshake read no plaintext but may have records to answer with.
                    if peer.tls_wants_write() {
                        self.peers.mark_dirty(key);
                    }
                    return;
                }
                Ok(ReadOutcome::Eof) => {
                    peer.conn.handle_eof(now);
                    self.peers.mark_dirty(key);
                    return;
                }
                Err(e) => {
                    if let Some(id) = self.peers.id(key) {
                        log::debug!("{id}: read: {e}");
                    }
                    let Some(peer) = self.peers.slot(key) else {
                        return;
                    };
                    if let Some(outbound) = peer.conn.outbound_mut() {
                        outbound.fail_with(|| ConnectError::Io(e));
                    }
                    peer.conn.abort("read error");
                    self.peers.mark_dirty(key);
                    return;
                }
            };
            let new_bytes = if handshaking { len } else { len - carried };
            self.peers.stats.bytes_in += new_bytes as u64;
            // The bytes read are processed whatever the budget (keeping them for later would
            // copy them twice); only the messages they complete can use it up mid-way.
            let yielded = if room.is_some() {
                self.process_in_place(key, len, handler, &mut budget);
                false
            } else if handshaking {
                match self.handshake(key, handler) {
                    Some(frames_len) => self.process_input(key, frames_len, handler, &mut budget),
                    None => false,
                }
            } else {
                self.process_input(key, len, handler, &mut budget)
            };
            budget = budget.saturating_sub(new_bytes);
            if socket_drained && !yielded {
                return;
            }
            if budget == 0 {
                if let Some(id) = self.peers.id(key) {
                    self.read_again.push((key, id.generation, to_eof));
                }
                return;
            }
        }
    }

    /// Hands the request head gathered in the peer's `pending` to its connection and the
    /// application's answer back. Once the connection is open, copies whatever followed the head
    /// (the first frames) to the front of the read buffer and returns its length.
    fn handshake<H: Handler>(&mut self, key: usize, handler: &mut H) -> Option<usize> {
        let now = self.peers.now;
        let id = self.peers.id(key)?;
        let room_for_upgrades = self.peers.has_room_for_upgrades();
        let has_metrics_listener = self.metrics_listener.is_some();
        let parts = self.peers.parts(key)?;
        if parts.peer.conn.outbound().is_some() {
            return self.response(key, handler);
        }
        let mut head = parts.peer.take_pending();
        let Conn::Accepted(conn) = &mut parts.peer.conn else {
            unreachable!("an outbound peer reads a response");
        };
        let received = match conn.handle_input(&mut head, now, parts.shared) {
            Ok(received) => received,
            Err(error) => {
                log::debug!("{id}: {error}");
                if let Error::Handshake(error) = error {
                    bump(&mut parts.stats.handshake_rejections, error.status());
                }
                self.peers.mark_dirty(key);
                return None;
            }
        };
        if received.needs_more() {
            parts.peer.set_pending(head);
            return None;
        }
        let consumed = received.consumed;
        let shutting_down = self.shutdown_deadline.is_some();
        // The operators' routes are served on the metrics listener if there is one (and nothing
        // else is), otherwise on the WebSocket port before the application's routes.
        let on_metrics_listener = parts.peer.on_metrics_listener;
        let serve_ops = on_metrics_listener || !has_metrics_listener;
        let opened = match received.event {
            Some(ServerEvent::Http(request)) => {
                let response = serve_ops
                    .then(|| ops::answer(&request, parts.stats, shutting_down))
                    .flatten()
                    .unwrap_or_else(|| {
                        if on_metrics_listener {
                            Response::text(404, "not found\n")
                        } else {
                            handler.on_http(&request)
                        }
                    });
                log::debug!(
                    "{id}: {} {} answered {}",
                    request.method,
                    request.path,
                    response.status()
                );
                parts.stats.http_responses += 1;
                let _ = conn.respond(&response, now);
                false
            }
            Some(ServerEvent::Upgrade(_)) if on_metrics_listener => {
                log::debug!("{id}: upgrade refused: the metrics listener serves no WebSocket");
                bump(&mut parts.stats.handshake_rejections, 404);
                let _ = conn.refuse(&Response::text(404, "not found\n"), now);
                false
            }
            Some(ServerEvent::Upgrade(_)) if shutting_down => {
                log::debug!("{id}: upgrade refused: shutting down");
                bump(&mut parts.stats.handshake_rejections, 503);
                let refusal = Response::text(503, "shutting down\n");
                let _ = conn.refuse(&refusal, now);
                false
            }
            Some(ServerEvent::Upgrade(request)) => {
                let remote_addr = parts
                    .peer
                    .stream
                    .peer_addr()
                    .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
                let decision = if room_for_upgrades {
                    handler.on_upgrade(&request, remote_addr)
                } else {
                    log::debug!("{id}: refused: near the memory budget");
                    Upgrade::Refuse(Response::text(503, "server memory budget\n"))
                };
                match decision {
                    Upgrade::Accept { protocol } => {
                        match conn.accept(&request, protocol.as_deref(), now) {
                            Ok(()) => {
                                parts.stats.opened += 1;
                                parts.stats.open += 1;
                                log::debug!("{id}: open {}", request.path);
                                let opening = Opening {
                                    request: &request,
                                    protocol: protocol.as_deref(),
                                    remote_addr,
                                    outbound: false,
                                };
                                let mut ctx = Context {
                                    peers: &mut self.peers,
                                    handle: &self.handle,
                                };
                                handler.on_open(&mut ctx, id, &opening);
                                true
                            }
                            Err(error) => {
                                log::error!("{id}: the handler's answer is invalid: {error}");
                                let refusal = Response::text(500, "internal error\n");
                                let _ = conn.refuse(&refusal, now);
                                bump(&mut parts.stats.handshake_rejections, 500);
                                false
                            }
                        }
                    }
                    Upgrade::Refuse(response) => {
                        log::debug!(
                            "{id}: upgrade refused by the application: {}",
                            response.status()
                        );
                        bump(&mut parts.stats.handshake_rejections, response.status());
                        let _ = conn.refuse(&response, now);
                        false
                    }
                }
            }
            _ => false,
        };
        self.peers.mark_dirty(key);
        if !opened {
            return None;
        }
        // Bytes after the head are the client's first frames: hand them to the frame loop.
        let frames = &head[consumed..];
        self.read_buffer[..frames.len()].copy_from_slice(frames);
        Some(frames.len())
    }

    /// Hands the response head gathered in an outbound peer's `pending` to its connection. Once
    /// the connection is open, tells the handler, copies whatever followed the head (the first
    /// frames) to the front of the read buffer and returns its length.
    fn response<H: Handler>(&mut self, key: usize, handler: &mut H) -> Option<usize> {
        let now = self.peers.now;
        let id = self.peers.id(key)?;
        let parts = self.peers.parts(key)?;
        let mut head = parts.peer.take_pending();
        let remote_addr = parts.peer.stream.peer_addr();
        let outbound = parts.peer.conn.outbound_mut()?;
        let received = match outbound.conn.handle_input(&mut head, now, parts.shared) {
            Ok(received) if received.needs_more() => {
                parts.peer.set_pending(head);
                return None;
            }
            Ok(received) => received,
            Err(error) => {
                log::debug!("{id}: {error}");
                if let ClientError::Handshake(error) = error {
                    outbound.fail_with(|| ConnectError::Handshake(error));
                }
                self.peers.mark_dirty(key);
                return None;
            }
        };
        let consumed = received.consumed;
        parts.stats.opened += 1;
        parts.stats.open += 1;
        let protocol = outbound.conn.protocol().map(str::to_owned);
        let request = outbound.open();
        log::debug!("{id}: open (outbound) {}", request.resource);
        let opening = Opening {
            request: &outbound::sent_request(&request),
            protocol: protocol.as_deref(),
            remote_addr: remote_addr.unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0))),
            outbound: true,
        };
        let mut ctx = Context {
            peers: &mut self.peers,
            handle: &self.handle,
        };
        handler.on_open(&mut ctx, id, &opening);
        self.peers.mark_dirty(key);
        // Bytes after the head are the server's first frames: hand them to the frame loop.
        let frames = &head[consumed..];
        self.read_buffer[..frames.len()].copy_from_slice(frames);
        Some(frames.len())
    }

    /// Handles `len` bytes of frames at the front of the read buffer (pending input followed by
    /// new input).
    ///
    /// The payload of the messages delivered counts against `budget` (the connection's work for
    /// this turn): a message that inflated to megabytes uses it up, and the rest of the input
    /// waits for the next turn. Returns whether it stopped for that reason.
    fn process_input<H: Handler>(
        &mut self,
        key: usize,
        len: usize,
        handler: &mut H,
        budget: &mut usize,
    ) -> bool {
        let now = self.peers.now;
        let mut pos = 0;
        let mut yielded = false;
        let mut unfinished = false;
        self.peers.lend_spare(key);
        // The handler cannot remove a peer (closing one only queues its Close), so the id holds.
        let Some(id) = self.peers.id(key) else {
            return false;
        };
        loop {
            if *budget == 0 && (pos < len || unfinished) {
                yielded = true;
                break;
            }
            let Some(parts) = self.peers.parts(key) else {
                return false;
            };
            // Whole messages first, many in one call; any other frame is taken one at a time
            // below (and the batch after it in the next pass).
            parts.peer.conn.receive_batch(
                &mut self.read_buffer[pos..len],
                now,
                *budget,
                &mut self.batch,
            );
            if !self.batch.is_empty() {
                deliver_batch(
                    &mut self.peers,
                    &self.handle,
                    id,
                    &self.batch,
                    &self.read_buffer[pos..len],
                    handler,
                    budget,
                );
                pos += self.batch.consumed();
                continue;
            }
            // A Close received while open is answered with one (§5.5.1); counted below.
            let was_open = parts.peer.conn.is_open();
            let input = &mut self.read_buffer[pos..len];
            let received = match parts.peer.conn.receive(input, now, parts.shared) {
                Ok(received) => received,
                Err(error) => {
                    log_failure(parts.stats, id, error, was_open);
                    break;
                }
            };
            if received.needs_more() {
                break;
            }
            if received.unfinished {
                // A compressed message is being inflated a step at a time: each step is work.
                *budget = budget.saturating_sub(INFLATE_PER_CALL);
                unfinished = true;
            } else {
                unfinished = false;
            }
            pos += received.consumed;
            deliver(
                &mut self.peers,
                &self.handle,
                id,
                received.event,
                was_open,
                handler,
                budget,
            );
        }
        if let Some(peer) = self.peers.slot(key)
            && pos < len
            && !peer.conn.is_closed()
        {
            peer.set_pending(self.read_buffer[pos..len].to_vec());
        }
        self.peers.mark_dirty(key);
        yielded
    }

    /// Hands `len` bytes of a large frame's payload, read into the room its connection lent, to
    /// the connection, and the message they complete (if they do) to the application.
    fn process_in_place<H: Handler>(
        &mut self,
        key: usize,
        len: usize,
        handler: &mut H,
        budget: &mut usize,
    ) {
        let now = self.peers.now;
        let (Some(id), Some(parts)) = (self.peers.id(key), self.peers.parts(key)) else {
            return;
        };
        let was_open = parts.peer.conn.is_open();
        match parts.peer.conn.receive_in_place(len, now, parts.shared) {
            Ok(received) => deliver(
                &mut self.peers,
                &self.handle,
                id,
                received.event,
                was_open,
                handler,
                budget,
            ),
            Err(error) => log_failure(parts.stats, id, error, was_open),
        }
        self.peers.mark_dirty(key);
    }

    /// Writes the output of every peer that got some during this pass, and removes those whose
    /// connection is over.
    fn flush_dirty<H: Handler>(&mut self, handler: &mut H) {
        // What was published is handed out first, and again after each peer: a handler called
        // meanwhile (`on_close`) may publish more.
        while let Some(key) = {
            self.peers.hand_out();
            self.peers.pop_dirty()
        } {
            self.flush(key, handler);
        }
    }

    /// Writes what a connection's own input produced for it (replies, a Pong, a Close) as soon
    /// as that input is processed, without waiting for the end of the turn: the client can read
    /// its replies while the loop serves the other connections (uWebSockets likewise uncorks a
    /// socket at the end of its read callback). What was published is not handed out here, so
    /// a publication still reaches each recipient in the one write at the end of the turn.
    fn reply_now<H: Handler>(&mut self, key: usize, handler: &mut H) {
        if self.peers.take_dirty(key) {
            self.flush(key, handler);
        }
    }

    fn flush<H: Handler>(&mut self, key: usize, handler: &mut H) {
        match self.peers.flush(key) {
            Flushed::Done => {}
            Flushed::ResumeReading => {
                self.on_readable(key, handler, true);
                self.peers.mark_dirty(key);
            }
            Flushed::Closed => self.remove(key, handler),
        }
    }

    fn remove<H: Handler>(&mut self, key: usize, handler: &mut H) {
        let Some((id, peer)) = self.peers.remove(key) else {
            return;
        };
        let Some(closure) = peer.conn.closure() else {
            if let Conn::Outbound(mut outbound) = peer.conn {
                let error = outbound.take_failure();
                log::debug!("{id}: the connection we opened failed: {error}");
                let mut ctx = Context {
                    peers: &mut self.peers,
                    handle: &self.handle,
                };
                handler.on_connect_failed(&mut ctx, id, &error);
                return;
            }
            log::debug!("{id}: gone, no WebSocket opened (plain HTTP, refused or cut off)");
            return;
        };
        log::debug!("{id}: {}", HowItEnded(closure));
        let mut ctx = Context {
            peers: &mut self.peers,
            handle: &self.handle,
        };
        handler.on_close(&mut ctx, id, closure);
        // Its subscriptions end after `on_close`, which may read them.
        self.peers.topics.remove_peer(id);
    }

    /// Tells the handler which topics' numbers of subscribers changed during the turn.
    fn report_counts<H: Handler>(&mut self, handler: &mut H) {
        for (topic, count) in self.peers.take_count_changes() {
            let mut ctx = Context {
                peers: &mut self.peers,
                handle: &self.handle,
            };
            handler.on_subscribers(&mut ctx, &topic, count);
        }
    }

    fn run_timers<H: Handler>(&mut self, handler: &mut H) {
        while let Some(key) = self.peers.fire_next_timer() {
            match self.peers.flush(key) {
                Flushed::Closed => self.remove(key, handler),
                Flushed::Done | Flushed::ResumeReading => {}
            }
        }
    }

    /// Carries out what other threads asked for through the handle.
    fn on_wake<H: Handler>(&mut self, handler: &mut H) {
        while let Ok(command) = self.commands.try_recv() {
            let result = match command {
                Command::Send { to, kind, payload } => self
                    .peers
                    .send(to, kind, &payload)
                    .map_err(|e| e.to_string()),
                Command::Broadcast { kind, payload } => {
                    self.peers.broadcast(PreparedFrame::new(kind, &payload));
                    Ok(())
                }
                Command::Close { to, code, reason } => self
                    .peers
                    .close(to, code, &reason)
                    .map_err(|e| e.to_string()),
                Command::Subscribe { peer, topic } => self
                    .peers
                    .subscribe(peer, &topic)
                    .map(drop)
                    .map_err(|e| e.to_string()),
                Command::Unsubscribe { peer, topic } => {
                    self.peers.unsubscribe(peer, &topic);
                    Ok(())
                }
                Command::Publish {
                    topic,
                    except,
                    kind,
                    payload,
                } => {
                    self.peers.publish(&topic, kind, &payload, except);
                    Ok(())
                }
                Command::Subscribers { topic, reply } => {
                    let _ = reply.try_send(self.peers.topics.count(&topic));
                    Ok(())
                }
                Command::Connect {
                    url,
                    options,
                    reply,
                } => {
                    let result = match self.handle.shutdown_requested() {
                        true => Err(ConnectError::ShuttingDown),
                        false => self.peers.connect_url(&url, *options),
                    };
                    let _ = reply.try_send(result);
                    Ok(())
                }
            };
            if let Err(error) = result {
                log::debug!("command from a handle: {error}");
            }
        }
        if self.handle.shutdown_requested() && self.shutdown_deadline.is_none() {
            self.begin_shutdown(handler);
        }
        self.flush_dirty(handler);
    }

    /// Sends 1001 to every open connection and drops those still handshaking. The listener
    /// stays open until the loop ends, so that clients arriving meanwhile get an answer (503 for
    /// an upgrade, 503 from `/healthz`) instead of waiting in the backlog for a reset.
    fn begin_shutdown<H: Handler>(&mut self, handler: &mut H) {
        log::info!("shutting down: closing {} connections", self.peers.len());
        self.shutdown_deadline = Some(Instant::now() + self.peers.config.shutdown_timeout);
        for key in self.peers.keys() {
            let Some(id) = self.peers.id(key) else {
                continue;
            };
            let Some(peer) = self.peers.slot(key) else {
                continue;
            };
            if peer.conn.is_open() {
                let _ = self
                    .peers
                    .close(id, CloseCode::GOING_AWAY, "server shutting down");
            } else if peer.conn.is_handshaking() {
                peer.conn.abort("shutdown");
                self.remove(key, handler);
            }
        }
    }
}

/// Logs why a connection's input failed it, and counts the Close it sent for a protocol error.
/// The connection closes itself (Lifecycle); the problem is logged at debug level (a peer's
/// protocol error is no fault of the server's).
//
//= https://www.rfc-editor.org/rfc/rfc6455#section-7.1.7
//# Similarly, to do so, the server MUST _Close the WebSocket
//# Connection_, and SHOULD log the problem.
fn log_failure(stats: &mut Stats, id: PeerId, error: Error, was_open: bool) {
    log::debug!("{id}: {error}");
    if let (Error::Protocol(error), true) = (error, was_open) {
        bump(&mut stats.close_codes_sent, error.close_code().0);
    }
}

/// Gives the application what a connection received: a message (which uses up its size of the
/// turn's `budget`), or counts the peer's Close.
#[inline(always)]
fn deliver<H: Handler>(
    peers: &mut Peers,
    handle: &Handle,
    id: PeerId,
    event: Option<ServerEvent<'_>>,
    was_open: bool,
    handler: &mut H,
    budget: &mut usize,
) {
    match event {
        Some(ServerEvent::Message(message)) => {
            deliver_message(peers, handle, id, message, handler, budget)
        }
        Some(ServerEvent::Close(frame)) => count_close(&mut peers.stats, frame, was_open),
        _ => {}
    }
}

/// Gives the application the messages of a batch, each only while the connection still
/// delivers messages (the application may close it while handling one).
#[inline(always)]
fn deliver_batch<H: Handler>(
    peers: &mut Peers,
    handle: &Handle,
    id: PeerId,
    batch: &Batch,
    input: &[u8],
    handler: &mut H,
    budget: &mut usize,
) {
    for index in 0..batch.len() {
        if index > 0
            && !peers
                .slot(id.key)
                .is_some_and(|peer| peer.conn.delivers_messages())
        {
            return;
        }
        deliver_message(
            peers,
            handle,
            id,
            batch.message(input, index),
            handler,
            budget,
        );
    }
}

/// Gives the application a message, which uses up its size of the turn's `budget`.
#[inline(always)]
fn deliver_message<H: Handler>(
    peers: &mut Peers,
    handle: &Handle,
    id: PeerId,
    message: Message<'_>,
    handler: &mut H,
    budget: &mut usize,
) {
    peers.stats.messages_in += 1;
    *budget = budget.saturating_sub(message.as_bytes().len());
    let mut ctx = Context { peers, handle };
    handler.on_message(&mut ctx, id, message);
}

/// Counts a Close received, and the one sent back when it came while open (§5.5.1).
#[inline(never)]
fn count_close(stats: &mut Stats, frame: Option<CloseFrame<'_>>, was_open: bool) {
    let code = frame.map_or(CloseCode::NO_STATUS, |f| f.code);
    bump(&mut stats.close_codes_received, code.0);
    if was_open {
        bump(&mut stats.close_codes_sent, code.0);
    }
}

/// How a connection that was open ended, for the log: closed cleanly (and with which code, by
/// whom) or dropped (and why).
struct HowItEnded<'a>(&'a Closure);

impl fmt::Display for HowItEnded<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let closure = self.0;
        let code = closure.code.0;
        match closure.cause {
            CloseCause::ClosedByPeer => write!(f, "closed cleanly, code {code}, by the client")?,
            CloseCause::ClosedByUs(ours) => write!(
                f,
                "closed cleanly, code {code}, by the server (which sent {})",
                ours.0
            )?,
            CloseCause::Failed(error) => write!(
                f,
                "failed, code {code}: {error} (the server sent {})",
                error.close_code().0
            )?,
            CloseCause::TimedOut(Deadline::Keepalive) => write!(
                f,
                "dropped, code {code}: nothing came after the keepalive ping"
            )?,
            CloseCause::TimedOut(Deadline::Close) => write!(
                f,
                "dropped, code {code}: the closing handshake did not complete in time"
            )?,
            CloseCause::TransportClosed => write!(
                f,
                "dropped, code {code}: TCP closed before the closing handshake completed"
            )?,
            CloseCause::Dropped(why) => write!(f, "dropped by the server, code {code}: {why}")?,
        }
        if !closure.reason.is_empty() {
            write!(f, " (reason {:?})", closure.reason)?;
        }
        Ok(())
    }
}
