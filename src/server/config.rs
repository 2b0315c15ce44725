//! The server shell's settings: where to listen and the memory policy around each connection.
//! What each connection itself may do (limits, deadlines, policies) is the core's
//! [`ServerConfig`].

use crate::server_connection::ServerConfig;
use std::net::SocketAddr;
use std::time::Duration;

/// Server settings. Every limit is documented in the README's "Limits and defaults" table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// What every connection may do: protocol limits, deadlines, the handshake's policies.
    pub connection: ServerConfig,
    /// Most connections held at once; past it new connections get 503 and are closed.
    pub max_connections: usize,
    /// Bytes queued for one connection past which it is no longer read from until its queue
    /// drains below [`outbound_low_water`](Self::outbound_low_water) (backpressure).
    pub outbound_high_water: usize,
    /// Bytes queued below which reading from a paused connection resumes.
    pub outbound_low_water: usize,
    /// How long a connection's queue may stay over the high-water mark after the server tried to
    /// write to it before it is disconnected as a slow consumer (it reads nothing, or less than
    /// is sent to it). A burst that a reader drains within this time costs it nothing.
    pub slow_consumer_timeout: Duration,
    /// Bytes queued for one connection that it may never pass: one that would is disconnected
    /// at once, whatever the timeout, so that memory stays bounded however fast others send.
    pub max_outbound: usize,
    /// On shutdown, time to wait for every connection's closing handshake.
    pub shutdown_timeout: Duration,
    /// Commands (send, broadcast, close) that other threads may have waiting for the loop at
    /// once through a [`Handle`](super::Handle); past it, a command is refused.
    pub command_queue: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            connection: ServerConfig::default(),
            max_connections: 10_000,
            outbound_high_water: 16 * 1024 * 1024,
            outbound_low_water: 1024 * 1024,
            slow_consumer_timeout: Duration::from_secs(2),
            max_outbound: 64 * 1024 * 1024,
            shutdown_timeout: Duration::from_secs(5),
            command_queue: 1024,
        }
    }
}
