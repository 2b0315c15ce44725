//! A broker for topics across processes and machines: Redis Pub/Sub (RESP2), on the server's
//! own mio loop.
//!
//! Every message published to a topic goes to the Redis channel `prefix + topic`, and each
//! process delivers what arrives on the channels it is subscribed to to its local subscribers,
//! including its own messages: so every subscriber of a topic, in every process, sees the
//! topic's messages in the one order Redis gave them. A process subscribes to a channel when the
//! topic gets its first local subscriber and unsubscribes when the last one leaves.
//!
//! Two connections, as RESP2 needs (a subscribed connection may only subscribe, unsubscribe and
//! ping): the **subscriber** link and the **publisher** link. Both are ordinary non-blocking
//! sockets registered with the loop's poll; RESP is encoded and decoded with the sans-IO
//! `redis-protocol` crate, so there is no async runtime and no helper thread.
//!
//! Faults: when a link is down, a message is delivered to the local subscribers at once and
//! counted as not crossing (`redis_local_only_total`); the link reconnects with a backoff from
//! [`RECONNECT_MIN`] doubling to [`RECONNECT_MAX`] (with ±20 % jitter), and the subscriber link
//! subscribes again to every topic that has local subscribers then, including topics first
//! joined while Redis was down. Output to Redis is bounded ([`RedisConfig::max_output`]): a
//! message that does not fit is delivered locally and counted (`redis_dropped_total`), so a
//! Redis that reads slowly never stalls the loop. A link silent for [`PING_AFTER`] is pinged, and
//! one that does not answer within [`PING_TIMEOUT`] is reconnected. Each link logs when it goes
//! down and when it is up again, once per transition.
//!
//! Pub/Sub is at-most-once: a message published while a link is down or full, or in flight when
//! it fails, may reach some processes and not others; none is delivered twice.
//!
//! Counts: on the channel `prefix + "#counts"` (`#` is in no topic name) each process tells the
//! others how many subscribers its topics have, those that changed at the end of the turn they
//! changed in and all of them every [`COUNTS_PERIOD`]; a process not heard of for
//! [`COUNTS_EXPIRY`] is forgotten. That gives every process the number of subscribers a topic
//! has everywhere (a chat room's "N people here").

use super::peers::PeerId;
use super::topics::{Interest, Topics};
use crate::message::MessageKind;
use mio::net::TcpStream;
use mio::{Interest as Readiness, Registry, Token};
use redis_protocol::resp2::decode::decode_range;
use redis_protocol::resp2::encode::encode_borrowed;
use redis_protocol::resp2::types::{BorrowedFrame, RangeFrame};
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The token of the subscriber link.
pub(crate) const SUBSCRIBER: Token = Token(usize::MAX - 3);
/// The token of the publisher link.
pub(crate) const PUBLISHER: Token = Token(usize::MAX - 4);

/// The first wait before reconnecting a link.
pub const RECONNECT_MIN: Duration = Duration::from_millis(50);
/// The longest wait between two attempts to connect: short enough that a restarted Redis is in
/// use again within about a second, long enough that a dead one costs a connection attempt per
/// second per link.
pub const RECONNECT_MAX: Duration = Duration::from_secs(1);
/// How long a connection attempt (TCP and the handshake's replies) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A link that has heard nothing for this long sends a `PING`.
pub const PING_AFTER: Duration = Duration::from_secs(5);
/// A link whose `PING` is not answered within this long is reconnected.
pub const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// Messages held for a topic whose subscription Redis has not confirmed yet (they are published
/// once it has, so that this process receives them back); past it, or past
/// [`RedisConfig::max_output`] bytes held for all topics, they are delivered locally.
pub const MAX_HELD: usize = 1024;
/// How often each process tells the others how many subscribers its topics have (and at once
/// when a count changes).
pub const COUNTS_PERIOD: Duration = Duration::from_secs(2);
/// A process whose counts have not been heard of for this long is taken to be gone, and its
/// subscribers no longer counted.
pub const COUNTS_EXPIRY: Duration = Duration::from_secs(6);
/// The channel (after the prefix) the processes' counts go on; `#` is in no topic name.
const COUNTS: &str = "#counts";

/// The most bytes read from one link per turn of the loop.
const READ_BUDGET: usize = 256 * 1024;
/// A link's empty buffer larger than this is given back.
const SHRINK_ABOVE: usize = 1024 * 1024;
/// The envelope before a message's payload on a channel: its type, the publishing process and
/// the connection the publisher left out (`u64::MAX` for none).
const ENVELOPE_LEN: usize = 1 + 8 + 8 + 4;
/// The head of a counts message: `C`, the process, whether it holds every count (1) or only
/// those that changed (0); then per topic its length (one byte), its name and its count (four).
const ENVELOPE_COUNTS_HEAD: usize = 1 + 8 + 1;

/// Where Redis is and how to use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// The server's address (resolved once, when the configuration is made).
    pub addr: SocketAddr,
    /// The ACL user for `AUTH` (Redis 6 and later), if any.
    pub username: Option<String>,
    /// The password for `AUTH`, if any.
    pub password: Option<String>,
    /// The database to `SELECT`. Pub/Sub ignores databases (a channel is heard from every one):
    /// the prefix is what separates deployments.
    pub db: u32,
    /// Put before every topic to make its channel name, so that several deployments can share
    /// one Redis.
    pub prefix: String,
    /// Bytes queued for Redis on the publisher link past which a message is not sent (it is
    /// delivered locally and counted as dropped).
    pub max_output: usize,
    /// The longest reply accepted from Redis, in bytes: a message larger than the largest a
    /// client may send, plus its channel and envelope. A longer one breaks the link.
    pub max_input: usize,
}

impl RedisConfig {
    /// Parses `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]` (port 6379 and database 0 by
    /// default; `%XX` escapes in the user and password) and resolves the host (its first IPv4
    /// address if it has one).
    ///
    /// ```
    /// use rfc6455::server::RedisConfig;
    /// let config = RedisConfig::from_url("redis://:secret@127.0.0.1:6380/2").unwrap();
    /// assert_eq!(config.addr.port(), 6380);
    /// assert_eq!((config.password.as_deref(), config.db), (Some("secret"), 2));
    /// ```
    pub fn from_url(url: &str) -> Result<RedisConfig, String> {
        let rest = url
            .strip_prefix("redis://")
            .ok_or_else(|| format!("{url:?} does not start with redis://"))?;
        let (authority, db) = match rest.split_once('/') {
            Some((authority, "")) => (authority, 0),
            Some((authority, db)) => (
                authority,
                db.parse()
                    .map_err(|_| format!("{db:?} is not a database number"))?,
            ),
            None => (rest, 0),
        };
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => (Some(userinfo), host_port),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            Some(userinfo) => {
                let (user, password) = userinfo.split_once(':').unwrap_or(("", userinfo));
                let user = percent_decode(user)?;
                let password = percent_decode(password)?;
                (
                    (!user.is_empty()).then_some(user),
                    (!password.is_empty()).then_some(password),
                )
            }
            None => (None, None),
        };
        let (host, port) = match host_port.rsplit_once(':') {
            Some((host, port))
                if !host.ends_with(':') && (!host.contains(':') || host.ends_with(']')) =>
            {
                (
                    host,
                    port.parse()
                        .map_err(|_| format!("{port:?} is not a port"))?,
                )
            }
            _ => (host_port, 6379),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("{url:?} has no host"));
        }
        let addrs: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {host:?}: {e}"))?
            .collect();
        let addr = addrs
            .iter()
            .find(|addr| addr.is_ipv4())
            .or(addrs.first())
            .copied()
            .ok_or_else(|| format!("{host:?} has no address"))?;
        Ok(RedisConfig {
            addr,
            username,
            password,
            db,
            prefix: "rfc6455:".to_owned(),
            max_output: 16 * 1024 * 1024,
            max_input: 16 * 1024 * 1024 + 64 * 1024,
        })
    }
}

/// Decodes `%XX` escapes.
fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad escape in {text:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{text:?} is not UTF-8 once decoded"))
}

/// The broker's counters, as `/metrics` shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisStats {
    /// Whether the subscriber link is up (a gauge: 0 or 1).
    pub subscriber_up: u64,
    /// Whether the publisher link is up (a gauge: 0 or 1).
    pub publisher_up: u64,
    /// Connections made to Redis (both links).
    pub connects: u64,
    /// Links lost, or connection attempts that failed.
    pub link_failures: u64,
    /// Messages sent to Redis (`PUBLISH`).
    pub published: u64,
    /// Messages received from Redis and delivered to local subscribers.
    pub received: u64,
    /// Messages delivered only to local subscribers because the publisher link was down: they
    /// could not cross to other processes.
    pub local_only: u64,
    /// Messages not sent to Redis because its output was full (Redis reads too slowly), or held
    /// too long for a subscription; delivered locally.
    pub dropped: u64,
    /// `PUBLISH` commands (messages, and this process's counts) whose reply had not come when
    /// the publisher link failed: they may or may not have reached the other processes.
    pub unconfirmed: u64,
    /// Replies or messages from Redis that were errors or not understood.
    pub errors: u64,
    /// Channels subscribed to now (a gauge).
    pub channels: u64,
    /// Bytes queued for Redis now (a gauge).
    pub queued_bytes: u64,
}

/// Whether a link is usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting to reconnect.
    Down { retry_at: Instant },
    /// TCP is connecting (the socket is registered for WRITABLE).
    Connecting { since: Instant },
    /// Connected: commands may be queued (the handshake's are ahead of them).
    Up,
}

/// Which link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Subscriber,
    Publisher,
}

/// One connection to Redis: its socket, its state, its buffers.
#[derive(Debug)]
struct Link {
    role: Role,
    token: Token,
    stream: Option<TcpStream>,
    state: State,
    output: Vec<u8>,
    written: usize,
    write_interest: bool,
    input: Vec<u8>,
    backoff: Duration,
    /// Replies to the handshake (`AUTH`, `SELECT`, `PING`) still to come.
    handshake_replies: usize,
    /// Replies to `PUBLISH` still to come (the publisher link).
    publish_replies: u64,
    last_heard: Instant,
    ping_sent: Option<Instant>,
    /// The link is known to be down and that was logged; the next success is logged too.
    logged_down: bool,
    ever_up: bool,
    /// The link used its read budget with input possibly left: read again next turn.
    more: bool,
}

impl Link {
    fn new(role: Role, token: Token, now: Instant) -> Link {
        Link {
            role,
            token,
            stream: None,
            state: State::Down { retry_at: now },
            output: Vec::new(),
            written: 0,
            write_interest: false,
            input: Vec::new(),
            backoff: RECONNECT_MIN,
            handshake_replies: 0,
            publish_replies: 0,
            last_heard: now,
            ping_sent: None,
            logged_down: false,
            ever_up: false,
            more: false,
        }
    }

    fn name(&self) -> &'static str {
        match self.role {
            Role::Subscriber => "subscriber",
            Role::Publisher => "publisher",
        }
    }

    fn is_up(&self) -> bool {
        self.state == State::Up
    }

    fn queued(&self) -> usize {
        self.output.len() - self.written
    }

    /// Queues one command (an array of bulk strings).
    fn command(&mut self, parts: &[&[u8]]) {
        let frames: Vec<BorrowedFrame<'_>> = parts
            .iter()
            .map(|part| BorrowedFrame::BulkString(part))
            .collect();
        let frame = BorrowedFrame::Array(&frames);
        let start = self.output.len();
        self.output.resize(start + frame.encode_len(false), 0);
        let n = encode_borrowed(&mut self.output[start..], &frame, false)
            .expect("the buffer was sized by encode_len");
        self.output.truncate(start + n);
    }

    /// The next time something is due for this link.
    fn deadline(&self) -> Option<Instant> {
        if self.more {
            return Some(self.last_heard); // now
        }
        match self.state {
            State::Down { retry_at } => Some(retry_at),
            State::Connecting { since } => Some(since + CONNECT_TIMEOUT),
            State::Up => Some(match self.ping_sent {
                Some(sent) => sent + PING_TIMEOUT,
                None => self.last_heard + PING_AFTER,
            }),
        }
    }
}

/// A message held until its topic's subscription is confirmed.
#[derive(Debug)]
struct Held {
    envelope: Vec<u8>,
}

/// What this process knows of one channel it has (or had) local subscribers for.
#[derive(Debug)]
struct Channel {
    /// Whether the topic has local subscribers.
    interest: bool,
    /// Subscribe or unsubscribe commands sent on the current subscriber connection and not
    /// confirmed yet.
    in_flight: u32,
    /// Redis confirmed the subscription (and nothing changed it since).
    active: bool,
    /// Messages published while the subscription was not yet confirmed.
    held: Vec<Held>,
}

/// What a link event or a deadline found for the local subscribers.
pub(crate) struct Delivery<'a> {
    pub topic: &'a str,
    pub kind: MessageKind,
    pub payload: &'a [u8],
    pub except: Option<PeerId>,
}

/// Where a published message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Routed {
    /// To Redis (or held for it): it is delivered locally when it comes back.
    Broker,
    /// Deliver it to the local subscribers now.
    Local,
}

/// The Redis broker: two links, the channels of this process's topics, the counters.
#[derive(Debug)]
pub(crate) struct Broker {
    config: RedisConfig,
    registry: Registry,
    /// This process, in every envelope it publishes.
    origin: u64,
    subscriber: Link,
    publisher: Link,
    channels: HashMap<Arc<str>, Channel>,
    stats: RedisStats,
    /// Jitter's state (xorshift).
    jitter: u64,
    /// The time of the current turn.
    now: Instant,
    /// The other processes' subscribers per topic, by process, and when each was last heard of.
    remote: HashMap<u64, Remote>,
    /// Topics whose count in another process changed since they were last taken.
    remote_changed: HashSet<String>,
    /// Topics whose local count changed and is still to be told to the others.
    local_changed: HashSet<Arc<str>>,
    /// When this process next tells the others all its counts.
    counts_at: Instant,
    /// Bytes of the messages held for every topic.
    held_bytes: usize,
}

/// Another process's subscriber counts.
#[derive(Debug)]
struct Remote {
    last_heard: Instant,
    counts: HashMap<String, u32>,
}

/// A message as it travels on a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Envelope<'a> {
    kind: MessageKind,
    /// The process that published it.
    origin: u64,
    /// The connection (of `origin`) the publisher left out.
    except: Option<PeerId>,
    payload: &'a [u8],
}

/// Parses an envelope: the message type, its origin, the connection left out, the payload.
fn open_envelope(bytes: &[u8]) -> Option<Envelope<'_>> {
    if bytes.len() < ENVELOPE_LEN {
        return None;
    }
    let kind = match bytes[0] {
        b'T' => MessageKind::Text,
        b'B' => MessageKind::Binary,
        _ => return None,
    };
    let origin = u64::from_be_bytes(bytes[1..9].try_into().ok()?);
    let key = u64::from_be_bytes(bytes[9..17].try_into().ok()?);
    let generation = u32::from_be_bytes(bytes[17..21].try_into().ok()?);
    let except = (key != u64::MAX).then_some(PeerId {
        key: usize::try_from(key).ok()?,
        generation,
    });
    Some(Envelope {
        kind,
        origin,
        except,
        payload: &bytes[ENVELOPE_LEN..],
    })
}

/// Builds an envelope.
fn envelope(kind: MessageKind, origin: u64, except: Option<PeerId>, payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(ENVELOPE_LEN + payload.len());
    bytes.push(match kind {
        MessageKind::Text => b'T',
        MessageKind::Binary => b'B',
    });
    bytes.extend_from_slice(&origin.to_be_bytes());
    let (key, generation) = except.map_or((u64::MAX, 0), |id| (id.key as u64, id.generation));
    bytes.extend_from_slice(&key.to_be_bytes());
    bytes.extend_from_slice(&generation.to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// The bytes a range of the input names.
fn slice<'a>(input: &'a [u8], range: &(usize, usize)) -> &'a [u8] {
    &input[range.0..range.1]
}

impl Broker {
    /// A broker for `config`, connecting both links at once.
    pub fn new(config: RedisConfig, registry: Registry, now: Instant) -> Broker {
        let origin =
            std::collections::hash_map::RandomState::new().hash_one((std::process::id(), now));
        let mut broker = Broker {
            config,
            registry,
            origin,
            subscriber: Link::new(Role::Subscriber, SUBSCRIBER, now),
            publisher: Link::new(Role::Publisher, PUBLISHER, now),
            channels: HashMap::new(),
            stats: RedisStats::default(),
            jitter: origin | 1,
            now,
            remote: HashMap::new(),
            remote_changed: HashSet::new(),
            local_changed: HashSet::new(),
            counts_at: now,
            held_bytes: 0,
        };
        broker.connect(Role::Subscriber, now);
        broker.connect(Role::Publisher, now);
        broker
    }

    fn link(&mut self, role: Role) -> &mut Link {
        match role {
            Role::Subscriber => &mut self.subscriber,
            Role::Publisher => &mut self.publisher,
        }
    }

    /// The counters, with the gauges as of now.
    pub fn stats(&self) -> RedisStats {
        RedisStats {
            subscriber_up: u64::from(self.subscriber.is_up()),
            publisher_up: u64::from(self.publisher.is_up()),
            channels: self.channels.values().filter(|c| c.active).count() as u64,
            queued_bytes: (self.subscriber.queued() + self.publisher.queued()) as u64,
            ..self.stats.clone()
        }
    }

    /// The channel of `topic`.
    fn channel_name(&self, topic: &str) -> Vec<u8> {
        let mut name = Vec::with_capacity(self.config.prefix.len() + topic.len());
        name.extend_from_slice(self.config.prefix.as_bytes());
        name.extend_from_slice(topic.as_bytes());
        name
    }

    /// Starts connecting a link.
    fn connect(&mut self, role: Role, now: Instant) {
        let addr = self.config.addr;
        let result = TcpStream::connect(addr).and_then(|mut stream| {
            let token = self.link(role).token;
            self.registry.register(
                &mut stream,
                token,
                Readiness::READABLE | Readiness::WRITABLE,
            )?;
            Ok(stream)
        });
        match result {
            Ok(stream) => {
                let link = self.link(role);
                link.stream = Some(stream);
                link.state = State::Connecting { since: now };
                link.write_interest = true;
            }
            Err(e) => self.fail(role, &format!("connect: {e}"), now, &mut |_| {}),
        }
    }

    /// Ends a link's connection after `why`, and plans the next attempt.
    fn fail(&mut self, role: Role, why: &str, now: Instant, deliver: &mut dyn FnMut(Delivery<'_>)) {
        let jitter = {
            // xorshift64: ±20 % around the backoff, so that many processes do not reconnect
            // in step.
            self.jitter ^= self.jitter << 13;
            self.jitter ^= self.jitter >> 7;
            self.jitter ^= self.jitter << 17;
            0.8 + (self.jitter % 1000) as f64 / 2500.0
        };
        let addr = self.config.addr;
        let link = self.link(role);
        let was_up = link.is_up();
        if let Some(mut stream) = link.stream.take() {
            let _ = self.registry.deregister(&mut stream);
        }
        let link = self.link(role);
        let wait = link.backoff.mul_f64(jitter);
        link.state = State::Down {
            retry_at: now + wait,
        };
        link.backoff = (link.backoff * 2).min(RECONNECT_MAX);
        link.output = Vec::new();
        link.written = 0;
        link.write_interest = false;
        link.input = Vec::new();
        link.handshake_replies = 0;
        link.ping_sent = None;
        link.more = false;
        let unconfirmed = std::mem::take(&mut link.publish_replies);
        let name = link.name();
        if !link.logged_down {
            link.logged_down = true;
            if was_up || link.ever_up {
                log::warn!(
                    "redis {name} link to {addr} lost: {why}; delivering locally, reconnecting (every {RECONNECT_MAX:?} at most)"
                );
            } else {
                log::warn!(
                    "redis {name} link: cannot connect to {addr}: {why}; delivering locally, retrying (every {RECONNECT_MAX:?} at most)"
                );
            }
        } else {
            log::debug!("redis {name} link to {addr}: {why}");
        }
        self.stats.link_failures += 1;
        self.stats.unconfirmed += unconfirmed;
        if role == Role::Subscriber {
            // Nothing is subscribed any more: messages held for a confirmation go out now, to
            // the local subscribers and (if it is up) through the publisher link to others.
            let held: Vec<(Arc<str>, Vec<Held>)> = self
                .channels
                .iter_mut()
                .map(|(topic, channel)| {
                    channel.active = false;
                    channel.in_flight = 0;
                    let held = std::mem::take(&mut channel.held);
                    self.held_bytes -= held.iter().map(|h| h.envelope.len()).sum::<usize>();
                    (topic.clone(), held)
                })
                .collect();
            self.channels.retain(|_, channel| channel.interest);
            for (topic, held) in held {
                for message in held {
                    self.send_publish(&topic, &message.envelope);
                    if let Some(envelope) = open_envelope(&message.envelope) {
                        deliver(Delivery {
                            topic: &topic,
                            kind: envelope.kind,
                            payload: envelope.payload,
                            except: envelope.except,
                        });
                    }
                }
            }
        }
    }

    /// A link's TCP connection completed: queue the handshake (and the subscriptions).
    fn connected(&mut self, role: Role, now: Instant) {
        let (username, password, db) = (
            self.config.username.clone(),
            self.config.password.clone(),
            self.config.db,
        );
        let link = self.link(role);
        if let Some(stream) = &link.stream {
            let _ = stream.set_nodelay(true);
        }
        link.state = State::Up;
        link.last_heard = now;
        link.handshake_replies = 0;
        match (username.as_deref(), password.as_deref()) {
            (Some(user), Some(password)) => {
                link.command(&[b"AUTH", user.as_bytes(), password.as_bytes()])
            }
            (None, Some(password)) => link.command(&[b"AUTH", password.as_bytes()]),
            _ => {}
        }
        link.handshake_replies += usize::from(password.is_some());
        if db != 0 {
            link.command(&[b"SELECT", db.to_string().as_bytes()]);
            link.handshake_replies += 1;
        }
        // A PING whose reply says the handshake went through (it resets the backoff).
        link.command(&[b"PING"]);
        link.handshake_replies += 1;
        self.stats.connects += 1;
        if role == Role::Publisher {
            self.counts_at = now; // tell the others every count at once
        }
        if role == Role::Subscriber {
            let counts = self.channel_name(COUNTS);
            self.subscriber.command(&[b"SUBSCRIBE", &counts]);
            let topics: Vec<Arc<str>> = self
                .channels
                .iter()
                .filter(|(_, c)| c.interest)
                .map(|(t, _)| t.clone())
                .collect();
            for topic in topics {
                self.send_subscribe(&topic, true);
            }
        }
    }

    /// Queues SUBSCRIBE (or UNSUBSCRIBE) for `topic` on the subscriber link.
    fn send_subscribe(&mut self, topic: &Arc<str>, subscribe: bool) {
        let name = self.channel_name(topic);
        let verb: &[u8] = if subscribe {
            b"SUBSCRIBE"
        } else {
            b"UNSUBSCRIBE"
        };
        self.subscriber.command(&[verb, &name]);
        if let Some(channel) = self.channels.get_mut(topic) {
            channel.in_flight += 1;
            channel.active = false;
        }
    }

    /// Queues PUBLISH on the publisher link, if it is up and has room. Returns whether it did.
    fn send_publish(&mut self, topic: &str, envelope: &[u8]) -> bool {
        let sent = self.command_publish(topic, envelope);
        self.stats.published += u64::from(sent);
        sent
    }

    /// Queues PUBLISH on the publisher link, if it is up and has room.
    fn command_publish(&mut self, topic: &str, payload: &[u8]) -> bool {
        if !self.publisher.is_up() {
            return false;
        }
        if self.publisher.queued() + payload.len() > self.config.max_output {
            return false;
        }
        let name = self.channel_name(topic);
        self.publisher.command(&[b"PUBLISH", &name, payload]);
        self.publisher.publish_replies += 1;
        true
    }

    /// Takes the topic table's changes of interest: subscribes to a topic's channel when it
    /// gets its first local subscriber, unsubscribes after the last.
    pub fn sync(&mut self, topics: &mut Topics) {
        for change in topics.take_changes() {
            match change {
                Interest::Added(topic) => {
                    let channel = self.channels.entry(topic.clone()).or_insert(Channel {
                        interest: true,
                        in_flight: 0,
                        active: false,
                        held: Vec::new(),
                    });
                    channel.interest = true;
                    if self.subscriber.is_up() {
                        self.send_subscribe(&topic, true);
                    }
                }
                Interest::Removed(topic) => {
                    let Some(channel) = self.channels.get_mut(&topic) else {
                        continue;
                    };
                    channel.interest = false;
                    // Held messages were for the other processes too: publish them now.
                    let held = std::mem::take(&mut channel.held);
                    self.held_bytes -= held.iter().map(|h| h.envelope.len()).sum::<usize>();
                    for message in held {
                        if !self.send_publish(&topic, &message.envelope) {
                            self.stats.dropped += 1;
                        }
                    }
                    if self.subscriber.is_up() {
                        self.send_subscribe(&topic, false);
                    } else {
                        self.channels.remove(&topic);
                    }
                }
            }
        }
    }

    /// Routes a message published to `topic` (with `local_subscribers` on this process).
    pub fn publish(
        &mut self,
        topic: &str,
        kind: MessageKind,
        payload: &[u8],
        except: Option<PeerId>,
        local_subscribers: bool,
    ) -> Routed {
        let envelope = envelope(kind, self.origin, except, payload);
        let publisher_up = self.publisher.is_up();
        let confirmed = match self.channels.get(topic) {
            Some(channel) if channel.interest => Some(channel.active),
            _ => None,
        };
        match confirmed {
            // Redis will bring it back to this process with everyone else's, in its order.
            Some(true) if publisher_up => {
                if self.send_publish(topic, &envelope) {
                    Routed::Broker
                } else {
                    self.stats.dropped += 1;
                    Routed::Local
                }
            }
            // Subscribed, not yet confirmed: publishing now might not come back here.
            Some(false) if publisher_up && self.subscriber.is_up() => {
                let channel = self.channels.get_mut(topic).expect("found above");
                if channel.held.len() < MAX_HELD
                    && self.held_bytes + envelope.len() <= self.config.max_output
                {
                    self.held_bytes += envelope.len();
                    channel.held.push(Held { envelope });
                    Routed::Broker
                } else {
                    self.stats.dropped += 1;
                    Routed::Local
                }
            }
            // No local subscriber: only the other processes may want it.
            None => {
                if !self.send_publish(topic, &envelope) {
                    if publisher_up {
                        self.stats.dropped += 1;
                    } else {
                        self.stats.local_only += 1;
                    }
                }
                Routed::Local
            }
            // Local subscribers, but Redis cannot bring it back: deliver here, and to the others
            // if the publisher link is up.
            Some(_) => {
                if !self.send_publish(topic, &envelope) {
                    if publisher_up {
                        self.stats.dropped += 1;
                    } else if local_subscribers {
                        self.stats.local_only += 1;
                    }
                }
                Routed::Local
            }
        }
    }

    /// Handles readiness of a link's socket: completes a connection, reads and decodes what
    /// came (delivering messages through `deliver`), writes what is queued.
    pub fn ready(&mut self, token: Token, now: Instant, deliver: &mut dyn FnMut(Delivery<'_>)) {
        self.now = now;
        let role = if token == SUBSCRIBER {
            Role::Subscriber
        } else {
            Role::Publisher
        };
        if let State::Connecting { .. } = self.link(role).state {
            let Some(stream) = &self.link(role).stream else {
                return;
            };
            match stream.take_error() {
                Ok(Some(e)) | Err(e) => {
                    return self.fail(role, &format!("connect: {e}"), now, deliver);
                }
                Ok(None) => {}
            }
            match stream.peer_addr() {
                Ok(_) => self.connected(role, now),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => return self.fail(role, &format!("connect: {e}"), now, deliver),
            }
        }
        if let Err(why) = self.read(role, now, deliver) {
            return self.fail(role, &why, now, deliver);
        }
        self.flush_link(role, now, deliver);
    }

    /// Reads from a link (up to the budget) and handles every complete reply.
    fn read(
        &mut self,
        role: Role,
        now: Instant,
        deliver: &mut dyn FnMut(Delivery<'_>),
    ) -> Result<(), String> {
        let max_input = self.config.max_input;
        let mut budget = READ_BUDGET;
        loop {
            let link = self.link(role);
            let Some(stream) = link.stream.as_mut() else {
                return Ok(());
            };
            let start = link.input.len();
            link.input.resize(start + 64 * 1024, 0);
            let result = stream.read(&mut link.input[start..]);
            let n = match result {
                Ok(0) => {
                    link.input.truncate(start);
                    return Err("Redis closed the connection".to_owned());
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    link.input.truncate(start);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    link.input.truncate(start);
                    continue;
                }
                Err(e) => {
                    link.input.truncate(start);
                    return Err(format!("read: {e}"));
                }
            };
            link.input.truncate(start + n);
            link.last_heard = now;
            link.ping_sent = None;
            self.decode(role, deliver)?;
            if self.link(role).input.len() > max_input {
                return Err(format!("a reply longer than {max_input} bytes"));
            }
            budget = budget.saturating_sub(n);
            if budget == 0 {
                // More next turn: the readiness edge is consumed, so come back by deadline.
                self.link(role).more = true;
                return Ok(());
            }
        }
    }

    /// Handles every complete reply in a link's input.
    fn decode(&mut self, role: Role, deliver: &mut dyn FnMut(Delivery<'_>)) -> Result<(), String> {
        let mut input = std::mem::take(&mut self.link(role).input);
        let mut pos = 0;
        let result = loop {
            let frame = match decode_range(&input[pos..]) {
                Ok(Some((frame, used))) => {
                    let at = pos;
                    pos += used;
                    (frame, at)
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(format!("RESP: {e:?}")),
            };
            if let Err(why) = self.reply(role, &input[frame.1..pos], &frame.0, deliver) {
                break Err(why);
            }
        };
        input.drain(..pos);
        if input.is_empty() && input.capacity() > SHRINK_ABOVE {
            input = Vec::new(); // a large message passed: do not keep its buffer
        }
        self.link(role).input = input;
        result
    }

    /// Handles one reply (its ranges are into `bytes`).
    fn reply(
        &mut self,
        role: Role,
        bytes: &[u8],
        frame: &RangeFrame,
        deliver: &mut dyn FnMut(Delivery<'_>),
    ) -> Result<(), String> {
        let link = self.link(role);
        if link.handshake_replies > 0 {
            link.handshake_replies -= 1;
            if let RangeFrame::Error(range) = frame {
                return Err(format!(
                    "handshake refused: {}",
                    String::from_utf8_lossy(slice(bytes, range))
                ));
            }
            if link.handshake_replies == 0 {
                link.backoff = RECONNECT_MIN;
                link.ever_up = true;
                if link.logged_down {
                    link.logged_down = false;
                    log::info!("redis {} link to {} is up", link.name(), self.config.addr);
                } else {
                    log::debug!("redis {} link to {} is up", link.name(), self.config.addr);
                }
            }
            return Ok(());
        }
        match (role, frame) {
            (_, RangeFrame::SimpleString(range))
                if slice(bytes, range).eq_ignore_ascii_case(b"PONG") => {}
            (Role::Publisher, RangeFrame::Integer(_)) => {
                self.publisher.publish_replies = self.publisher.publish_replies.saturating_sub(1);
            }
            (Role::Publisher, RangeFrame::Error(range)) => {
                self.publisher.publish_replies = self.publisher.publish_replies.saturating_sub(1);
                self.stats.errors += 1;
                log::debug!(
                    "redis: PUBLISH refused: {}",
                    String::from_utf8_lossy(slice(bytes, range))
                );
            }
            (Role::Subscriber, RangeFrame::Array(parts)) => self.push(bytes, parts, deliver),
            (_, other) => {
                self.stats.errors += 1;
                log::debug!(
                    "redis {} link: unexpected reply {other:?}",
                    self.link(role).name()
                );
            }
        }
        Ok(())
    }

    /// Handles a message of the subscriber link: a confirmation or a published message.
    fn push(&mut self, bytes: &[u8], parts: &[RangeFrame], deliver: &mut dyn FnMut(Delivery<'_>)) {
        let bulk = |i: usize| match parts.get(i) {
            Some(RangeFrame::BulkString(range)) => Some(slice(bytes, range)),
            _ => None,
        };
        let (Some(kind), Some(channel)) = (bulk(0), bulk(1)) else {
            self.stats.errors += 1;
            return;
        };
        let topic = channel
            .strip_prefix(self.config.prefix.as_bytes())
            .and_then(|t| std::str::from_utf8(t).ok());
        match (kind, topic) {
            (b"message", Some(COUNTS)) => {
                if !bulk(2).is_some_and(|payload| self.on_counts(payload)) {
                    self.stats.errors += 1;
                }
            }
            (b"message", Some(topic)) => {
                let Some(envelope) = bulk(2).and_then(open_envelope) else {
                    self.stats.errors += 1;
                    return;
                };
                self.stats.received += 1;
                deliver(Delivery {
                    topic,
                    kind: envelope.kind,
                    payload: envelope.payload,
                    // Only this process's connections are its to leave out.
                    except: envelope.except.filter(|_| envelope.origin == self.origin),
                });
            }
            (b"subscribe" | b"unsubscribe", Some(topic)) => {
                let subscribed = kind == b"subscribe";
                let mut release = Vec::new();
                if let Some(channel) = self.channels.get_mut(topic) {
                    channel.in_flight = channel.in_flight.saturating_sub(1);
                    if channel.in_flight == 0 {
                        if channel.interest && subscribed {
                            channel.active = true;
                            release = std::mem::take(&mut channel.held);
                            self.held_bytes -=
                                release.iter().map(|h| h.envelope.len()).sum::<usize>();
                        } else if !channel.interest {
                            self.channels.remove(topic);
                        }
                    }
                }
                for message in release {
                    if !self.send_publish(topic, &message.envelope) {
                        self.stats.dropped += 1;
                        if let Some(envelope) = open_envelope(&message.envelope) {
                            deliver(Delivery {
                                topic,
                                kind: envelope.kind,
                                payload: envelope.payload,
                                except: envelope.except,
                            });
                        }
                    }
                }
            }
            (b"pong", _) => {}
            _ => {
                self.stats.errors += 1;
                log::debug!(
                    "redis subscriber link: unexpected message {:?}",
                    String::from_utf8_lossy(kind)
                );
            }
        }
    }

    /// Writes what a link has queued; keeps its WRITABLE interest in step.
    fn flush_link(&mut self, role: Role, now: Instant, deliver: &mut dyn FnMut(Delivery<'_>)) {
        let (link, registry) = match role {
            Role::Subscriber => (&mut self.subscriber, &self.registry),
            Role::Publisher => (&mut self.publisher, &self.registry),
        };
        if link.state != State::Up {
            return;
        }
        let Some(stream) = link.stream.as_mut() else {
            return;
        };
        while link.written < link.output.len() {
            match stream.write(&link.output[link.written..]) {
                Ok(0) => break,
                Ok(n) => link.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.fail(role, &format!("write: {e}"), now, deliver),
            }
        }
        if link.written == link.output.len() {
            link.output.clear();
            link.written = 0;
            if link.output.capacity() > SHRINK_ABOVE {
                link.output = Vec::new(); // a burst passed: do not keep its buffer
            }
        } else if link.written > link.output.len() / 2 {
            link.output.drain(..link.written);
            link.written = 0;
        }
        let want = link.written < link.output.len();
        if want != link.write_interest {
            let interest = if want {
                Readiness::READABLE | Readiness::WRITABLE
            } else {
                Readiness::READABLE
            };
            let token = link.token;
            if let Some(stream) = link.stream.as_mut()
                && let Err(e) = registry.reregister(stream, token, interest)
            {
                return self.fail(role, &format!("reregister: {e}"), now, deliver);
            }
            link.write_interest = want;
        }
    }

    /// Writes both links' output (at the end of a turn).
    pub fn flush(&mut self, now: Instant, deliver: &mut dyn FnMut(Delivery<'_>)) {
        self.flush_link(Role::Subscriber, now, deliver);
        self.flush_link(Role::Publisher, now, deliver);
    }

    /// The next time a link needs attention, or counts are due.
    pub fn deadline(&self) -> Option<Instant> {
        let due = if self.local_changed.is_empty() {
            self.counts_at
        } else {
            self.now // changes to tell: at once
        };
        let counts = self.publisher.is_up().then_some(due);
        let expiry = self
            .remote
            .values()
            .map(|remote| remote.last_heard + COUNTS_EXPIRY)
            .min();
        [
            self.subscriber.deadline(),
            self.publisher.deadline(),
            counts,
            expiry,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// How many subscribers `topic` has in the other processes (as last heard).
    pub fn remote_count(&self, topic: &str) -> usize {
        self.remote
            .values()
            .filter_map(|remote| remote.counts.get(topic))
            .map(|&n| n as usize)
            .sum()
    }

    /// Notes topics whose local count changed: the others are told at the end of the turn.
    pub fn local_counts_changed(&mut self, topics: &[Arc<str>]) {
        self.local_changed.extend(topics.iter().cloned());
    }

    /// The topics whose count in another process changed since the last call.
    pub fn take_remote_changed(&mut self) -> Vec<String> {
        self.remote_changed.drain().collect()
    }

    /// Tells the others the counts that changed, or every count when that is due; forgets the
    /// processes not heard of for [`COUNTS_EXPIRY`].
    pub fn publish_counts(&mut self, topics: &Topics, now: Instant) {
        self.now = now;
        let gone: Vec<u64> = self
            .remote
            .iter()
            .filter(|(_, remote)| remote.last_heard + COUNTS_EXPIRY <= now)
            .map(|(&origin, _)| origin)
            .collect();
        for origin in gone {
            if let Some(remote) = self.remote.remove(&origin) {
                log::debug!(
                    "redis: no counts from process {origin:x} for {COUNTS_EXPIRY:?}: forgotten"
                );
                self.remote_changed.extend(remote.counts.into_keys());
            }
        }
        if !self.publisher.is_up() {
            return;
        }
        let full = self.counts_at <= now;
        if !full && self.local_changed.is_empty() {
            return;
        }
        let mut payload = Vec::with_capacity(64);
        payload.push(b'C');
        payload.extend_from_slice(&self.origin.to_be_bytes());
        payload.push(u8::from(full));
        let mut add = |topic: &str, count: usize| {
            payload.push(topic.len() as u8); // at most MAX_TOPIC_LEN (128)
            payload.extend_from_slice(topic.as_bytes());
            payload.extend_from_slice(&(count.min(u32::MAX as usize) as u32).to_be_bytes());
        };
        if full {
            for topic in topics.names() {
                add(topic, topics.count(topic));
            }
            self.counts_at = now + COUNTS_PERIOD;
        } else {
            for topic in &self.local_changed {
                add(topic, topics.count(topic));
            }
        }
        self.local_changed.clear();
        // Nothing to say: no topics here, and the others forget this process in time.
        if full && payload.len() == ENVELOPE_COUNTS_HEAD && self.remote.is_empty() {
            return;
        }
        self.command_publish(COUNTS, &payload);
    }

    /// Takes another process's counts. Returns whether they were understood.
    fn on_counts(&mut self, payload: &[u8]) -> bool {
        if payload.len() < ENVELOPE_COUNTS_HEAD || payload[0] != b'C' {
            return false;
        }
        let origin = u64::from_be_bytes(payload[1..9].try_into().expect("8 bytes"));
        if origin == self.origin {
            return true;
        }
        let full = payload[9] == 1;
        let mut entries = Vec::new();
        let mut rest = &payload[ENVELOPE_COUNTS_HEAD..];
        while let Some((&len, after)) = rest.split_first() {
            let len = usize::from(len);
            if after.len() < len + 4 {
                return false;
            }
            let Ok(topic) = std::str::from_utf8(&after[..len]) else {
                return false;
            };
            let count = u32::from_be_bytes(after[len..len + 4].try_into().expect("4 bytes"));
            entries.push((topic.to_owned(), count));
            rest = &after[len + 4..];
        }
        let remote = self.remote.entry(origin).or_insert_with(|| Remote {
            last_heard: self.now,
            counts: HashMap::new(),
        });
        remote.last_heard = self.now;
        if full {
            let old = std::mem::take(&mut remote.counts);
            for (topic, count) in &old {
                if !entries.iter().any(|(t, c)| t == topic && c == count) {
                    self.remote_changed.insert(topic.clone());
                }
            }
            for (topic, count) in entries {
                if old.get(&topic) != Some(&count) {
                    self.remote_changed.insert(topic.clone());
                }
                if count > 0 {
                    remote.counts.insert(topic, count);
                }
            }
        } else {
            for (topic, count) in entries {
                let before = if count > 0 {
                    remote.counts.insert(topic.clone(), count)
                } else {
                    remote.counts.remove(&topic)
                };
                if before != Some(count) {
                    self.remote_changed.insert(topic);
                }
            }
        }
        true
    }

    /// Does what is due: reconnects, connection timeouts, pings and their timeouts.
    pub fn run_timers(&mut self, now: Instant, deliver: &mut dyn FnMut(Delivery<'_>)) {
        self.now = now;
        for role in [Role::Subscriber, Role::Publisher] {
            let link = self.link(role);
            if std::mem::take(&mut link.more)
                && link.is_up()
                && let Err(why) = self.read(role, now, deliver)
            {
                self.fail(role, &why, now, deliver);
                continue;
            }
            let link = self.link(role);
            match link.state {
                State::Down { retry_at } if retry_at <= now => self.connect(role, now),
                State::Connecting { since } if since + CONNECT_TIMEOUT <= now => {
                    self.fail(role, "connect: timed out", now, deliver)
                }
                State::Up => match link.ping_sent {
                    Some(sent) if sent + PING_TIMEOUT <= now => {
                        self.fail(role, "no answer to PING", now, deliver)
                    }
                    None if link.last_heard + PING_AFTER <= now => {
                        link.command(&[b"PING"]);
                        link.ping_sent = Some(now);
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }

    /// How many messages wait for `topic`'s subscription to be confirmed.
    #[cfg(test)]
    fn held(&self, topic: &str) -> usize {
        self.channels.get(topic).map_or(0, |c| c.held.len())
    }
}

/// The broker's families for the exposition and the shutdown log: name (without the prefix),
/// help, whether it is a gauge, value.
pub(crate) fn families(stats: &RedisStats) -> [(&'static str, &'static str, bool, u64); 12] {
    [
        (
            "redis_subscriber_up",
            "Whether the Redis subscriber link is up (1) or not (0).",
            true,
            stats.subscriber_up,
        ),
        (
            "redis_publisher_up",
            "Whether the Redis publisher link is up (1) or not (0).",
            true,
            stats.publisher_up,
        ),
        (
            "redis_connects_total",
            "Connections made to Redis (both links).",
            false,
            stats.connects,
        ),
        (
            "redis_link_failures_total",
            "Redis links lost, or connection attempts that failed.",
            false,
            stats.link_failures,
        ),
        (
            "redis_published_total",
            "Messages sent to Redis (PUBLISH).",
            false,
            stats.published,
        ),
        (
            "redis_received_total",
            "Messages received from Redis and delivered to local subscribers.",
            false,
            stats.received,
        ),
        (
            "redis_local_only_total",
            "Messages delivered only locally because the Redis publisher link was down.",
            false,
            stats.local_only,
        ),
        (
            "redis_dropped_total",
            "Messages not sent to Redis because its output was full; delivered locally.",
            false,
            stats.dropped,
        ),
        (
            "redis_unconfirmed_total",
            "PUBLISH commands (messages, counts) unanswered when the publisher link failed.",
            false,
            stats.unconfirmed,
        ),
        (
            "redis_errors_total",
            "Replies or messages from Redis that were errors or not understood.",
            false,
            stats.errors,
        ),
        (
            "redis_channels",
            "Redis channels subscribed to now.",
            true,
            stats.channels,
        ),
        (
            "redis_queued_bytes",
            "Bytes queued for Redis now.",
            true,
            stats.queued_bytes,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_redis_urls() {
        let config = RedisConfig::from_url("redis://127.0.0.1").unwrap();
        assert_eq!(config.addr, "127.0.0.1:6379".parse().unwrap());
        assert_eq!(
            (config.username, config.password, config.db),
            (None, None, 0)
        );
        assert_eq!(config.prefix, "rfc6455:");
        let config = RedisConfig::from_url("redis://user:p%40ss@localhost:7000/3").unwrap();
        assert_eq!(config.addr, "127.0.0.1:7000".parse().unwrap());
        assert_eq!(config.username.as_deref(), Some("user"));
        assert_eq!(config.password.as_deref(), Some("p@ss"));
        assert_eq!(config.db, 3);
        let config = RedisConfig::from_url("redis://:secret@[::1]:7001/").unwrap();
        assert_eq!(config.addr, "[::1]:7001".parse().unwrap());
        assert_eq!(
            (config.username, config.password.as_deref()),
            (None, Some("secret"))
        );
        for bad in [
            "http://127.0.0.1",
            "redis://",
            "redis://127.0.0.1:port",
            "redis://127.0.0.1/db",
            "redis://:%zz@127.0.0.1",
        ] {
            assert!(RedisConfig::from_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_envelope_carries_the_type_origin_and_the_connection_left_out() {
        let except = PeerId {
            key: 7,
            generation: 9,
        };
        let bytes = envelope(MessageKind::Binary, 42, Some(except), b"\x00hi");
        assert_eq!(
            open_envelope(&bytes),
            Some(Envelope {
                kind: MessageKind::Binary,
                origin: 42,
                except: Some(except),
                payload: b"\x00hi"
            })
        );
        let bytes = envelope(MessageKind::Text, 1, None, b"");
        let opened = open_envelope(&bytes).unwrap();
        assert_eq!(
            (opened.kind, opened.origin, opened.except, opened.payload),
            (MessageKind::Text, 1, None, &b""[..])
        );
        assert_eq!(open_envelope(&bytes[..ENVELOPE_LEN - 1]), None);
        assert_eq!(open_envelope(b"X23456789012345678901"), None);
    }

    #[test]
    fn commands_are_resp_arrays_of_bulk_strings() {
        let mut link = Link::new(Role::Publisher, PUBLISHER, Instant::now());
        link.command(&[b"PUBLISH", b"rfc6455:/a", b"\r\n"]);
        assert_eq!(
            link.output,
            b"*3\r\n$7\r\nPUBLISH\r\n$10\r\nrfc6455:/a\r\n$2\r\n\r\n\r\n"
        );
    }

    fn broker() -> Broker {
        // Port 9 (discard) on loopback: nothing listens there, so both links fail to connect
        // and stay down; what is tested here does not need Redis.
        let config = RedisConfig {
            addr: "127.0.0.1:9".parse().unwrap(),
            ..RedisConfig::from_url("redis://127.0.0.1").unwrap()
        };
        let poll = mio::Poll::new().unwrap();
        Broker::new(config, poll.registry().try_clone().unwrap(), Instant::now())
    }

    #[test]
    fn while_redis_is_down_messages_are_delivered_locally_and_counted() {
        let mut broker = broker();
        let mut topics = Topics::default();
        topics.track_interest();
        topics
            .subscribe(
                PeerId {
                    key: 1,
                    generation: 0,
                },
                "/a",
                4,
            )
            .unwrap();
        broker.sync(&mut topics);
        assert_eq!(
            broker.publish("/a", MessageKind::Text, b"hi", None, true),
            Routed::Local
        );
        assert_eq!(
            broker.publish("/nobody", MessageKind::Text, b"hi", None, false),
            Routed::Local
        );
        let stats = broker.stats();
        assert_eq!(
            (stats.local_only, stats.published, stats.subscriber_up),
            (2, 0, 0)
        );
        assert_eq!(broker.held("/a"), 0);
    }

    #[test]
    fn messages_wait_for_a_subscription_within_bounds() {
        let mut broker = broker();
        broker.config.max_output = 1000;
        // Both links up, as far as the broker knows (their output is only queued here).
        broker.subscriber.state = State::Up;
        broker.publisher.state = State::Up;
        let mut topics = Topics::default();
        topics.track_interest();
        topics
            .subscribe(
                PeerId {
                    key: 1,
                    generation: 0,
                },
                "/a",
                4,
            )
            .unwrap();
        broker.sync(&mut topics);
        assert!(
            broker
                .subscriber
                .output
                .ends_with(b"$9\r\nSUBSCRIBE\r\n$10\r\nrfc6455:/a\r\n")
        );
        // Not confirmed yet: held, up to max_output bytes in all, then delivered here.
        let payload = [b'x'; 300 - ENVELOPE_LEN];
        for _ in 0..3 {
            assert_eq!(
                broker.publish("/a", MessageKind::Text, &payload, None, true),
                Routed::Broker
            );
        }
        assert_eq!(
            broker.publish("/a", MessageKind::Text, &payload, None, true),
            Routed::Local
        );
        assert_eq!((broker.held("/a"), broker.held_bytes), (3, 900));
        assert_eq!(broker.stats().dropped, 1);
        // The confirmation releases them to Redis, in order.
        let mut confirmation = Vec::new();
        let frames = [
            BorrowedFrame::BulkString(b"subscribe"),
            BorrowedFrame::BulkString(b"rfc6455:/a"),
            BorrowedFrame::Integer(1),
        ];
        let frame = BorrowedFrame::Array(&frames);
        confirmation.resize(frame.encode_len(false), 0);
        encode_borrowed(&mut confirmation, &frame, false).unwrap();
        broker.subscriber.input = confirmation;
        broker
            .decode(Role::Subscriber, &mut |_| panic!("nothing to deliver"))
            .unwrap();
        assert_eq!((broker.held("/a"), broker.held_bytes), (0, 0));
        assert_eq!(broker.stats().published, 3);
        broker.publisher.output.clear(); // as if written
        assert_eq!(
            broker.publish("/a", MessageKind::Text, b"now", None, true),
            Routed::Broker,
            "confirmed: straight to Redis"
        );
    }

    #[test]
    fn a_dead_redis_is_retried_with_a_capped_backoff() {
        let mut broker = broker();
        let mut now = Instant::now();
        let mut waits = Vec::new();
        for _ in 0..12 {
            // Fail the attempt at once, as a refused connection does.
            broker.fail(Role::Publisher, "refused", now, &mut |_| {});
            let State::Down { retry_at } = broker.publisher.state else {
                panic!("down after a failure");
            };
            waits.push(retry_at - now);
            now = retry_at;
        }
        assert!(
            waits[0] >= RECONNECT_MIN.mul_f64(0.8) && waits[0] <= RECONNECT_MIN.mul_f64(1.2),
            "{waits:?}"
        );
        assert!(
            waits.iter().all(|w| *w <= RECONNECT_MAX.mul_f64(1.2)),
            "{waits:?}"
        );
        assert!(waits[11] >= RECONNECT_MAX.mul_f64(0.8), "{waits:?}");
    }

    /// A RESP array, as Redis sends a reply or a message.
    fn resp(frames: &[BorrowedFrame<'_>]) -> Vec<u8> {
        let frame = BorrowedFrame::Array(frames);
        let mut bytes = vec![0; frame.encode_len(false)];
        encode_borrowed(&mut bytes, &frame, false).unwrap();
        bytes
    }

    /// A broker whose links are up as far as it knows, subscribing to `/a` for a local
    /// subscriber.
    fn subscribing_to_a() -> Broker {
        let mut broker = broker();
        broker.subscriber.state = State::Up;
        broker.publisher.state = State::Up;
        let mut topics = Topics::default();
        topics.track_interest();
        let peer = PeerId {
            key: 1,
            generation: 0,
        };
        topics.subscribe(peer, "/a", 4).unwrap();
        broker.sync(&mut topics);
        broker
    }

    #[test]
    fn replies_are_read_from_the_socket_in_whatever_pieces_they_come() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        stream.set_nonblocking(true).unwrap();
        let (mut redis, _) = listener.accept().unwrap();
        let mut broker = subscribing_to_a();
        broker.subscriber.stream = Some(TcpStream::from_std(stream));
        assert_eq!(
            broker.publish("/a", MessageKind::Text, b"held", None, true),
            Routed::Broker
        );
        let mut delivered = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut read = |broker: &mut Broker| {
            assert!(Instant::now() < deadline, "what Redis sent was not read");
            std::thread::sleep(Duration::from_millis(1));
            broker.read(Role::Subscriber, Instant::now(), &mut |delivery| {
                delivered.push(delivery.payload.to_vec());
            })
        };
        // The confirmation in two pieces: the first is kept until the rest comes.
        let confirmation = resp(&[
            BorrowedFrame::BulkString(b"subscribe"),
            BorrowedFrame::BulkString(b"rfc6455:/a"),
            BorrowedFrame::Integer(1),
        ]);
        redis.write_all(&confirmation[..10]).unwrap();
        while broker.subscriber.input.len() < 10 {
            read(&mut broker).unwrap();
        }
        assert_eq!(broker.held("/a"), 1, "not confirmed by a part of the reply");
        redis.write_all(&confirmation[10..]).unwrap();
        while broker.held("/a") > 0 {
            read(&mut broker).unwrap();
        }
        assert_eq!(broker.subscriber.input, b"");
        assert_eq!(broker.stats().published, 1, "released to Redis");
        // A message on the channel, from another process, is delivered here.
        let envelope = envelope(MessageKind::Text, broker.origin + 1, None, b"from afar");
        redis
            .write_all(&resp(&[
                BorrowedFrame::BulkString(b"message"),
                BorrowedFrame::BulkString(b"rfc6455:/a"),
                BorrowedFrame::BulkString(&envelope),
            ]))
            .unwrap();
        while broker.stats().received == 0 {
            read(&mut broker).unwrap();
        }
        // Redis going away fails the link.
        drop(redis);
        let why = loop {
            if let Err(why) = read(&mut broker) {
                break why;
            }
        };
        assert_eq!(why, "Redis closed the connection");
        assert_eq!(delivered, [b"from afar"]);
    }

    #[test]
    fn a_held_message_the_publisher_cannot_take_is_delivered_here_and_counted() {
        let mut broker = subscribing_to_a();
        broker.config.max_output = 1000;
        for payload in [&b"one"[..], b"two"] {
            assert_eq!(
                broker.publish("/a", MessageKind::Text, payload, None, true),
                Routed::Broker
            );
        }
        assert_eq!(broker.held("/a"), 2);
        // By the time the subscription is confirmed, the publisher has no room left.
        broker.config.max_output = 0;
        broker.subscriber.input = resp(&[
            BorrowedFrame::BulkString(b"subscribe"),
            BorrowedFrame::BulkString(b"rfc6455:/a"),
            BorrowedFrame::Integer(1),
        ]);
        let mut delivered = Vec::new();
        broker
            .decode(Role::Subscriber, &mut |delivery| {
                delivered.push((delivery.topic.to_owned(), delivery.payload.to_vec()));
            })
            .unwrap();
        assert_eq!(
            delivered,
            [
                ("/a".to_owned(), b"one".to_vec()),
                ("/a".to_owned(), b"two".to_vec())
            ]
        );
        let stats = broker.stats();
        assert_eq!((stats.dropped, stats.published), (2, 0));
        assert_eq!((broker.held("/a"), broker.held_bytes), (0, 0));
    }

    #[test]
    fn counts_from_another_process_are_taken_and_a_cut_payload_is_refused() {
        let mut here = broker();
        here.publisher.state = State::Up;
        let mut topics = Topics::default();
        for key in 1..=2 {
            let peer = PeerId { key, generation: 0 };
            topics.subscribe(peer, "/a", 4).unwrap();
        }
        here.publish_counts(&topics, Instant::now());
        // The payload of the PUBLISH on the counts channel.
        let output = std::mem::take(&mut here.publisher.output);
        let Ok(Some((RangeFrame::Array(parts), _))) = decode_range(&output) else {
            panic!("a PUBLISH: {output:?}");
        };
        let Some(RangeFrame::BulkString(range)) = parts.get(2) else {
            panic!("a payload: {parts:?}");
        };
        let payload = slice(&output, range).to_vec();
        let mut there = broker();
        assert!(there.on_counts(&payload));
        assert_eq!(there.remote_count("/a"), 2);
        assert_eq!(there.take_remote_changed(), ["/a"]);
        assert!(here.on_counts(&payload), "its own counts are understood");
        assert_eq!(here.remote_count("/a"), 0, "and not counted as another's");
        for cut in [0, 1, ENVELOPE_COUNTS_HEAD - 1, payload.len() - 1] {
            assert!(!there.on_counts(&payload[..cut]), "cut at {cut}");
        }
        assert_eq!(there.remote_count("/a"), 2);
    }

    #[test]
    fn the_gauges_are_as_of_now() {
        let mut broker = subscribing_to_a();
        let subscribe = b"*2\r\n$9\r\nSUBSCRIBE\r\n$10\r\nrfc6455:/a\r\n".len() as u64;
        let stats = broker.stats();
        assert_eq!(
            (stats.subscriber_up, stats.publisher_up, stats.channels),
            (1, 1, 0),
            "not subscribed until Redis says so"
        );
        assert_eq!(stats.queued_bytes, subscribe);
        broker.subscriber.input = resp(&[
            BorrowedFrame::BulkString(b"subscribe"),
            BorrowedFrame::BulkString(b"rfc6455:/a"),
            BorrowedFrame::Integer(1),
        ]);
        broker.decode(Role::Subscriber, &mut |_| {}).unwrap();
        broker.subscriber.written = broker.subscriber.output.len(); // as if written
        broker.publisher.state = State::Down {
            retry_at: Instant::now(),
        };
        let stats = broker.stats();
        assert_eq!(
            (stats.subscriber_up, stats.publisher_up, stats.channels),
            (1, 0, 1)
        );
        assert_eq!(stats.queued_bytes, 0);
    }
}
