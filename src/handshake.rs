//! RFC 6455 §4.2 Server-Side Requirements: reading the HTTP/1.1 upgrade request, validating it,
//! and writing the 101 response or the HTTP error that refuses it.
//!
//! <https://www.rfc-editor.org/rfc/rfc6455#section-4.2>
//!
//! The work is split so that its cost stays linear in the bytes received: [`HeadScanner`] finds
//! the end of the request head incrementally (remembering how far it looked), [`parse_request`]
//! runs httparse once on the complete head, and [`validate_upgrade`] applies §4.2.1.

use crate::error::HandshakeError;
use crate::frame::Status;
use crate::http::Response;
use crate::limits::Limits;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha1::{Digest, Sha1};

/// RFC 6455 §1.3: the GUID a server concatenates with `Sec-WebSocket-Key` to form the accept
/// value.
pub const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The only protocol version this implementation speaks (§4.1, §11.6).
pub const WEBSOCKET_VERSION: &str = "13";

/// Computes `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §1.3, §4.2.2 item 5.4):
/// the base64 of the SHA-1 of the key concatenated with [`WEBSOCKET_GUID`].
///
/// ```
/// // The example from RFC 6455 §1.3.
/// assert_eq!(rfc6455::handshake::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
pub fn accept_key(key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(WEBSOCKET_GUID.as_bytes());
    BASE64.encode(sha1.finalize())
}

/// Finds the end of an HTTP request head (the empty line) in bytes that arrive in pieces,
/// remembering how far it has looked so that each byte is examined once.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeadScanner {
    scanned: usize,
}

impl HeadScanner {
    /// A scanner at the start of a request.
    pub fn new() -> Self {
        Self::default()
    }

    /// Looks for the end of the head in `received` (every byte received so far, the same prefix
    /// each call). Returns the head's length once the empty line is found, `Partial` before, and
    /// [`HandshakeError::HeadTooLarge`] once the head is known to exceed `max_head_size`.
    ///
    /// The empty line is CRLF CRLF; a bare LF is accepted in its place, as httparse does.
    pub fn scan(
        &mut self,
        received: &[u8],
        max_head_size: usize,
    ) -> Result<Status<usize>, HandshakeError> {
        let mut i = self.scanned;
        while let Some(offset) = received[i..].iter().position(|&b| b == b'\n') {
            let lf = i + offset;
            match (received.get(lf + 1), received.get(lf + 2)) {
                (Some(b'\n'), _) => return Self::found(lf + 2, max_head_size),
                (Some(b'\r'), Some(b'\n')) => return Self::found(lf + 3, max_head_size),
                (None, _) | (Some(b'\r'), None) => {
                    // Not enough bytes to tell whether this line break ends the head.
                    i = lf;
                    break;
                }
                _ => i = lf + 1,
            }
            self.scanned = i;
        }
        self.scanned = if received[i..].contains(&b'\n') {
            i
        } else {
            received.len()
        };
        if received.len() >= max_head_size {
            return Err(HandshakeError::HeadTooLarge);
        }
        Ok(Status::Partial)
    }

    fn found(len: usize, max_head_size: usize) -> Result<Status<usize>, HandshakeError> {
        if len > max_head_size {
            Err(HandshakeError::HeadTooLarge)
        } else {
            Ok(Status::Complete(len))
        }
    }
}

/// A parsed HTTP/1.x request head. Fields borrow from the head bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'h> {
    /// The method, for example `GET`.
    pub method: &'h str,
    /// The request target, for example `/chat`.
    pub path: &'h str,
    /// The minor HTTP version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub minor_version: u8,
    /// Every header field in order, names as sent.
    pub headers: Vec<(&'h str, &'h [u8])>,
}

impl<'h> Request<'h> {
    /// The values of every header field named `name` (case-insensitive), trimmed.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'h [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim_ascii())
    }

    /// The single value of header `name`: `None` when it is absent or appears more than once.
    pub fn header(&self, name: &str) -> Option<&'h [u8]> {
        let mut values = self.header_values(name);
        match (values.next(), values.next()) {
            (Some(value), None) => Some(value),
            _ => None,
        }
    }

    /// The comma-separated tokens of every header field named `name`, trimmed, empty ones skipped
    /// (the `#rule` list syntax of RFC 7230 §7).
    pub fn header_tokens<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'h str> + 'a {
        self.header_values(name)
            .filter_map(|v| std::str::from_utf8(v).ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }

    /// Whether header `name` lists `token` (case-insensitive).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.header_tokens(name)
            .any(|t| t.eq_ignore_ascii_case(token))
    }

    /// The subprotocols the client offers in `Sec-WebSocket-Protocol`, in its order of preference
    /// (§4.1 item 10). The server picks one of these or none.
    pub fn protocols<'a>(&'a self) -> impl Iterator<Item = &'h str> + 'a {
        self.header_tokens("Sec-WebSocket-Protocol")
    }

    /// Whether the request asks for a WebSocket upgrade at all (an `Upgrade` header listing
    /// `websocket`), as opposed to a plain HTTP request.
    pub fn is_upgrade(&self) -> bool {
        self.has_token("Upgrade", "websocket")
    }

    /// Whether the request tries to open a WebSocket, even if it gets the handshake wrong: it
    /// carries an `Upgrade: websocket`, a `Sec-WebSocket-Key` or a `Sec-WebSocket-Version`.
    /// Such a request is answered by the handshake rules (426 and friends); any other request is
    /// plain HTTP.
    pub fn is_websocket_attempt(&self) -> bool {
        self.is_upgrade()
            || self.header_values("Sec-WebSocket-Key").next().is_some()
            || self.header_values("Sec-WebSocket-Version").next().is_some()
    }
}

/// Which `Origin`s may open a WebSocket (RFC 6455 §4.2.2 item 4, §10.2).
///
/// Browsers always send `Origin`, so this is what keeps a page on another site from using a
/// visitor's browser to talk to this server (cross-site WebSocket hijacking). A request without
/// `Origin` comes from a non-browser client, which could claim any origin anyway, and is allowed
/// under every policy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OriginPolicy {
    /// Only pages served from the same host and port as the request's `Host` (the default).
    #[default]
    SameHost,
    /// Only these origins, compared ASCII case-insensitively (for example `https://example.com`).
    AllowList(Vec<String>),
    /// Any origin.
    Any,
}

/// RFC 6455 §4.2.2 item 4: "if the server does not wish to accept this connection, it MUST
/// return an appropriate HTTP error code (e.g., 403 Forbidden) and abort the WebSocket handshake".
pub fn check_origin(request: &Request<'_>, policy: &OriginPolicy) -> Result<(), HandshakeError> {
    //= https://www.rfc-editor.org/rfc/rfc6455#section-10.2
    //# Servers that are not intended to process input from any web page but
    //# only for certain sites SHOULD verify the |Origin| field is an origin
    //# they expect.  If the origin indicated is unacceptable to the server,
    //# then it SHOULD respond to the WebSocket handshake with a reply
    //# containing HTTP 403 Forbidden status code.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-4.2.1
    //# A connection attempt lacking this
    //# header field SHOULD NOT be interpreted as coming from a browser
    //# client.
    let Some(origin) = request.header("Origin") else {
        return match request.header_values("Origin").next() {
            None => Ok(()),
            Some(_) => Err(HandshakeError::OriginNotAllowed), // several Origin headers
        };
    };
    let origin = std::str::from_utf8(origin).map_err(|_| HandshakeError::OriginNotAllowed)?;
    let allowed = match policy {
        OriginPolicy::Any => true,
        OriginPolicy::AllowList(list) => list
            .iter()
            .any(|allowed| allowed.trim_end_matches('/').eq_ignore_ascii_case(origin)),
        OriginPolicy::SameHost => {
            let authority = origin.split_once("://").map(|(_, rest)| rest);
            let host = request
                .header("Host")
                .and_then(|h| std::str::from_utf8(h).ok());
            matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
        }
    };
    if allowed {
        Ok(())
    } else {
        Err(HandshakeError::OriginNotAllowed)
    }
}

/// Which `Host` values the server answers, for every request (plain HTTP and upgrades).
///
/// "Origin must match Host" does not stop DNS rebinding: a page on `attacker.example` whose name
/// is made to resolve to 127.0.0.1 sends a matching `Origin` and `Host`. Checking `Host` against
/// the names the server is really reachable as does (Vite, webpack-dev-server and Jupyter do the
/// same); a request for another host gets 403.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum HostPolicy {
    /// Any `Host` (the check is off).
    #[default]
    Any,
    /// Only these hosts: a name or an address (IPv6 in brackets), compared ASCII
    /// case-insensitively, each with an optional `:port` that must then match too.
    AllowList(Vec<String>),
}

/// Splits `host[:port]` (RFC 3986 authority without userinfo; IPv6 in brackets).
fn split_host_port(authority: &str) -> (&str, Option<&str>) {
    let port_start = match authority.rfind(':') {
        Some(colon) if !authority[colon..].contains(']') => colon,
        _ => return (authority, None),
    };
    if authority[..port_start].contains(':') && !authority.starts_with('[') {
        return (authority, None); // a bare IPv6 address: no port to split
    }
    (&authority[..port_start], Some(&authority[port_start + 1..]))
}

/// Whether a `Host` value names one of the allowed hosts.
fn host_allowed(host: &str, allowed: &str) -> bool {
    let (name, port) = split_host_port(host);
    let (allowed_name, allowed_port) = split_host_port(allowed);
    name.eq_ignore_ascii_case(allowed_name)
        && match (allowed_port, port) {
            (Some(allowed_port), Some(port)) => allowed_port == port,
            // A Host without a port names the scheme's default port; comparing the name is
            // what stops a rebound name.
            _ => true,
        }
}

/// Checks the request's `Host` header against `policy`. An HTTP/1.1 request must carry exactly
/// one: RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code to any
/// HTTP/1.1 request message that lacks a Host header field and to any request message that
/// contains more than one Host header field line or a Host header field with an invalid field
/// value."
pub fn check_host(request: &Request<'_>, policy: &HostPolicy) -> Result<(), HandshakeError> {
    let mut values = request.header_values("Host");
    let host = match (values.next(), values.next()) {
        (Some(host), None) => host,
        (None, None) if request.minor_version == 0 => return Ok(()),
        _ => return Err(HandshakeError::MissingHost),
    };
    let host = std::str::from_utf8(host).map_err(|_| HandshakeError::MissingHost)?;
    match policy {
        HostPolicy::Any => Ok(()),
        HostPolicy::AllowList(list) if list.iter().any(|allowed| host_allowed(host, allowed)) => {
            Ok(())
        }
        HostPolicy::AllowList(_) => Err(HandshakeError::HostNotAllowed),
    }
}

/// Parses a complete request head (as delimited by [`HeadScanner`]) with httparse.
pub fn parse_request<'h>(head: &'h [u8], limits: &Limits) -> Result<Request<'h>, HandshakeError> {
    let mut headers = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(HandshakeError::Malformed),
        Err(httparse::Error::TooManyHeaders) => return Err(HandshakeError::TooManyHeaders),
        Err(_) => return Err(HandshakeError::Malformed),
    }
    let (Some(method), Some(path), Some(minor_version)) =
        (request.method, request.path, request.version)
    else {
        return Err(HandshakeError::Malformed);
    };
    Ok(Request {
        method,
        path,
        minor_version,
        headers: request.headers.iter().map(|h| (h.name, h.value)).collect(),
    })
}

/// A validated opening handshake: what the server needs to answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upgrade<'h> {
    /// The client's `Sec-WebSocket-Key`, as sent.
    pub key: &'h str,
}

/// Checks a request against RFC 6455 §4.2.1, in the order the section lists the requirements.
pub fn validate_upgrade<'h>(request: &Request<'h>) -> Result<Upgrade<'h>, HandshakeError> {
    // §4.2.1 item 1: "An HTTP/1.1 or higher GET request".
    if request.method != "GET" {
        return Err(HandshakeError::MethodNotGet);
    }
    if request.minor_version < 1 {
        return Err(HandshakeError::HttpVersion);
    }
    // §4.2.1 item 2: "A |Host| header field containing the server's authority."
    if request.header("Host").is_none_or(|h| h.is_empty()) {
        return Err(HandshakeError::MissingHost);
    }
    // §4.2.1 item 3: "An |Upgrade| header field containing the value "websocket", treated as an
    // ASCII case-insensitive value."
    if !request.is_upgrade() {
        return Err(HandshakeError::NotWebSocket);
    }
    // §4.2.1 item 4: "A |Connection| header field that includes the token "Upgrade", treated as an
    // ASCII case-insensitive value."
    if !request.has_token("Connection", "Upgrade") {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    // §4.2.1 item 6: "A |Sec-WebSocket-Version| header field, with a value of 13." Checked before
    // the key: a client of another version gets 426 telling it which version we speak (§4.4).
    //= https://www.rfc-editor.org/rfc/rfc6455#section-11.3.5
    //# However, the |Sec-WebSocket-Version| header field MUST NOT appear
    //# more than once in an HTTP request.
    if request.header("Sec-WebSocket-Version") != Some(WEBSOCKET_VERSION.as_bytes()) {
        return Err(HandshakeError::UnsupportedVersion);
    }
    // §4.2.1 item 5: "A |Sec-WebSocket-Key| header field with a base64-encoded value that, when
    // decoded, is 16 bytes in length."
    //= https://www.rfc-editor.org/rfc/rfc6455#section-11.3.1
    //# The |Sec-WebSocket-Key| header field MUST NOT appear more than once
    //# in an HTTP request.
    let key = request
        .header("Sec-WebSocket-Key")
        .ok_or(HandshakeError::InvalidKey)?;
    let mut decoded = [0u8; 18]; // room for the decoder's slack; a 16-byte key fills exactly 16
    match BASE64.decode_slice(key, &mut decoded) {
        Ok(16) => {}
        _ => return Err(HandshakeError::InvalidKey),
    }
    let key = std::str::from_utf8(key).map_err(|_| HandshakeError::InvalidKey)?;
    Ok(Upgrade { key })
}

/// The `101 Switching Protocols` response that accepts an upgrade with this `Sec-WebSocket-Key`
/// (RFC 6455 §4.2.2 item 5). `protocol` is the subprotocol the server chose from the client's
/// offer, `extensions` the negotiated `Sec-WebSocket-Extensions` value.
pub fn accept_response(key: &str, protocol: Option<&str>, extensions: Option<&str>) -> Response {
    switching_protocols(&accept_key(key.as_bytes()), protocol, extensions)
}

/// The `101 Switching Protocols` response with the `Sec-WebSocket-Accept` value `accept`.
pub fn switching_protocols(
    accept: &str,
    protocol: Option<&str>,
    extensions: Option<&str>,
) -> Response {
    //= https://www.rfc-editor.org/rfc/rfc6455#section-4.2.2
    //# 1.  A Status-Line with a 101 response code as per RFC 2616
    //#     [RFC2616].  Such a response could look like "HTTP/1.1 101
    //#     Switching Protocols".
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-4.2.2
    //# If the server chooses to accept the incoming connection, it MUST
    //# reply with a valid HTTP response indicating the following.
    let mut response = Response::new(101)
        .header("Upgrade", "websocket")
        .header("Connection", "Upgrade")
        .header("Sec-WebSocket-Accept", accept.to_owned());
    //= https://www.rfc-editor.org/rfc/rfc6455#section-11.3.3
    //# The |Sec-WebSocket-Accept| header MUST NOT appear more than once in
    //# an HTTP response.

    for (name, value) in [
        ("Sec-WebSocket-Protocol", protocol),
        ("Sec-WebSocket-Extensions", extensions),
    ] {
        //= https://www.rfc-editor.org/rfc/rfc6455#section-4.2.2
        //# The absence
        //# of such a field is equivalent to the null value (meaning that
        //# if the server does not wish to agree to one of the suggested
        //# subprotocols, it MUST NOT send back a |Sec-WebSocket-Protocol|
        //# header field in its response).
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-11.3.4
        //# However, the |Sec-WebSocket-Protocol| header field MUST NOT appear
        //# more than once in an HTTP response.
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-11.3.2
        //# However, the |Sec-WebSocket-Extensions| header field MUST NOT appear
        //# more than once in an HTTP response.
        if let Some(value) = value {
            response = response.header(name, value.to_owned());
        }
    }
    response
}

/// The HTTP error response that refuses the handshake for `error`: its status, `Connection:
/// close` (the server closes the connection after sending it) and a short plain-text body naming
/// the reason.
pub fn error_response(error: HandshakeError) -> Response {
    //= https://www.rfc-editor.org/rfc/rfc6455#section-10.7
    //# If the
    //# invalid data is sent during the WebSocket handshake, the server
    //# SHOULD return an appropriate HTTP [RFC2616] status code.
    let response = Response::text(error.status(), format!("{error}\n"));
    match error {
        // RFC 9110 §15.5.6: "The origin server MUST generate an Allow header field in a 405
        // response containing a list of the target resource's currently supported methods."
        HandshakeError::MethodNotGet => response.header("Allow", "GET"),
        // RFC 6455 §4.4 (tell the client the versions we speak) and RFC 9110 §15.5.22 (a 426
        // response "MUST send an Upgrade header field").
        //= https://www.rfc-editor.org/rfc/rfc6455#section-4.2.2
        //# If this
        //# version does not match a version understood by the server, the
        //# server MUST abort the WebSocket handshake described in this
        //# section and instead send an appropriate HTTP error code (such
        //# as 426 Upgrade Required) and a |Sec-WebSocket-Version| header
        //# field indicating the version(s) the server is capable of
        //# understanding.
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-4.4
        //# If the server
        //# doesn't support the requested version, it MUST respond with a
        //# |Sec-WebSocket-Version| header field (or multiple
        //# |Sec-WebSocket-Version| header fields) containing all versions it is
        //# willing to use.
        HandshakeError::UnsupportedVersion | HandshakeError::NotWebSocket => response
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Version", WEBSOCKET_VERSION),
        _ => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_check(head: &str, policy: &HostPolicy) -> Result<(), HandshakeError> {
        let request = parse_request(head.as_bytes(), &Limits::default()).unwrap();
        check_host(&request, policy)
    }

    #[test]
    fn host_allow_list_stops_a_rebound_name() {
        let policy = HostPolicy::AllowList(vec![
            "localhost:3000".into(),
            "127.0.0.1:3000".into(),
            "[::1]:3000".into(),
            "chat.example".into(),
        ]);
        for host in [
            "localhost:3000",
            "LOCALHOST:3000",
            "127.0.0.1:3000",
            "[::1]:3000",
            "localhost",
            "chat.example:8443",
        ] {
            let head = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
            assert_eq!(host_check(&head, &policy), Ok(()), "{host}");
        }
        for host in [
            "attacker.example:3000",
            "localhost:3001",
            "[::1]:4000",
            "127.0.0.2:3000",
        ] {
            let head = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
            assert_eq!(
                host_check(&head, &policy),
                Err(HandshakeError::HostNotAllowed),
                "{host}"
            );
        }
        let head = "GET / HTTP/1.1\r\nHost: attacker.example\r\n\r\n";
        assert_eq!(host_check(head, &HostPolicy::Any), Ok(()));
    }

    #[test]
    fn http_1_1_needs_exactly_one_host() {
        let any = HostPolicy::Any;
        assert_eq!(
            host_check("GET / HTTP/1.1\r\n\r\n", &any),
            Err(HandshakeError::MissingHost)
        );
        assert_eq!(
            host_check("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", &any),
            Err(HandshakeError::MissingHost)
        );
        assert_eq!(host_check("GET / HTTP/1.0\r\n\r\n", &any), Ok(()));
    }

    #[test]
    fn splits_host_and_port() {
        assert_eq!(split_host_port("a:1"), ("a", Some("1")));
        assert_eq!(split_host_port("[::1]:80"), ("[::1]", Some("80")));
        assert_eq!(split_host_port("[::1]"), ("[::1]", None));
        assert_eq!(split_host_port("::1"), ("::1", None));
        assert_eq!(split_host_port("a"), ("a", None));
    }

    const GOOD: &[u8] = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";

    fn validate(head: &[u8]) -> Result<String, HandshakeError> {
        let request = parse_request(head, &Limits::default())?;
        validate_upgrade(&request).map(|u| u.key.to_string())
    }

    fn replace(from: &str, to: &str) -> Vec<u8> {
        String::from_utf8(GOOD.to_vec())
            .unwrap()
            .replace(from, to)
            .into_bytes()
    }

    #[test]
    fn rfc_1_3_accept_key() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn accepts_rfc_1_3_request() {
        assert_eq!(validate(GOOD), Ok("dGhlIHNhbXBsZSBub25jZQ==".to_string()));
        let request = parse_request(GOOD, &Limits::default()).unwrap();
        assert_eq!(
            request.protocols().collect::<Vec<_>>(),
            ["chat", "superchat"]
        );
        assert_eq!(request.path, "/chat");
    }

    #[test]
    fn token_lists_are_case_insensitive() {
        let head = replace("Connection: Upgrade", "connection: keep-alive, UPGRADE");
        let head = String::from_utf8(head)
            .unwrap()
            .replace("Upgrade: websocket", "upgrade: WebSocket");
        assert!(validate(head.as_bytes()).is_ok());
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-4.2.1
    //= type=test
    //# If
    //# the server, while reading the handshake, finds that the client did
    //# not send a handshake that matches the description below (note that as
    //# per [RFC2616], the order of the header fields is not important),
    //# including but not limited to any violations of the ABNF grammar
    //# specified for the components of the handshake, the server MUST stop
    //# processing the client's handshake and return an HTTP response with an
    //# appropriate error code (such as 400 Bad Request).
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-11.3.1
    //= type=test
    //# The |Sec-WebSocket-Key| header field MUST NOT appear more than once
    //# in an HTTP request.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-11.3.5
    //= type=test
    //# However, the |Sec-WebSocket-Version| header field MUST NOT appear
    //# more than once in an HTTP request.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-10.7
    //= type=test
    //# If the
    //# invalid data is sent during the WebSocket handshake, the server
    //# SHOULD return an appropriate HTTP [RFC2616] status code.
    #[test]
    fn each_requirement_has_its_status() {
        let cases: &[(Vec<u8>, HandshakeError, u16)] = &[
            (
                replace("GET /chat", "POST /chat"),
                HandshakeError::MethodNotGet,
                405,
            ),
            (
                replace("HTTP/1.1", "HTTP/1.0"),
                HandshakeError::HttpVersion,
                400,
            ),
            (
                replace("Host: server.example.com\r\n", ""),
                HandshakeError::MissingHost,
                400,
            ),
            (
                replace("Upgrade: websocket\r\n", ""),
                HandshakeError::NotWebSocket,
                426,
            ),
            (
                replace("Connection: Upgrade", "Connection: keep-alive"),
                HandshakeError::MissingConnectionUpgrade,
                400,
            ),
            (
                replace("Version: 13", "Version: 8"),
                HandshakeError::UnsupportedVersion,
                426,
            ),
            (
                replace("Sec-WebSocket-Version: 13\r\n", ""),
                HandshakeError::UnsupportedVersion,
                426,
            ),
            (
                replace("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZQ=="),
                HandshakeError::InvalidKey,
                400,
            ),
            (
                replace("dGhlIHNhbXBsZSBub25jZQ==", "not base64!"),
                HandshakeError::InvalidKey,
                400,
            ),
            (
                replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
                HandshakeError::InvalidKey,
                400,
            ),
            (
                replace(
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
                ),
                HandshakeError::InvalidKey,
                400,
            ),
            (
                replace(
                    "Sec-WebSocket-Version: 13\r\n",
                    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 13\r\n",
                ),
                HandshakeError::UnsupportedVersion,
                426,
            ),
            (
                b"\x00\x01garbage\r\n\r\n".to_vec(),
                HandshakeError::Malformed,
                400,
            ),
        ];
        for (head, error, status) in cases {
            assert_eq!(
                validate(head),
                Err(*error),
                "{}",
                String::from_utf8_lossy(head)
            );
            assert_eq!(error.status(), *status);
        }
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-10.2
    //= type=test
    //# Servers that are not intended to process input from any web page but
    //# only for certain sites SHOULD verify the |Origin| field is an origin
    //# they expect.  If the origin indicated is unacceptable to the server,
    //# then it SHOULD respond to the WebSocket handshake with a reply
    //# containing HTTP 403 Forbidden status code.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-4.2.1
    //= type=test
    //# A connection attempt lacking this
    //# header field SHOULD NOT be interpreted as coming from a browser
    //# client.
    #[test]
    fn origin_policies() {
        let check = |origin: Option<&str>, host: &str, policy: &OriginPolicy| {
            let mut head = format!("GET / HTTP/1.1\r\nHost: {host}\r\n");
            if let Some(origin) = origin {
                head.push_str(&format!("Origin: {origin}\r\n"));
            }
            head.push_str("\r\n");
            let request = parse_request(head.as_bytes(), &Limits::default()).unwrap();
            check_origin(&request, policy).is_ok()
        };
        let same = OriginPolicy::SameHost;
        assert!(check(None, "localhost:3000", &same));
        assert!(check(
            Some("http://localhost:3000"),
            "localhost:3000",
            &same
        ));
        assert!(check(
            Some("http://LOCALHOST:3000"),
            "localhost:3000",
            &same
        ));
        assert!(!check(Some("http://evil.example"), "localhost:3000", &same));
        assert!(!check(
            Some("http://localhost:3001"),
            "localhost:3000",
            &same
        ));
        assert!(!check(Some("null"), "localhost:3000", &same));
        let list = OriginPolicy::AllowList(vec!["https://chat.example/".into()]);
        assert!(check(Some("https://chat.example"), "localhost:3000", &list));
        assert!(!check(
            Some("http://localhost:3000"),
            "localhost:3000",
            &list
        ));
        assert!(check(Some("http://anything"), "x", &OriginPolicy::Any));
    }

    #[test]
    fn too_many_headers_is_431() {
        let mut head = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..65 {
            head.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        assert_eq!(validate(&head), Err(HandshakeError::TooManyHeaders));
        assert_eq!(HandshakeError::TooManyHeaders.status(), 431);
    }

    #[test]
    fn scanner_finds_head_end_at_every_split() {
        let mut input = GOOD.to_vec();
        input.extend_from_slice(b"\x81\x80frame");
        for split in 0..input.len() {
            let mut scanner = HeadScanner::new();
            let first = scanner.scan(&input[..split], 8192).unwrap();
            if split < GOOD.len() {
                assert_eq!(first, Status::Partial, "split {split}");
                assert_eq!(scanner.scan(&input, 8192), Ok(Status::Complete(GOOD.len())));
            } else {
                assert_eq!(first, Status::Complete(GOOD.len()));
            }
        }
    }

    #[test]
    fn scanner_byte_by_byte() {
        let mut scanner = HeadScanner::new();
        for end in 1..GOOD.len() {
            assert_eq!(scanner.scan(&GOOD[..end], 8192), Ok(Status::Partial));
        }
        assert_eq!(scanner.scan(GOOD, 8192), Ok(Status::Complete(GOOD.len())));
    }

    #[test]
    fn scanner_accepts_bare_lf() {
        let head = b"GET / HTTP/1.1\nHost: a\n\nrest";
        assert_eq!(
            HeadScanner::new().scan(head, 8192),
            Ok(Status::Complete(24))
        );
    }

    #[test]
    fn scanner_caps_head_size() {
        let big = vec![b'a'; 100];
        assert_eq!(
            HeadScanner::new().scan(&big, 100),
            Err(HandshakeError::HeadTooLarge)
        );
        assert_eq!(
            HeadScanner::new().scan(&big[..99], 100),
            Ok(Status::Partial)
        );
        assert_eq!(
            HeadScanner::new().scan(GOOD, GOOD.len() - 1),
            Err(HandshakeError::HeadTooLarge)
        );
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-4.2.2
    //= type=test
    //# If the server chooses to accept the incoming connection, it MUST
    //# reply with a valid HTTP response indicating the following.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-4.2.2
    //= type=test
    //# The absence
    //# of such a field is equivalent to the null value (meaning that
    //# if the server does not wish to agree to one of the suggested
    //# subprotocols, it MUST NOT send back a |Sec-WebSocket-Protocol|
    //# header field in its response).
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-11.3.4
    //= type=test
    //# However, the |Sec-WebSocket-Protocol| header field MUST NOT appear
    //# more than once in an HTTP response.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-11.3.2
    //= type=test
    //# However, the |Sec-WebSocket-Extensions| header field MUST NOT appear
    //# more than once in an HTTP response.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-11.3.3
    //= type=test
    //# The |Sec-WebSocket-Accept| header MUST NOT appear more than once in
    //# an HTTP response.
    #[test]
    fn accept_response_matches_rfc() {
        let mut out = Vec::new();
        accept_response("dGhlIHNhbXBsZSBub25jZQ==", Some("chat"), None).write_to(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(text.contains("Sec-WebSocket-Protocol: chat\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
        let mut out = Vec::new();
        accept_response("dGhlIHNhbXBsZSBub25jZQ==", None, Some("permessage-deflate"))
            .write_to(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            !text.contains("Sec-WebSocket-Protocol"),
            "no subprotocol, no field"
        );
        assert_eq!(text.matches("Sec-WebSocket-Extensions").count(), 1);
        assert_eq!(text.matches("Sec-WebSocket-Accept").count(), 1);
    }

    #[test]
    fn error_responses_are_complete() {
        for error in [
            HandshakeError::MethodNotGet,
            HandshakeError::UnsupportedVersion,
            HandshakeError::HeadTooLarge,
        ] {
            let mut out = Vec::new();
            error_response(error).write_to(&mut out);
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut response = httparse::Response::new(&mut headers);
            let httparse::Status::Complete(head_len) = response.parse(&out).unwrap() else {
                panic!()
            };
            assert_eq!(response.code, Some(error.status()));
            let length: usize = response
                .headers
                .iter()
                .find(|h| h.name == "Content-Length")
                .map(|h| std::str::from_utf8(h.value).unwrap().parse().unwrap())
                .unwrap();
            assert_eq!(out.len() - head_len, length);
            assert!(
                response
                    .headers
                    .iter()
                    .any(|h| h.name == "Connection" && h.value == b"close")
            );
        }
    }

    #[test]
    fn a_head_of_exactly_the_limit_is_accepted() {
        assert_eq!(
            HeadScanner::new().scan(GOOD, GOOD.len()),
            Ok(Status::Complete(GOOD.len()))
        );
    }

    #[test]
    fn any_one_websocket_field_makes_a_websocket_attempt() {
        let attempt = |fields: &str| {
            let head = format!("GET / HTTP/1.1\r\nHost: a\r\n{fields}\r\n");
            parse_request(head.as_bytes(), &Limits::default())
                .unwrap()
                .is_websocket_attempt()
        };
        assert!(!attempt(""), "plain HTTP");
        assert!(!attempt("Upgrade: h2c\r\n"), "another upgrade");
        assert!(attempt("Upgrade: websocket\r\n"));
        assert!(attempt("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"));
        assert!(attempt("Sec-WebSocket-Version: 13\r\n"));
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-4.4
    //= type=test
    //# If the server
    //# doesn't support the requested version, it MUST respond with a
    //# |Sec-WebSocket-Version| header field (or multiple
    //# |Sec-WebSocket-Version| header fields) containing all versions it is
    //# willing to use.
    #[test]
    fn a_refusal_names_what_the_client_should_send_instead() {
        //= https://www.rfc-editor.org/rfc/rfc6455#section-4.2.2
        //= type=test
        //# If this
        //# version does not match a version understood by the server, the
        //# server MUST abort the WebSocket handshake described in this
        //# section and instead send an appropriate HTTP error code (such
        //# as 426 Upgrade Required) and a |Sec-WebSocket-Version| header
        //# field indicating the version(s) the server is capable of
        //# understanding.
        for error in [
            HandshakeError::UnsupportedVersion,
            HandshakeError::NotWebSocket,
        ] {
            let response = error_response(error);
            assert_eq!(response.status(), 426, "{error:?}");
            assert_eq!(response.header_value("Upgrade"), Some("websocket"));
            assert_eq!(response.header_value("Sec-WebSocket-Version"), Some("13"));
            assert_eq!(response.header_value("Allow"), None);
        }
        // RFC 9110 §15.5.6: a 405 response carries `Allow`.
        let response = error_response(HandshakeError::MethodNotGet);
        assert_eq!(response.status(), 405);
        assert_eq!(response.header_value("Allow"), Some("GET"));
        assert_eq!(response.header_value("Sec-WebSocket-Version"), None);
        let response = error_response(HandshakeError::InvalidKey);
        assert_eq!(response.header_value("Allow"), None);
        assert_eq!(response.header_value("Upgrade"), None);
    }
}
