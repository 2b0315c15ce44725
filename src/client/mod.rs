//! A blocking WebSocket client: [`Client`] drives a
//! [`ClientConnection`] over a stream (a [`Stream`]: TCP, or TLS for
//! `wss://`; or any [`Transport`]), for scripts, tests and command-line tools.
//!
//! ```no_run
//! use rfc6455::client::Client;
//! use rfc6455::{CloseCode, MessageKind};
//!
//! let mut client = Client::connect("ws://127.0.0.1:3000/")?;
//! client.send(MessageKind::Text, b"hello")?;
//! if let Some(reply) = client.recv()? {
//!     println!("{}", reply.as_text().unwrap_or("(binary)"));
//! }
//! let closure = client.close(CloseCode::NORMAL, "bye")?;
//! assert!(closure.was_clean());
//! # Ok::<(), rfc6455::client::Error>(())
//! ```
//!
//! Masking keys and the request's key come from the operating system's random source
//! ([`OsEntropy`], through the `getrandom` crate).
//!
//! With the `tls` feature (on by default), `wss://` URLs are served by rustls: the server's
//! certificate is verified against the platform's trust store, or against the CA certificates
//! in [`ClientOptions::ca_file`]; [`ClientOptions::danger_accept_invalid_certs`] skips
//! verification, for tests only.

#[cfg(feature = "tls")]
mod tls;
#[cfg(feature = "tls")]
pub use tls::{TlsStream, client_config};

use crate::client_connection::{ClientConfig, ClientConnection, ClientError, ClientEvent};
use crate::client_handshake::{self, ClientRequest, RequestError, ResponseError, UrlError, WsUrl};
use crate::close::CloseCode;
use crate::closure::Closure;
use crate::deflate::SharedDeflate;
use crate::error::{ProtocolError, SendError};
use crate::message::{Message, MessageKind};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The operating system's random source (RFC 6455 §5.3: "a strong source of entropy").
pub use crate::entropy::OsEntropy;

/// A stream a client runs over: what it needs besides reading and writing.
pub trait Transport: Read + Write {
    /// Bounds how long a read may block (`None`: forever).
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()>;
    /// Ends the sending side (TCP half-close, or TLS `close_notify`).
    fn shutdown_write(&mut self) -> io::Result<()>;
}

impl Transport for TcpStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        match self.shutdown(Shutdown::Write) {
            Err(e) if e.kind() != io::ErrorKind::NotConnected => Err(e),
            _ => Ok(()),
        }
    }
}

/// What a client runs over when it connects by URL: TCP for `ws://`, TLS over TCP for `wss://`.
#[derive(Debug)]
#[non_exhaustive]
pub enum Stream {
    /// `ws://`.
    Plain(TcpStream),
    /// `wss://` (boxed: the TLS state is large).
    #[cfg(feature = "tls")]
    Tls(Box<TlsStream>),
}

impl Stream {
    /// The TCP stream.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(stream) => stream,
            #[cfg(feature = "tls")]
            Stream::Tls(stream) => stream.tcp(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(stream) => stream.read(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(stream) => stream.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(stream) => stream.write(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(stream) => stream.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Plain(stream) => stream.write_vectored(bufs),
            #[cfg(feature = "tls")]
            Stream::Tls(stream) => stream.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(stream) => stream.flush(),
            #[cfg(feature = "tls")]
            Stream::Tls(stream) => stream.flush(),
        }
    }
}

impl Transport for Stream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Plain(stream) => Transport::set_read_timeout(stream, timeout),
            #[cfg(feature = "tls")]
            Stream::Tls(stream) => stream.set_read_timeout(timeout),
        }
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(stream) => stream.shutdown_write(),
            #[cfg(feature = "tls")]
            Stream::Tls(stream) => stream.shutdown_write(),
        }
    }
}

/// Why a client call failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The URL is not a WebSocket URL.
    Url(UrlError),
    /// `wss://` needs TLS, and this build has no `tls` feature.
    TlsNotSupported,
    /// TLS failed: the server's certificate is not valid for its name or not issued by a
    /// trusted authority, no protocol version or cipher suite in common, an alert.
    #[cfg(feature = "tls")]
    Tls(rustls::Error),
    /// The CA file ([`ClientOptions::ca_file`]) could not be read, or holds no certificate.
    #[cfg(feature = "tls")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        error: rustls::pki_types::pem::Error,
    },
    /// The platform's trust store has no usable certificate (with the first error
    /// `rustls-native-certs` met reading it, if any): give a CA file instead.
    #[cfg(feature = "tls")]
    NoPlatformRoots(Option<Arc<rustls_native_certs::Error>>),
    /// The URL's host is neither a DNS name nor an IP address, so TLS cannot verify it.
    InvalidServerName(String),
    /// The transport failed, or a read timed out (`WouldBlock` or `TimedOut`: call again).
    Io(io::Error),
    /// The request offers a subprotocol that is not a token, or one twice (§4.1).
    Request(RequestError),
    /// The server's response broke a rule of RFC 6455 §4.1, or refused the upgrade.
    Handshake(ResponseError),
    /// The server's frames broke a rule: the connection was failed.
    Protocol(ProtocolError),
    /// The connection is not open (it is closing or closed).
    NotOpen,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Url(error) => write!(f, "invalid URL: {error}"),
            Error::TlsNotSupported => {
                f.write_str("wss:// needs TLS: this build has no `tls` feature")
            }
            #[cfg(feature = "tls")]
            Error::Tls(error) => write!(f, "TLS: {error}"),
            #[cfg(feature = "tls")]
            Error::CaFile { path, error } => {
                write!(
                    f,
                    "cannot read CA certificates from {}: {error}",
                    path.display()
                )
            }
            #[cfg(feature = "tls")]
            Error::NoPlatformRoots(None) => {
                f.write_str("no trusted certificate authorities on this system")
            }
            #[cfg(feature = "tls")]
            Error::NoPlatformRoots(Some(error)) => {
                write!(
                    f,
                    "no trusted certificate authorities on this system: {error}"
                )
            }
            Error::InvalidServerName(name) => write!(f, "{name:?} is not a valid TLS server name"),
            Error::Io(error) => write!(f, "{error}"),
            Error::Request(error) => write!(f, "invalid request: {error}"),
            Error::Handshake(error) => write!(f, "handshake failed: {error}"),
            Error::Protocol(error) => write!(f, "connection failed: {error}"),
            Error::NotOpen => f.write_str("the connection is not open"),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(error: io::Error) -> Self {
        Error::Io(error)
    }
}

impl From<ClientError> for Error {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::Handshake(error) => Error::Handshake(error),
            ClientError::Protocol(error) => Error::Protocol(error),
        }
    }
}

impl From<SendError> for Error {
    fn from(_: SendError) -> Self {
        Error::NotOpen
    }
}

/// What to ask the server for, besides the URL.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Limits, deadlines and compression.
    pub config: ClientConfig,
    /// The `Origin` to send, if any.
    pub origin: Option<String>,
    /// Subprotocols to offer, in order of preference.
    pub protocols: Vec<String>,
    /// More request header fields.
    pub headers: Vec<(String, String)>,
    /// For `wss://`: verify the server against the CA certificates in this PEM file instead of
    /// the platform's trust store (a private CA, or a self-signed server certificate).
    pub ca_file: Option<PathBuf>,
    /// For `wss://`: accept any certificate, for any name, from any issuer. **Dangerous**: anyone
    /// on the path can then read and change the traffic. For tests against a self-signed
    /// server only; prefer [`ca_file`](Self::ca_file).
    pub danger_accept_invalid_certs: bool,
    /// For `wss://`: a rustls configuration of your own (client certificates, other roots or
    /// protocol versions); when set, [`ca_file`](Self::ca_file) and
    /// [`danger_accept_invalid_certs`](Self::danger_accept_invalid_certs) are not used.
    #[cfg(feature = "tls")]
    pub tls_config: Option<Arc<rustls::ClientConfig>>,
}

/// How much is read from the stream at a time.
const READ_CHUNK: usize = 64 * 1024;

/// A blocking WebSocket client.
//
//= https://www.rfc-editor.org/rfc/rfc6455#section-7.2.3
//= type=exception
//= reason=The library's clients never reconnect by themselves: the blocking Client and the
//= reason=server's outbound connections report the end of a connection to the application, which
//= reason=decides whether and when to connect again. (The binary's chat page, JavaScript outside
//= reason=these sources, reconnects after any close with a delay of 0.5 s times a random factor
//= reason=between 0.75 and 1.25, doubling each failed attempt up to 10 s, with the same jitter.)
//# To prevent this, clients SHOULD use some form of backoff when trying
//# to reconnect after abnormal closures as described in this section.
//
//= https://www.rfc-editor.org/rfc/rfc6455#section-7.2.3
//= type=exception
//= reason=No reconnect attempt is made: see above.
//# The first reconnect attempt SHOULD be delayed by a random amount of
//# time.
//
//= https://www.rfc-editor.org/rfc/rfc6455#section-7.2.3
//= type=exception
//= reason=No reconnect attempt is made: see above.
//# Should the first reconnect attempt fail, subsequent reconnect
//# attempts SHOULD be delayed by increasingly longer amounts of time,
//# using a method such as truncated binary exponential backoff.
pub struct Client<S: Transport = Stream> {
    stream: S,
    conn: ClientConnection,
    shared: SharedDeflate,
    /// Received bytes; `input[consumed..]` is not processed yet.
    input: Vec<u8>,
    consumed: usize,
    /// The read timeout the caller asked for.
    read_timeout: Option<Duration>,
}

impl<S: Transport> fmt::Debug for Client<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

impl Client<Stream> {
    /// Connects to `url` (`ws://host[:port]/path`, or `wss://` for TLS) and completes the
    /// opening handshake.
    pub fn connect(url: &str) -> Result<Self, Error> {
        Self::connect_with(url, ClientOptions::default())
    }

    /// Connects with options: subprotocols, `Origin`, more header fields, limits, and for
    /// `wss://` how to verify the server.
    pub fn connect_with(url: &str, options: ClientOptions) -> Result<Self, Error> {
        //= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
        //# When the client is to _Establish a WebSocket Connection_ given a set
        //# of (/host/, /port/, /resource name/, and /secure/ flag), along with a
        //# list of /protocols/ and /extensions/ to be used, and an /origin/ in
        //# the case of web browsers, it MUST open a connection, send an opening
        //# handshake, and read the server's handshake in response.
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
        //= type=exception
        //= reason=Not met: each call opens its own connection at once, and no call knows of
        //= reason=another. The rule keeps a script in a browser from flooding a host; this client is
        //= reason=driven by its application, which decides how many connections it opens, and when.
        //# 2.  If the client already has a WebSocket connection to the remote
        //# host (IP address) identified by /host/ and port /port/ pair, even
        //# if the remote host is known by another name, the client MUST wait
        //# until that connection has been established or for that connection
        //# to have failed.  There MUST be no more than one connection in a
        //# CONNECTING state.  If multiple connections to the same IP address
        //# are attempted simultaneously, the client MUST serialize them so
        //# that there is no more than one connection at a time running
        //# through the following steps.
        //# If the client cannot determine the IP address of the remote host
        //# (for example, because all communication is being done through a
        //# proxy server that performs DNS queries itself), then the client
        //# MUST assume for the purposes of this step that each host name
        //# refers to a distinct remote host, and instead the client SHOULD
        //# limit the total number of simultaneous pending connections to a
        //# reasonably low number (e.g., the client might allow simultaneous
        //# pending connections to a.example.com and b.example.com, but if
        //# thirty simultaneous connections to a single host are requested,
        //# that may not be allowed).
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
        //= type=exception
        //= reason=The client has no proxy setting: it always connects directly.
        //# 3.  _Proxy Usage_: If the client is configured to use a proxy when
        //# using the WebSocket Protocol to connect to host /host/ and port
        //# /port/, then the client SHOULD connect to that proxy and ask it
        //# to open a TCP connection to the host given by /host/ and the port
        //# given by /port/.
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
        //= type=exception
        //= reason=The client runs no proxy autoconfiguration script.
        //# For the purpose of proxy autoconfiguration scripts, the URI to
        //# pass the function MUST be constructed from /host/, /port/,
        //# /resource name/, and the /secure/ flag using the definition of a
        //# WebSocket URI as given in Section 3.
        let url = WsUrl::parse(url).map_err(Error::Url)?;
        // What is offered, and the TLS settings, first: a bad subprotocol or CA file is reported
        // before any connection is made.
        client_handshake::check_request(&ClientRequest {
            protocols: options.protocols.clone(),
            ..ClientRequest::default()
        })
        .map_err(Error::Request)?;
        // The client supports TLS (feature `tls`) and employs it when the application asks for
        // it with a `wss://` URL.
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-10.6
        //# WebSocket implementations
        //# MUST support TLS and SHOULD employ it when communicating with their
        //# peers.
        #[cfg(feature = "tls")]
        let tls = match url.secure {
            true => Some(client_config(&options)?),
            false => None,
        };
        #[cfg(not(feature = "tls"))]
        if url.secure {
            return Err(Error::TlsNotSupported);
        }
        let host = url.host.trim_start_matches('[').trim_end_matches(']');
        let timeout = options
            .config
            .handshake_timeout
            .max(Duration::from_millis(1));
        let addrs = (host, url.port).to_socket_addrs()?;
        let mut last_error = io::Error::new(io::ErrorKind::NotFound, "no address");
        //= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
        //# If the client is not configured to use a proxy, then a direct TCP
        //# connection SHOULD be opened to the host given by /host/ and the
        //# port given by /port/.
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    #[cfg(feature = "tls")]
                    if let Some(config) = tls {
                        //= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
                        //# 5.  If /secure/ is true, the client MUST perform a TLS handshake over
                        //# the connection after opening the connection and before sending
                        //# the handshake data [RFC2818].  If this fails (e.g., the server's
                        //# certificate could not be verified), then the client MUST _Fail
                        //# the WebSocket Connection_ and abort the connection.  Otherwise,
                        //# all further communication on this channel MUST run through the
                        //# encrypted tunnel [RFC5246].
                        let stream = TlsStream::connect(stream, host, config, timeout)?;
                        return Self::handshake(Stream::Tls(Box::new(stream)), &url, options);
                    }
                    return Self::handshake(Stream::Plain(stream), &url, options);
                }
                Err(error) => last_error = error,
            }
        }
        //= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
        //# 4.  If the connection could not be opened, either because a direct
        //#     connection failed or because any proxy used returned an error,
        //#     then the client MUST _Fail the WebSocket Connection_ and abort
        //#     the connection attempt.
        Err(Error::Io(last_error))
    }
}

impl<S: Transport> Client<S> {
    /// Runs the opening handshake for `url` over an established `stream`.
    pub fn handshake(stream: S, url: &WsUrl, options: ClientOptions) -> Result<Self, Error> {
        let request = ClientRequest {
            origin: options.origin,
            protocols: options.protocols,
            headers: options.headers,
            ..ClientRequest::for_url(url)
        };
        let conn = ClientConnection::new(
            Arc::new(options.config),
            request,
            Box::new(OsEntropy),
            Instant::now(),
        )
        .map_err(Error::Request)?;
        let mut client = Client {
            stream,
            conn,
            shared: SharedDeflate::new(),
            input: Vec::new(),
            consumed: 0,
            read_timeout: None,
        };
        client.flush()?;
        while client.conn.is_handshaking() {
            client.fill()?;
            let received = client.conn.handle_input(
                &mut client.input[client.consumed..],
                Instant::now(),
                &mut client.shared,
            )?;
            client.consumed += received.consumed;
            if client.conn.is_closed() {
                return Err(Error::Io(io::ErrorKind::UnexpectedEof.into()));
            }
        }
        Ok(client)
    }

    /// The subprotocol the server chose, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.conn.protocol()
    }

    /// How the connection ended, once it has.
    pub fn closure(&self) -> Option<&Closure> {
        self.conn.closure()
    }

    /// Whether messages may still be sent.
    pub fn is_open(&self) -> bool {
        self.conn.is_open()
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// Bounds how long [`recv`](Self::recv) waits for a message: past it, `recv` returns an
    /// [`Error::Io`] of kind `WouldBlock` or `TimedOut`, and may be called again.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.read_timeout = timeout;
    }

    /// Sends a message.
    pub fn send(&mut self, kind: MessageKind, payload: &[u8]) -> Result<(), Error> {
        self.conn.send(kind, payload, &mut self.shared)?;
        self.flush()
    }

    /// Sends a ping (§5.5.2).
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.conn.ping(payload)?;
        self.flush()
    }

    /// Waits for the next message. Pings are answered meanwhile. `Ok(None)` once the
    /// connection is closed ([`closure`](Self::closure) says how).
    pub fn recv(&mut self) -> Result<Option<Message<'static>>, Error> {
        loop {
            if let Some(message) = self.process()? {
                return Ok(Some(message));
            }
            self.flush()?;
            if self.conn.is_closed() {
                return Ok(None);
            }
            self.fill()?;
        }
    }

    /// Starts the closing handshake with `code` and `reason`, reads (and drops) messages until
    /// the server's Close and its TCP close (at most the close timeout each), and returns how
    /// the connection ended.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<Closure, Error> {
        self.start_close(code, reason)?;
        self.read_timeout = None;
        while self.recv()?.is_some() {}
        Ok(self
            .conn
            .closure()
            .cloned()
            .expect("a connection that was open and is closed has a closure"))
    }

    /// Starts the closing handshake with `code` and `reason` and returns at once: messages the
    /// server sent before its Close still come from [`recv`](Self::recv), then `Ok(None)` once the
    /// connection is closed (within the close timeout of this call, or the server's TCP close).
    pub fn start_close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.conn.close(code, reason, Instant::now())?;
        self.flush()
    }

    /// Handles the input already received; returns the first message it completes.
    fn process(&mut self) -> Result<Option<Message<'static>>, Error> {
        // Work may be left without input: a compressed message inflated a step at a time.
        let mut unfinished = false;
        while self.consumed < self.input.len() || unfinished {
            let received = self.conn.handle_input(
                &mut self.input[self.consumed..],
                Instant::now(),
                &mut self.shared,
            );
            let received = match received {
                Ok(received) => received,
                Err(error) => {
                    self.flush()?;
                    return Err(error.into());
                }
            };
            if received.needs_more() {
                break;
            }
            unfinished = received.unfinished;
            self.consumed += received.consumed;
            if let Some(ClientEvent::Message(message)) = received.event {
                return Ok(Some(message.into_owned()));
            }
        }
        Ok(None)
    }

    /// Writes what the connection queued, and ends the sending side when it says so.
    fn flush(&mut self) -> Result<(), Error> {
        if self.conn.is_closed() {
            // Everything was written, or the transport is gone (a reset, a deadline).
            return Ok(());
        }
        let outbox = self.conn.outbox();
        if let Err(error) = outbox.write_to(&mut self.stream) {
            self.conn.abort("write error");
            return Err(error.into());
        }
        if self.conn.outbox().take_eof() {
            self.stream.shutdown_write()?;
        }
        Ok(())
    }

    /// Reads once (bounded by the caller's timeout and the connection's next deadline), and
    /// hands the connection its timeouts and the server's end of stream.
    fn fill(&mut self) -> Result<(), Error> {
        if self.consumed == self.input.len() {
            self.input.clear();
            self.consumed = 0;
        }
        let now = Instant::now();
        self.conn.handle_timeout(now);
        if self.conn.is_closed() {
            return Ok(());
        }
        let deadline = self.conn.poll_timeout().map(|at| {
            at.saturating_duration_since(now)
                .max(Duration::from_millis(1))
        });
        let timeout = match (deadline, self.read_timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.stream.set_read_timeout(timeout)?;
        let start = self.input.len();
        self.input.resize(start + READ_CHUNK, 0);
        let result = self.stream.read(&mut self.input[start..]);
        let read = *result.as_ref().unwrap_or(&0);
        self.input.truncate(start + read);
        match result {
            Ok(0) => self.conn.handle_eof(Instant::now()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                let now = Instant::now();
                self.conn.handle_timeout(now);
                let own_deadline = deadline.is_some_and(|d| timeout == Some(d));
                if !own_deadline {
                    return Err(Error::Io(e));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset && !self.conn.is_handshaking() => {
                // A reset ends the server's stream as its TCP close would, and ours with it.
                // After the closing handshake it is how many servers close TCP (Autobahn's
                // aborts the connection once it has the client's Close): the close stays clean.
                // Before, the connection ended without a Close: 1006, as for an early EOF.
                let now = Instant::now();
                self.conn.handle_eof(now);
                self.conn.abort("connection reset");
                return Ok(());
            }
            Err(e) => {
                self.conn.abort("read error");
                return Err(Error::Io(e));
            }
        }
        self.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::accept_key;
    use std::collections::VecDeque;

    /// What a scripted server does when the client reads next.
    enum Step {
        /// The 101 for the key of the request written so far.
        Accept,
        Bytes(Vec<u8>),
        Fail(io::ErrorKind),
    }

    /// A transport that plays a script: reads take its steps in order (then EOF), writes are kept.
    struct Scripted {
        steps: VecDeque<Step>,
        written: Vec<u8>,
        write_shut: bool,
    }

    impl Scripted {
        fn new(steps: impl IntoIterator<Item = Step>) -> Self {
            Scripted {
                steps: steps.into_iter().collect(),
                written: Vec::new(),
                write_shut: false,
            }
        }
    }

    impl Read for Scripted {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let bytes = match self.steps.pop_front() {
                None => return Ok(0),
                Some(Step::Fail(kind)) => return Err(kind.into()),
                Some(Step::Bytes(bytes)) => bytes,
                Some(Step::Accept) => {
                    let request = String::from_utf8_lossy(&self.written).into_owned();
                    let key = request
                        .lines()
                        .find_map(|line| line.strip_prefix("Sec-WebSocket-Key: "))
                        .expect("the request has a key");
                    format!(
                        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                         Connection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                        accept_key(key.as_bytes())
                    )
                    .into_bytes()
                }
            };
            assert!(bytes.len() <= buf.len());
            buf[..bytes.len()].copy_from_slice(&bytes);
            Ok(bytes.len())
        }
    }

    impl Write for Scripted {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            assert!(!self.write_shut, "no write after the half-close");
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Transport for Scripted {
        fn set_read_timeout(&mut self, _: Option<Duration>) -> io::Result<()> {
            Ok(())
        }
        fn shutdown_write(&mut self) -> io::Result<()> {
            self.write_shut = true;
            Ok(())
        }
    }

    fn connect(steps: impl IntoIterator<Item = Step>) -> Client<Scripted> {
        let url = WsUrl::parse("ws://example.com/").unwrap();
        let steps = std::iter::once(Step::Accept).chain(steps);
        Client::handshake(Scripted::new(steps), &url, ClientOptions::default()).unwrap()
    }

    #[test]
    fn a_reset_after_the_closing_handshake_is_the_servers_tcp_close() {
        // Found by Autobahn's fuzzing server (every case): once it has the client's Close, it
        // aborts the connection, so the client reads a reset where it waited for the FIN.
        let mut client = connect([
            Step::Bytes(vec![0x81, 0x03, b'2', b'4', b'6', 0x88, 0x00]),
            Step::Fail(io::ErrorKind::ConnectionReset),
        ]);
        let message = client.recv().unwrap().unwrap();
        assert_eq!(message.as_text(), Some("246"));
        assert!(client.recv().unwrap().is_none(), "closed, not an error");
        let written = &client.get_ref().written;
        assert_eq!(
            written[written.len() - 6..][..2],
            [0x88, 0x80],
            "the client answered the Close"
        );
        let closure = client.closure().unwrap();
        assert!(closure.was_clean());
        assert_eq!(closure.code, CloseCode::NO_STATUS);
        assert_eq!(closure.cause, crate::closure::CloseCause::ClosedByPeer);
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-7.2.1
    //= type=test
    //# If at any point the underlying transport layer connection is
    //# unexpectedly lost, the client MUST _Fail the WebSocket Connection_.
    #[test]
    fn a_reset_while_open_ends_the_connection_with_1006() {
        let mut client = connect([Step::Fail(io::ErrorKind::ConnectionReset)]);
        assert!(client.recv().unwrap().is_none());
        let closure = client.closure().unwrap();
        assert!(!closure.was_clean());
        assert_eq!(closure.code, CloseCode::ABNORMAL);
        assert!(client.send(MessageKind::Text, b"late").is_err());
    }

    #[test]
    fn a_reset_during_the_handshake_is_an_error() {
        let url = WsUrl::parse("ws://example.com/").unwrap();
        let stream = Scripted::new([Step::Fail(io::ErrorKind::ConnectionReset)]);
        let error = Client::handshake(stream, &url, ClientOptions::default()).unwrap_err();
        assert!(
            matches!(&error, Error::Io(e) if e.kind() == io::ErrorKind::ConnectionReset),
            "{error}"
        );
    }
}
