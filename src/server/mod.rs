//! The IO shell: a single-threaded mio server around [`ServerConnection`](crate::ServerConnection),
//! which also opens connections of its own ([`Context::connect`]), each around a
//! [`ClientConnection`](crate::ClientConnection).
//!
//! It moves bytes and applies memory policy; every protocol decision is the core's.
//!
//! | file | owns |
//! |---|---|
//! | `config.rs` | [`Config`]: where to listen, connection cap, output high/low water, shutdown |
//! | `stats.rs` | [`Stats`]: the counters, written for `/metrics` and as `name value` lines |
//! | `timers.rs` | the deadline heap (one live entry per connection) |
//! | `descriptors.rs` | the open-file limit, the connection cap under it, the spare descriptor |
//! | `listen.rs` | the listening socket, with `SO_REUSEPORT` when asked |
//! | `peer.rs` | one socket: its connection, its unconsumed input, its TLS session, reads and writes |
//! | `conn.rs` | a peer's connection in its role: an accepted client's `ServerConnection`, or (boxed) the `ClientConnection` of one the application opened |
//! | `outbound.rs` | connections the application opens: [`ConnectOptions`], [`ConnectError`], the URL's address (no DNS on the loop), the request until it opens |
//! | `tls.rs` | [`TlsConfig`] (feature `tls`) and one client's TLS session: records in, plaintext out, and back |
//! | `peers.rs` | the `Slab` of peers and the output policy: send, broadcast, backpressure, flush |
//! | `topics.rs` | the topic (room) table: subscriptions, topic name rules |
//! | `redis.rs` | the Redis Pub/Sub broker (feature `redis`): two links on the loop, interest, faults |
//! | `handler.rs` | [`Handler`] (what the application implements) and [`Context`] (what it calls) |
//! | `ops.rs` | the operators' routes: `GET /metrics` and `GET /healthz` |
//! | `handle.rs` | [`Handle`]: a `Send` handle for other threads, through mio's `Waker` |
//! | `event_loop.rs` | [`Server`]: the listeners (WebSocket, metrics), accepting, completing outbound connects, reading, the passes over peers |
//!
//! Dependencies run one way: `event_loop` → `peers` → `peer` → the core.

mod config;
mod conn;
mod descriptors;
mod event_loop;
mod handle;
mod handler;
mod listen;
mod ops;
mod outbound;
mod peer;
mod peers;
#[cfg(feature = "redis")]
mod redis;
mod stats;
mod timers;
#[cfg(feature = "tls")]
mod tls;
#[cfg(not(feature = "tls"))]
#[path = "no_tls.rs"]
mod tls;
mod topics;

pub use config::Config;
pub use descriptors::RESERVED_DESCRIPTORS;
pub use event_loop::{ACCEPT_PAUSE, READ_BUFFER_SIZE, Server};
pub use handle::{ANSWER_TIMEOUT, Handle, HandleError};
pub use handler::{Context, Handler, Opening, Upgrade};
pub use ops::{HEALTH_PATH, METRICS_PATH};
pub use outbound::{ConnectError, ConnectOptions};
pub use peers::PeerId;
#[cfg(feature = "redis")]
pub use redis::{
    CONNECT_TIMEOUT, COUNTS_EXPIRY, COUNTS_PERIOD, MAX_HELD, PING_AFTER, PING_TIMEOUT,
    RECONNECT_MAX, RECONNECT_MIN, RedisConfig, RedisStats,
};
pub use stats::{EXPOSITION_CONTENT_TYPE, Stats};
#[cfg(feature = "tls")]
pub use tls::{TLS_BUFFER_LIMIT, TlsConfig, TlsSetupError};
pub use topics::{MAX_TOPIC_LEN, TopicError, validate_topic};
