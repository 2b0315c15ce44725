//! The `rfc6455` binary: parse arguments, run the server in echo or broadcast mode, with the chat
//! page on the same port.

mod broadcast;
mod client;
mod echo;
mod heap;
mod page;
mod subprotocol;
mod units;

use broadcast::Broadcast;
use clap::{Args, Parser, Subcommand};
use echo::Echo;
use rfc6455::ServerConfig;
use rfc6455::deflate::DeflateConfig;
use rfc6455::handshake::OriginPolicy;
use rfc6455::limits::Limits;
use rfc6455::server::{Config, RedisConfig, Server};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use subprotocol::Subprotocols;

/// A WebSocket server (RFC 6455) on one thread.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// Echo every message back to its sender (the Autobahn|Testsuite testee).
    Echo(ServerArgs),
    /// Send every message to every connected client, the sender included (a chat relay).
    Broadcast(ServerArgs),
    /// Connect to a server: send each line of standard input, print each message received.
    #[command(after_help = client::EXIT_STATUS)]
    Client(client::ClientArgs),
}

/// Settings shared by both modes. Every limit has a tested default; see the README.
#[derive(Args, Debug)]
struct ServerArgs {
    /// Address to listen on: an IP address, or a host name (resolved; its first IPv4 address is
    /// used if it has one). 0.0.0.0 listens on every interface.
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDR")]
    bind: String,
    /// Port to listen on (0 picks a free one; the startup line says which).
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// Serve GET /metrics and GET /healthz on this second address (for example
    /// 127.0.0.1:9100) instead of the WebSocket port, which then leaves them to the application
    /// (404). That listener serves nothing else.
    #[arg(long, value_name = "ADDR:PORT")]
    metrics_bind: Option<String>,
    /// Largest message accepted; larger ones are closed with 1009. Sizes are bytes, or take a
    /// unit: KiB, MiB, GiB (powers of 1024) or KB, MB, GB (powers of 1000).
    #[arg(long, default_value = "16MiB", value_parser = units::parse_size, value_name = "SIZE")]
    max_message_size: u64,
    /// Largest frame accepted; larger ones are closed with 1009.
    #[arg(long, default_value = "16MiB", value_parser = units::parse_size, value_name = "SIZE")]
    max_frame_size: u64,
    /// Most frames in one message; more is closed with 1008.
    #[arg(long, default_value_t = rfc6455::limits::DEFAULT_MAX_FRAGMENTS)]
    max_fragments: u32,
    /// Largest upgrade request head; larger is answered 431.
    #[arg(long, default_value = "8KiB", value_parser = units::parse_size, value_name = "SIZE")]
    max_head_size: u64,
    /// Most header fields in the upgrade request; more is answered 431.
    #[arg(long, default_value_t = rfc6455::limits::DEFAULT_MAX_HEADERS)]
    max_headers: usize,
    /// Most connections at once; past it new connections get 503.
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    /// Queued output per connection past which the connection is no longer read from until its
    /// queue drains (backpressure).
    #[arg(long, default_value = "16MiB", value_parser = units::parse_size, value_name = "SIZE")]
    outbound_high_water: u64,
    /// Queued output below which reading from a paused connection resumes.
    #[arg(long, default_value = "1MiB", value_parser = units::parse_size, value_name = "SIZE")]
    outbound_low_water: u64,
    /// How long a connection's queue may stay over the high-water mark after writing before it
    /// is disconnected as a slow consumer. Durations are seconds, or take a unit: ms, s, m, h.
    #[arg(long, default_value = "2s", value_parser = units::parse_duration, value_name = "DURATION")]
    slow_consumer_timeout: Duration,
    /// Queued output per connection it may never pass: one that would is disconnected at once.
    #[arg(long, default_value = "64MiB", value_parser = units::parse_size, value_name = "SIZE")]
    max_outbound: u64,
    /// Bytes the server may hold for all clients together (queued output, unconsumed input,
    /// messages being assembled); near it new upgrades get 503, past it the largest holders
    /// are closed.
    #[arg(long, default_value = "1GiB", value_parser = units::parse_size, value_name = "SIZE")]
    max_memory: u64,
    /// Time from accept to a completed upgrade (0 disables).
    #[arg(long, default_value = "10s", value_parser = units::parse_duration, value_name = "DURATION")]
    handshake_timeout: Duration,
    /// Silence before a keepalive ping (0 disables).
    #[arg(long, default_value = "60s", value_parser = units::parse_duration, value_name = "DURATION")]
    idle_timeout: Duration,
    /// Time after the keepalive ping with no traffic before the connection is dropped (0: never
    /// drop).
    #[arg(long, default_value = "30s", value_parser = units::parse_duration, value_name = "DURATION")]
    pong_timeout: Duration,
    /// Time to wait for the peer's close after ours, and for its TCP close after ours.
    #[arg(long, default_value = "1s", value_parser = units::parse_duration, value_name = "DURATION")]
    close_timeout: Duration,
    /// Time to wait for connections to close on SIGINT/SIGTERM.
    #[arg(long, default_value = "5s", value_parser = units::parse_duration, value_name = "DURATION")]
    shutdown_timeout: Duration,
    /// An Origin allowed to open a WebSocket, for example https://chat.example (repeat for
    /// several; `*` allows any). Without it only pages from this server's own host and port may
    /// connect; clients that send no Origin (non-browsers) are always allowed.
    #[arg(long = "origin", value_name = "ORIGIN")]
    origins: Vec<String>,
    /// A host name (or address, optionally NAME:PORT) the server answers as, besides localhost,
    /// 127.0.0.1, [::1] and the bound address, for example the name a reverse proxy forwards
    /// or this machine's address on the network (repeat for several; `*` allows any). Requests
    /// for another Host get 403, which stops DNS rebinding.
    #[arg(long = "allowed-host", value_name = "NAME")]
    allowed_hosts: Vec<String>,
    /// A subprotocol the server speaks (repeat for several): of those a client offers in
    /// Sec-WebSocket-Protocol, the first (in the client's order) that is listed is accepted;
    /// `*` accepts the client's first. Without a match the connection opens without one.
    #[arg(long = "subprotocol", value_name = "NAME")]
    subprotocols: Vec<String>,
    /// Decline permessage-deflate (RFC 7692) even when a client offers it.
    #[arg(long)]
    no_compression: bool,
    /// Messages shorter than this are sent uncompressed.
    #[arg(long, default_value = "64", value_parser = units::parse_size, value_name = "SIZE")]
    compression_threshold: u64,
    /// zlib compression level, 0 (none) to 9 (best).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(0..=9))]
    compression_level: u32,
    /// Let clients keep their compression context between messages (better ratio for small
    /// messages; costs an inflater of about 40 KiB per such connection once it sends one).
    #[arg(long)]
    client_context_takeover: bool,
    /// Set SO_REUSEPORT on the listening socket: several processes (one per core) may then
    /// listen on the same address and port, and the kernel spreads connections among them.
    #[arg(long)]
    reuse_port: bool,
    /// Broadcast mode: carry every room through this Redis (redis://HOST[:PORT][/DB], with
    /// USER:PASSWORD@ or :PASSWORD@ before the host if Redis needs them), so that rooms span
    /// every process on it. Without it, rooms are this process's alone.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// Put before every room's Redis channel name, so that several deployments can share one
    /// Redis.
    #[arg(long, default_value = "rfc6455:", value_name = "PREFIX")]
    redis_prefix: String,
    /// Serve https:// and wss:// on the port (TLS 1.3 and 1.2) with this certificate chain:
    /// PEM, the server's certificate first, then its intermediates. Needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

/// Resolves a host (an IP address, an IPv6 address in brackets, or a name) with a port. A name
/// may resolve to several addresses; its first IPv4 one is used if it has one (`localhost` is
/// then 127.0.0.1, as the default), otherwise its first.
fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let addrs: Vec<SocketAddr> = (bare, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host:?}: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|addr| addr.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("{host:?} has no address"))
}

/// Resolves `HOST:PORT` (`[v6]:PORT` for an IPv6 address).
fn resolve_host_port(value: &str) -> Result<SocketAddr, String> {
    let (host, port) = value
        .rsplit_once(':')
        .filter(|(host, _)| !host.is_empty() && (!host.contains(':') || host.ends_with(']')))
        .ok_or_else(|| format!("{value:?} is not ADDR:PORT"))?;
    let port = port
        .parse()
        .map_err(|_| format!("{value:?}: {port:?} is not a port"))?;
    resolve(host, port)
}

/// A size from the command line as a `usize` (sizes past the address space mean "no limit").
fn to_usize(size: u64) -> usize {
    usize::try_from(size).unwrap_or(usize::MAX)
}

impl ServerArgs {
    fn config(&self) -> Result<Config, String> {
        let connection = ServerConfig {
            limits: Limits {
                max_frame_size: self.max_frame_size,
                max_message_size: self.max_message_size,
                max_fragments: self.max_fragments.max(1),
                max_head_size: to_usize(self.max_head_size),
                max_headers: self.max_headers,
            },
            handshake_timeout: self.handshake_timeout,
            idle_timeout: self.idle_timeout,
            pong_timeout: self.pong_timeout,
            close_timeout: self.close_timeout,
            origins: if self.origins.iter().any(|o| o == "*") {
                OriginPolicy::Any
            } else if self.origins.is_empty() {
                OriginPolicy::SameHost
            } else {
                OriginPolicy::AllowList(self.origins.clone())
            },
            hosts: Default::default(), // set by Server::bind from allowed_hosts
            deflate: DeflateConfig {
                enabled: !self.no_compression,
                threshold: to_usize(self.compression_threshold),
                level: self.compression_level,
                client_context_takeover: self.client_context_takeover,
            },
        };
        let metrics_addr = match &self.metrics_bind {
            Some(value) => {
                Some(resolve_host_port(value).map_err(|e| format!("--metrics-bind: {e}"))?)
            }
            None => None,
        };
        let redis = match &self.redis {
            Some(url) => Some(RedisConfig {
                prefix: self.redis_prefix.clone(),
                max_input: to_usize(self.max_message_size.saturating_add(64 * 1024)),
                ..RedisConfig::from_url(url).map_err(|e| format!("--redis: {e}"))?
            }),
            None => None,
        };
        Ok(Config {
            addr: resolve(&self.bind, self.port).map_err(|e| format!("--bind: {e}"))?,
            reuse_port: self.reuse_port,
            redis,
            metrics_addr,
            connection,
            allowed_hosts: self.allowed_hosts.clone(),
            max_connections: self.max_connections,
            outbound_high_water: to_usize(self.outbound_high_water),
            outbound_low_water: to_usize(self.outbound_low_water.min(self.outbound_high_water)),
            slow_consumer_timeout: self.slow_consumer_timeout,
            max_outbound: to_usize(self.max_outbound.max(self.outbound_high_water)),
            max_memory: to_usize(self.max_memory),
            shutdown_timeout: self.shutdown_timeout,
            tls: match (&self.tls_cert, &self.tls_key) {
                (Some(cert), Some(key)) => Some(
                    rfc6455::server::TlsConfig::from_pem_files(cert, key)
                        .map_err(|e| format!("--tls-cert/--tls-key: {e}"))?,
                ),
                _ => None,
            },
            ..Config::default()
        })
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let (mode, args) = match &cli.mode {
        Mode::Echo(args) => ("echo", args),
        Mode::Broadcast(args) => ("broadcast", args),
        Mode::Client(args) => return client::run(args),
    };
    heap::keep_heap_slack();
    let config = match args.config() {
        Ok(config) if config.redis.is_some() && mode == "echo" => {
            eprintln!("error: --redis is for broadcast mode (echo has no rooms)");
            return ExitCode::from(2);
        }
        Ok(config) => config,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let subprotocols = match Subprotocols::new(&args.subprotocols) {
        Ok(subprotocols) => subprotocols,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let mut server = match Server::bind(config.clone()) {
        Ok(server) => server,
        Err(e) => {
            match config.metrics_addr {
                Some(metrics) => eprintln!(
                    "error: cannot listen on {} and {metrics} (metrics): {e}",
                    config.addr
                ),
                None => eprintln!("error: cannot listen on {}: {e}", config.addr),
            }
            return ExitCode::FAILURE;
        }
    };
    // SIGINT and SIGTERM start a graceful shutdown: a thread that only waits for the signals
    // wakes the event loop through mio's Waker. A second one (Ctrl-C again) ends the process at
    // once, with the shell's status for death by that signal (130 for SIGINT), instead of
    // waiting out the shutdown timeout for clients that do not answer.
    let handle = server.handle();
    match signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ]) {
        Ok(mut signals) => {
            std::thread::spawn(move || {
                let mut signals = signals.forever();
                if let Some(signal) = signals.next() {
                    log::info!("received signal {signal}: shutting down (again to exit at once)");
                    handle.shutdown();
                }
                if let Some(signal) = signals.next() {
                    log::warn!("received signal {signal} again: exiting now");
                    std::process::exit(128 + signal);
                }
            });
        }
        Err(e) => log::warn!("cannot install signal handlers: {e}"),
    }
    // Printed whatever RUST_LOG says: it is how a user (and the tests) learn the port.
    let addr = server.local_addr();
    let (ws, http) = match config.tls {
        Some(_) => ("wss", "https"),
        None => ("ws", "http"),
    };
    let metrics = match server.metrics_addr() {
        Some(metrics) => format!("http://{metrics}"),
        None => format!("{http}://{addr}"),
    };
    let broker = match &config.redis {
        Some(redis) => format!(", rooms through Redis at {}", redis.addr),
        None => String::new(),
    };
    eprintln!(
        "listening on {ws}://{addr} in {mode} mode (chat page at {http}://{addr}/, metrics at \
         {metrics}/metrics), at most {cap} connections{broker}",
        cap = server.max_connections()
    );
    let result = match &cli.mode {
        Mode::Echo(_) => server.run(&mut Echo { subprotocols }),
        Mode::Broadcast(_) => server.run(&mut Broadcast {
            subprotocols,
            ..Broadcast::default()
        }),
        Mode::Client(_) => unreachable!("the client returned above"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("event loop failed: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Config {
        let cli = Cli::try_parse_from(["rfc6455", "echo"].iter().chain(args)).unwrap();
        let Mode::Echo(args) = &cli.mode else {
            unreachable!("parsed as echo")
        };
        args.config().unwrap()
    }

    /// The defaults written as text in the flags are the library's.
    #[test]
    fn the_flags_default_to_the_library_defaults() {
        let config = config(&[]);
        let defaults = Config::default();
        assert_eq!(config.connection.limits, Limits::default());
        assert_eq!(config.connection.deflate, DeflateConfig::default());
        let connection = ServerConfig::default();
        assert_eq!(
            config.connection.handshake_timeout,
            connection.handshake_timeout
        );
        assert_eq!(config.connection.idle_timeout, connection.idle_timeout);
        assert_eq!(config.connection.pong_timeout, connection.pong_timeout);
        assert_eq!(config.connection.close_timeout, connection.close_timeout);
        assert_eq!(config.outbound_high_water, defaults.outbound_high_water);
        assert_eq!(config.outbound_low_water, defaults.outbound_low_water);
        assert_eq!(config.max_outbound, defaults.max_outbound);
        assert_eq!(config.slow_consumer_timeout, defaults.slow_consumer_timeout);
        assert_eq!(config.shutdown_timeout, defaults.shutdown_timeout);
        assert_eq!(config.max_connections, defaults.max_connections);
    }

    #[test]
    fn bind_takes_an_address_or_a_host_name() {
        assert_eq!(resolve("0.0.0.0", 80), Ok("0.0.0.0:80".parse().unwrap()));
        assert_eq!(resolve("::1", 80), Ok("[::1]:80".parse().unwrap()));
        assert_eq!(resolve("[::1]", 80), Ok("[::1]:80".parse().unwrap()));
        assert_eq!(
            resolve("localhost", 80),
            Ok("127.0.0.1:80".parse().unwrap())
        );
        assert_eq!(
            config(&["--bind", "localhost", "--port", "1"])
                .addr
                .to_string(),
            "127.0.0.1:1"
        );
    }

    #[test]
    fn metrics_bind_takes_an_address_or_a_host_name_with_a_port() {
        let parse = |value: &str| resolve_host_port(value).map(|addr| addr.to_string());
        assert_eq!(parse("127.0.0.1:9100").as_deref(), Ok("127.0.0.1:9100"));
        assert_eq!(parse("[::1]:0").as_deref(), Ok("[::1]:0"));
        assert_eq!(parse("localhost:9100").as_deref(), Ok("127.0.0.1:9100"));
        for bad in [
            "127.0.0.1",
            "::1:9100",
            ":9100",
            "localhost:http",
            "localhost:70000",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(config(&[]).metrics_addr, None);
        assert_eq!(
            config(&["--metrics-bind", "127.0.0.1:9100"]).metrics_addr,
            Some("127.0.0.1:9100".parse().unwrap())
        );
    }

    #[test]
    fn sizes_and_durations_take_units_and_plain_numbers() {
        let config = config(&[
            "--max-message-size",
            "1KiB",
            "--max-frame-size",
            "1000",
            "--outbound-high-water",
            "2MB",
            "--idle-timeout",
            "500ms",
            "--pong-timeout",
            "2m",
            "--close-timeout",
            "2.5",
        ]);
        assert_eq!(config.connection.limits.max_message_size, 1024);
        assert_eq!(config.connection.limits.max_frame_size, 1000);
        assert_eq!(config.outbound_high_water, 2_000_000);
        assert_eq!(config.connection.idle_timeout, Duration::from_millis(500));
        assert_eq!(config.connection.pong_timeout, Duration::from_secs(120));
        assert_eq!(config.connection.close_timeout, Duration::from_millis(2500));
        let refused = Cli::try_parse_from(["rfc6455", "echo", "--max-message-size", "16 parsecs"]);
        assert!(refused.is_err());
    }
}
