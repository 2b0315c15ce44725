//! The `rfc6455` binary: parse arguments, run the server in echo or broadcast mode, with the chat
//! page on the same port.

mod broadcast;
mod client;
mod echo;
mod page;

use broadcast::Broadcast;
use clap::{Args, Parser, Subcommand};
use echo::Echo;
use rfc6455::ServerConfig;
use rfc6455::deflate::DeflateConfig;
use rfc6455::handshake::OriginPolicy;
use rfc6455::limits::Limits;
use rfc6455::server::{Config, Server};
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

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
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Port to listen on (0 picks a free one; the startup line says which).
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// Largest message accepted, in bytes; larger ones are closed with 1009.
    #[arg(long, default_value_t = rfc6455::limits::DEFAULT_MAX_MESSAGE_SIZE)]
    max_message_size: u64,
    /// Largest frame accepted, in bytes; larger ones are closed with 1009.
    #[arg(long, default_value_t = rfc6455::limits::DEFAULT_MAX_FRAME_SIZE)]
    max_frame_size: u64,
    /// Most frames in one message; more is closed with 1008.
    #[arg(long, default_value_t = rfc6455::limits::DEFAULT_MAX_FRAGMENTS)]
    max_fragments: u32,
    /// Largest upgrade request head, in bytes; larger is answered 431.
    #[arg(long, default_value_t = rfc6455::limits::DEFAULT_MAX_HEAD_SIZE)]
    max_head_size: usize,
    /// Most header fields in the upgrade request; more is answered 431.
    #[arg(long, default_value_t = rfc6455::limits::DEFAULT_MAX_HEADERS)]
    max_headers: usize,
    /// Most connections at once; past it new connections get 503.
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    /// Queued output per connection (bytes) past which the connection is no longer read from
    /// until its queue drains (backpressure).
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    outbound_high_water: usize,
    /// Queued output (bytes) below which reading from a paused connection resumes.
    #[arg(long, default_value_t = 1024 * 1024)]
    outbound_low_water: usize,
    /// Seconds a connection's queue may stay over the high-water mark after writing before it
    /// is disconnected as a slow consumer.
    #[arg(long, default_value_t = 2.0)]
    slow_consumer_timeout: f64,
    /// Queued output per connection (bytes) it may never pass: one that would is disconnected
    /// at once.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    max_outbound: usize,
    /// Seconds from accept to a completed upgrade (0 disables).
    #[arg(long, default_value_t = 10.0)]
    handshake_timeout: f64,
    /// Seconds of silence before a keepalive ping (0 disables).
    #[arg(long, default_value_t = 60.0)]
    idle_timeout: f64,
    /// Seconds after the keepalive ping with no traffic before the connection is dropped
    /// (0: never drop).
    #[arg(long, default_value_t = 30.0)]
    pong_timeout: f64,
    /// Seconds to wait for the peer's close after ours, and for its TCP close after ours.
    #[arg(long, default_value_t = 1.0)]
    close_timeout: f64,
    /// Seconds to wait for connections to close on SIGINT/SIGTERM.
    #[arg(long, default_value_t = 5.0)]
    shutdown_timeout: f64,
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
    /// Decline permessage-deflate (RFC 7692) even when a client offers it.
    #[arg(long)]
    no_compression: bool,
    /// Messages shorter than this many bytes are sent uncompressed.
    #[arg(long, default_value_t = 64)]
    compression_threshold: usize,
    /// zlib compression level, 0 (none) to 9 (best).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(0..=9))]
    compression_level: u32,
    /// Let clients keep their compression context between messages (better ratio for small
    /// messages; costs an inflater of about 40 KiB per such connection once it sends one).
    #[arg(long)]
    client_context_takeover: bool,
}

fn seconds(value: f64, flag: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| format!("--{flag}: {value} is not a duration in seconds"))
}

impl ServerArgs {
    fn config(&self) -> Result<Config, String> {
        let connection = ServerConfig {
            limits: Limits {
                max_frame_size: self.max_frame_size,
                max_message_size: self.max_message_size,
                max_fragments: self.max_fragments.max(1),
                max_head_size: self.max_head_size,
                max_headers: self.max_headers,
            },
            handshake_timeout: seconds(self.handshake_timeout, "handshake-timeout")?,
            idle_timeout: seconds(self.idle_timeout, "idle-timeout")?,
            pong_timeout: seconds(self.pong_timeout, "pong-timeout")?,
            close_timeout: seconds(self.close_timeout, "close-timeout")?,
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
                threshold: self.compression_threshold,
                level: self.compression_level,
                client_context_takeover: self.client_context_takeover,
            },
        };
        Ok(Config {
            addr: SocketAddr::new(self.bind, self.port),
            connection,
            allowed_hosts: self.allowed_hosts.clone(),
            max_connections: self.max_connections,
            outbound_high_water: self.outbound_high_water,
            outbound_low_water: self.outbound_low_water.min(self.outbound_high_water),
            slow_consumer_timeout: seconds(self.slow_consumer_timeout, "slow-consumer-timeout")?,
            max_outbound: self.max_outbound.max(self.outbound_high_water),
            shutdown_timeout: seconds(self.shutdown_timeout, "shutdown-timeout")?,
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
    let config = match args.config() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let mut server = match Server::bind(config.clone()) {
        Ok(server) => server,
        Err(e) => {
            log::error!("cannot listen on {}: {e}", config.addr);
            return ExitCode::FAILURE;
        }
    };
    // SIGINT and SIGTERM start a graceful shutdown: a thread that only waits for the signals
    // wakes the event loop through mio's Waker.
    let handle = server.handle();
    match signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ]) {
        Ok(mut signals) => {
            std::thread::spawn(move || {
                if let Some(signal) = signals.forever().next() {
                    log::info!("received signal {signal}");
                    handle.shutdown();
                }
            });
        }
        Err(e) => log::warn!("cannot install signal handlers: {e}"),
    }
    log::info!(
        "listening on ws://{addr} in {mode} mode (chat page at http://{addr}/), at most {cap} connections",
        addr = server.local_addr(),
        cap = server.max_connections()
    );
    let result = match &cli.mode {
        Mode::Echo(_) => server.run(&mut Echo),
        Mode::Broadcast(_) => server.run(&mut Broadcast),
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
