//! The server shell's settings: where to listen and the memory policy around each connection.
//! What each connection itself may do (limits, deadlines, policies) is the core's
//! [`ServerConfig`].

use crate::handshake::HostPolicy;
use crate::server_connection::ServerConfig;
use std::net::SocketAddr;
use std::time::Duration;

/// Server settings. Every limit is documented in the README's "Limits and defaults" table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// A second address, for operators: when set, `GET /metrics` and `GET /healthz` are served
    /// there (by the same loop, on the same thread) and no longer on [`addr`](Self::addr), so
    /// that they need not face the internet. That listener answers only those two routes: other
    /// paths get 404, and no WebSocket upgrade is accepted there. Its `Host` allow-list is
    /// [`host_policy`](Self::host_policy) for its own address.
    pub metrics_addr: Option<SocketAddr>,
    /// What every connection may do: protocol limits, deadlines, the handshake's policies. Its
    /// `hosts` policy is set by [`Server::bind`](super::Server::bind) from
    /// [`allowed_hosts`](Self::allowed_hosts).
    pub connection: ServerConfig,
    /// Host names (or addresses, optionally with `:port`) the server answers as, besides
    /// `localhost`, `127.0.0.1`, `[::1]` and the bound address with the bound port, which are
    /// always allowed. `*` allows any. A request with another `Host` gets 403 (DNS rebinding).
    pub allowed_hosts: Vec<String>,
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
    /// Bytes the server may hold for all its clients together: queued output (a broadcast frame
    /// counts once per recipient), unconsumed input, messages being assembled. Near it (nine
    /// tenths), new upgrades get 503; past it, the connections that hold the most are closed
    /// (1009 for one assembling a message, dropped for one that does not read its output)
    /// until the total is under it again.
    pub max_memory: usize,
    /// Commands (send, broadcast, close) that other threads may have waiting for the loop at
    /// once through a [`Handle`](super::Handle); past it, a command is refused.
    pub command_queue: usize,
    /// Topics one connection may be subscribed to at once (see
    /// [`Context::subscribe`](super::Context::subscribe)); with the topic name's length limit it
    /// bounds what clients can make the topic table hold.
    pub max_topics_per_connection: usize,
    /// Set `SO_REUSEPORT` on the listening socket, so that several processes can listen on the
    /// same address and port and the kernel spreads connections among them.
    pub reuse_port: bool,
    /// A Redis server through which topics span processes and machines (see
    /// [`RedisConfig`](super::RedisConfig)); `None`: topics are this process's alone.
    #[cfg(feature = "redis")]
    pub redis: Option<super::RedisConfig>,
    /// TLS on the WebSocket listener ([`addr`](Self::addr)): when set, that port serves
    /// `https://` and `wss://` only. The metrics listener stays plain.
    #[cfg(feature = "tls")]
    pub tls: Option<super::TlsConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            metrics_addr: None,
            connection: ServerConfig::default(),
            allowed_hosts: Vec::new(),
            max_connections: 10_000,
            outbound_high_water: 16 * 1024 * 1024,
            outbound_low_water: 1024 * 1024,
            slow_consumer_timeout: Duration::from_secs(2),
            max_outbound: 64 * 1024 * 1024,
            shutdown_timeout: Duration::from_secs(5),
            command_queue: 1024,
            max_memory: 1024 * 1024 * 1024,
            max_topics_per_connection: 64,
            reuse_port: false,
            #[cfg(feature = "redis")]
            redis: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl Config {
    /// Whether the WebSocket listener serves TLS.
    pub(crate) fn serves_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        return false;
    }

    /// The `Host` policy for a server listening on `local`: the loopback names and the bound
    /// address with its port, and [`allowed_hosts`](Self::allowed_hosts).
    pub fn host_policy(&self, local: SocketAddr) -> HostPolicy {
        if self.allowed_hosts.iter().any(|host| host == "*") {
            return HostPolicy::Any;
        }
        let port = local.port();
        let mut hosts = vec![
            format!("localhost:{port}"),
            format!("127.0.0.1:{port}"),
            format!("[::1]:{port}"),
        ];
        if !local.ip().is_unspecified() {
            hosts.push(local.to_string());
        }
        hosts.extend(self.allowed_hosts.iter().cloned());
        HostPolicy::AllowList(hosts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_loopback_the_bound_address_and_the_listed_hosts() {
        let config = Config {
            allowed_hosts: vec!["chat.example".into()],
            ..Config::default()
        };
        let HostPolicy::AllowList(hosts) = config.host_policy("192.168.1.5:3000".parse().unwrap())
        else {
            panic!("an allow-list")
        };
        assert_eq!(
            hosts,
            [
                "localhost:3000",
                "127.0.0.1:3000",
                "[::1]:3000",
                "192.168.1.5:3000",
                "chat.example"
            ]
        );
        let any = Config {
            allowed_hosts: vec!["*".into()],
            ..Config::default()
        };
        assert_eq!(
            any.host_policy("0.0.0.0:1".parse().unwrap()),
            HostPolicy::Any
        );
    }
}
