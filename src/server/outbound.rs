//! Connections the application opens from the loop ([`Context::connect`](super::Context::connect)):
//! what it asks for ([`ConnectOptions`]), why one cannot open ([`ConnectError`]), and what the
//! loop keeps for one until it opens ([`Outbound`]).
//!
//! The connection is a [`ClientConnection`]: it writes the opening request (RFC 6455 §4.1),
//! checks the response, masks every frame with a key from the operating system's random
//! source ([`OsEntropy`]), and after the closing handshake waits (at most the close timeout) for
//! the server to close TCP. The loop moves its bytes like any peer's.

use super::handle::HandleError;
use crate::client_connection::{ClientConfig, ClientConnection};
use crate::client_handshake::{ClientRequest, RequestError, ResponseError, UrlError, WsUrl};
use crate::entropy::OsEntropy;
use crate::handshake::{Request, WEBSOCKET_VERSION};
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

/// What to ask the server for, besides the URL.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// Limits, deadlines (the handshake deadline counts from the call, so it bounds the TCP
    /// connect too), keepalive and compression.
    pub config: ClientConfig,
    /// The `Origin` to send, if any.
    pub origin: Option<String>,
    /// Subprotocols to offer, in order of preference.
    pub protocols: Vec<String>,
    /// More request header fields.
    pub headers: Vec<(String, String)>,
}

/// Why a connection the application opened did not open: returned by
/// [`Context::connect`](super::Context::connect) when it cannot even start, and given to
/// [`Handler::on_connect_failed`](super::Handler::on_connect_failed) when it fails later.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL is not a WebSocket URL.
    Url(UrlError),
    /// `wss://`: the loop opens plain `ws://` connections only (its TLS is the server's side).
    TlsNotSupported,
    /// The host is a name, which the loop does not resolve (a DNS lookup would block every
    /// connection): resolve it elsewhere and give the address to
    /// [`Context::connect_to`](super::Context::connect_to).
    Unresolved(String),
    /// The server holds [`Config::max_connections`](super::Config::max_connections) already.
    TooManyConnections,
    /// The server is shutting down.
    ShuttingDown,
    /// The socket could not be made, the connection was refused or reset, or a read or write
    /// failed before the connection opened.
    Io(io::Error),
    /// The request offers a subprotocol that is not a token, or one twice (§4.1).
    Request(RequestError),
    /// The server answered, but not with a valid `101` (§4.1): a refusal
    /// ([`ResponseError::Refused`], with its status and headers) or a response that breaks a
    /// rule.
    Handshake(ResponseError),
    /// No complete response within
    /// [`ClientConfig::handshake_timeout`](crate::ClientConfig::handshake_timeout) of the call.
    TimedOut,
    /// The server closed the connection before its response was complete.
    Closed,
    /// The loop dropped the connection before it opened (a graceful shutdown, the memory
    /// budget).
    Dropped(&'static str),
    /// [`Handle::connect`](super::Handle::connect) could not ask the loop.
    Handle(HandleError),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Url(error) => write!(f, "invalid URL: {error}"),
            ConnectError::TlsNotSupported => {
                f.write_str("wss:// is not supported for connections opened from the loop")
            }
            ConnectError::Unresolved(host) => write!(
                f,
                "{host:?} is not an IP address: resolve it and use connect_to"
            ),
            ConnectError::TooManyConnections => f.write_str("too many connections"),
            ConnectError::ShuttingDown => f.write_str("the server is shutting down"),
            ConnectError::Io(error) => write!(f, "{error}"),
            ConnectError::Request(error) => write!(f, "invalid request: {error}"),
            ConnectError::Handshake(error) => write!(f, "handshake failed: {error}"),
            ConnectError::TimedOut => f.write_str("no response within the handshake timeout"),
            ConnectError::Closed => {
                f.write_str("the server closed the connection before answering")
            }
            ConnectError::Dropped(why) => write!(f, "dropped before it opened: {why}"),
            ConnectError::Handle(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectError::Url(error) => Some(error),
            ConnectError::Io(error) => Some(error),
            ConnectError::Request(error) => Some(error),
            ConnectError::Handshake(error) => Some(error),
            ConnectError::Handle(error) => Some(error),
            _ => None,
        }
    }
}

/// Parses `url` for a connection from the loop: a `ws://` URL.
pub(crate) fn parse(url: &str) -> Result<WsUrl, ConnectError> {
    let url = WsUrl::parse(url).map_err(ConnectError::Url)?;
    if url.secure {
        return Err(ConnectError::TlsNotSupported);
    }
    Ok(url)
}

/// The address `url` names, without a lookup: an IP address, or `localhost` (RFC 6761 §6.3:
/// the loopback address, which this resolves to 127.0.0.1).
pub(crate) fn address(url: &WsUrl) -> Result<SocketAddr, ConnectError> {
    let host = url.host.trim_start_matches('[').trim_end_matches(']');
    let ip = match host.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) if host.eq_ignore_ascii_case("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Err(_) => return Err(ConnectError::Unresolved(url.host.clone())),
    };
    Ok(SocketAddr::new(ip, url.port))
}

/// What the loop keeps for a connection it opened: its core, and where it is in opening.
#[derive(Debug)]
pub(crate) struct Outbound {
    pub conn: ClientConnection,
    stage: Stage,
}

/// Where a connection the loop opened is in opening.
#[derive(Debug)]
enum Stage {
    /// TCP is still connecting: nothing is written until it completes.
    Connecting(Attempt),
    /// TCP is up: the request goes out and the response comes in.
    Handshaking(Attempt),
    /// The response accepted the upgrade; the request was handed to `on_open`. An open connection
    /// ends with a closure, not a failure.
    Open,
}

/// A connection on its way to open: the request it sent (for [`Opening`](super::Opening)) and
/// why it failed, once known.
#[derive(Debug)]
struct Attempt {
    request: ClientRequest,
    failure: Option<ConnectError>,
}

impl Outbound {
    /// A connection to `url` whose TCP connect started at `now`.
    pub fn new(url: &WsUrl, options: ConnectOptions, now: Instant) -> Result<Self, ConnectError> {
        let request = ClientRequest {
            origin: options.origin,
            protocols: options.protocols,
            headers: options.headers,
            ..ClientRequest::for_url(url)
        };
        let conn = ClientConnection::new(
            Arc::new(options.config),
            request.clone(),
            Box::new(OsEntropy),
            now,
        )
        .map_err(ConnectError::Request)?;
        Ok(Outbound {
            conn,
            stage: Stage::Connecting(Attempt {
                request,
                failure: None,
            }),
        })
    }

    /// Whether TCP is still connecting.
    pub fn is_connecting(&self) -> bool {
        matches!(self.stage, Stage::Connecting(_))
    }

    /// TCP connected: the handshake can start.
    pub fn connected(&mut self) {
        if let Stage::Connecting(attempt) = std::mem::replace(&mut self.stage, Stage::Open) {
            self.stage = Stage::Handshaking(attempt);
        }
    }

    /// The connection opened: returns the request it sent, for `on_open`.
    pub fn open(&mut self) -> ClientRequest {
        match std::mem::replace(&mut self.stage, Stage::Open) {
            Stage::Connecting(attempt) | Stage::Handshaking(attempt) => attempt.request,
            Stage::Open => unreachable!("a connection opens once"),
        }
    }

    /// Records why the connection did not open, unless a cause is known already or it opened.
    pub fn fail_with(&mut self, failure: impl FnOnce() -> ConnectError) {
        if let Stage::Connecting(attempt) | Stage::Handshaking(attempt) = &mut self.stage {
            attempt.failure.get_or_insert_with(failure);
        }
    }

    /// Why it did not open: what was recorded, or the transport's closing.
    pub fn take_failure(&mut self) -> ConnectError {
        match &mut self.stage {
            Stage::Connecting(attempt) | Stage::Handshaking(attempt) => attempt.failure.take(),
            Stage::Open => None,
        }
        .unwrap_or(ConnectError::Closed)
    }
}

/// The request a connection opened with, in the form the handler sees for accepted ones: the
/// request line and the header fields sent (all but the key; one `Sec-WebSocket-Protocol` field
/// per subprotocol offered).
pub(crate) fn sent_request(request: &ClientRequest) -> Request<'_> {
    let mut headers: Vec<(&str, &[u8])> = vec![
        ("Host", request.host.as_bytes()),
        ("Upgrade", b"websocket"),
        ("Connection", b"Upgrade"),
        ("Sec-WebSocket-Version", WEBSOCKET_VERSION.as_bytes()),
    ];
    if let Some(origin) = &request.origin {
        headers.push(("Origin", origin.as_bytes()));
    }
    for protocol in &request.protocols {
        headers.push(("Sec-WebSocket-Protocol", protocol.as_bytes()));
    }
    headers.extend(
        request
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes())),
    );
    Request {
        method: "GET",
        path: &request.resource,
        minor_version: 1,
        headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr_of(url: &str) -> Result<SocketAddr, ConnectError> {
        address(&parse(url)?)
    }

    #[test]
    fn an_ip_literal_or_localhost_is_the_address_and_a_name_is_not_looked_up() {
        assert_eq!(
            addr_of("ws://127.0.0.1:9000/x").unwrap(),
            "127.0.0.1:9000".parse().unwrap()
        );
        assert_eq!(addr_of("ws://[::1]/").unwrap(), "[::1]:80".parse().unwrap());
        assert_eq!(
            addr_of("ws://LocalHost:3000").unwrap(),
            "127.0.0.1:3000".parse().unwrap()
        );
        assert!(matches!(
            addr_of("ws://example.com/"),
            Err(ConnectError::Unresolved(host)) if host == "example.com"
        ));
    }

    #[test]
    fn wss_and_other_schemes_are_refused() {
        assert!(matches!(
            addr_of("wss://127.0.0.1/"),
            Err(ConnectError::TlsNotSupported)
        ));
        assert!(matches!(
            addr_of("http://127.0.0.1/"),
            Err(ConnectError::Url(UrlError::Scheme))
        ));
    }

    #[test]
    fn the_request_the_handler_sees_is_the_one_sent_without_its_key() {
        let url = WsUrl::parse("ws://example.com:8080/feed?a=1").unwrap();
        let options = ConnectOptions {
            origin: Some("http://me".into()),
            protocols: vec!["a".into(), "b".into()],
            headers: vec![("X-Id".into(), "7".into())],
            ..ConnectOptions::default()
        };
        let mut outbound = Outbound::new(&url, options, Instant::now()).unwrap();
        assert!(outbound.is_connecting() && outbound.conn.is_handshaking());
        let sent = outbound.open();
        let request = sent_request(&sent);
        assert_eq!((request.method, request.path), ("GET", "/feed?a=1"));
        assert_eq!(request.header("Host"), Some(&b"example.com:8080"[..]));
        assert_eq!(request.header("Origin"), Some(&b"http://me"[..]));
        assert_eq!(request.header("X-Id"), Some(&b"7"[..]));
        let offered: Vec<_> = request.header_tokens("Sec-WebSocket-Protocol").collect();
        assert_eq!(offered, ["a", "b"]);
        assert!(request.header("Sec-WebSocket-Key").is_none());
    }

    #[test]
    fn a_failure_is_kept_until_open_and_the_first_cause_wins() {
        let url = WsUrl::parse("ws://127.0.0.1:9/").unwrap();
        let mut outbound = Outbound::new(&url, ConnectOptions::default(), Instant::now()).unwrap();
        outbound.fail_with(|| ConnectError::TimedOut);
        outbound.fail_with(|| ConnectError::Closed);
        assert!(matches!(outbound.take_failure(), ConnectError::TimedOut));

        // Connected, then handshaking: a failure still counts.
        let mut outbound = Outbound::new(&url, ConnectOptions::default(), Instant::now()).unwrap();
        outbound.connected();
        assert!(!outbound.is_connecting());
        outbound.fail_with(|| ConnectError::Dropped("shutting down"));
        assert!(matches!(
            outbound.take_failure(),
            ConnectError::Dropped("shutting down")
        ));

        // Once open, nothing is recorded: it ends with a closure.
        let mut outbound = Outbound::new(&url, ConnectOptions::default(), Instant::now()).unwrap();
        outbound.connected();
        outbound.open();
        outbound.fail_with(|| ConnectError::TimedOut);
        assert!(matches!(outbound.take_failure(), ConnectError::Closed));
    }
}
