//! RFC 6455 §4.1 Client Requirements: the URL a client connects to, the opening request it
//! sends, and the checks on the server's response.
//!
//! <https://www.rfc-editor.org/rfc/rfc6455#section-4.1>

use crate::deflate::{self, DeflateConfig, Negotiated};
use crate::handshake::{WEBSOCKET_VERSION, accept_key};
use crate::http;
use crate::limits::Limits;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::fmt;

/// A `ws://` or `wss://` URL, split into what a client needs (§3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl {
    /// `wss://`: TLS on the connection.
    pub secure: bool,
    /// The host: a name, an IPv4 address, or an IPv6 address in brackets.
    pub host: String,
    /// The port: given, or 80 for `ws://` and 443 for `wss://`.
    pub port: u16,
    /// The path and query, at least `/`.
    pub resource: String,
}

/// Why a URL is not a WebSocket URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlError {
    /// The scheme is not `ws` or `wss`.
    Scheme,
    /// The host is empty or malformed.
    Host,
    /// The port is not a number from 1 to 65535.
    Port,
    /// The URL has a fragment (`#...`).
    Fragment,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UrlError::Scheme => "the scheme is not ws:// or wss://",
            UrlError::Host => "the host is missing or malformed",
            UrlError::Port => "the port is not a number from 1 to 65535",
            UrlError::Fragment => "a WebSocket URL has no fragment",
        })
    }
}

impl std::error::Error for UrlError {}

impl WsUrl {
    /// Parses `ws://host[:port][/path][?query]` (or `wss://`).
    ///
    /// ```
    /// use rfc6455::client_handshake::WsUrl;
    /// let url = WsUrl::parse("ws://[::1]:3000/chat?room=a").unwrap();
    /// assert_eq!((url.host.as_str(), url.port, url.resource.as_str()), ("[::1]", 3000, "/chat?room=a"));
    /// assert_eq!(url.authority(), "[::1]:3000");
    /// ```
    pub fn parse(url: &str) -> Result<WsUrl, UrlError> {
        //= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
        //# 1.  The components of the WebSocket URI passed into this algorithm
        //#     (/host/, /port/, /resource name/, and /secure/ flag) MUST be
        //#     valid according to the specification of WebSocket URIs specified
        //#     in Section 3.  If any of the components are invalid, the client
        //#     MUST _Fail the WebSocket Connection_ and abort these steps.
        let (secure, rest) = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("ws") => (false, rest),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("wss") => (true, rest),
            _ => return Err(UrlError::Scheme),
        };
        //= https://www.rfc-editor.org/rfc/rfc6455#section-3
        //# Fragment identifiers are meaningless in the context of WebSocket URIs
        //# and MUST NOT be used on these URIs.
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-3
        //# As with any URI scheme, the
        //# character "#", when not indicating the start of a fragment, MUST be
        //# escaped as %23.
        if rest.contains('#') {
            return Err(UrlError::Fragment);
        }
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, resource) = rest.split_at(split);
        let resource = match resource {
            "" => "/".to_string(),
            query if query.starts_with('?') => format!("/{query}"),
            path => path.to_string(),
        };
        //= https://www.rfc-editor.org/rfc/rfc6455#section-11.1.1
        //# Characters in other components that are excluded by the syntax
        //# defined above MUST be converted from Unicode to ASCII by first
        //# encoding the characters as UTF-8 and then replacing the
        //# corresponding bytes using their percent-encoded form as defined in
        //# the URI [RFC3986] and Internationalized Resource Identifier (IRI)
        //# [RFC3987] specifications.
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-11.1.2
        //# Characters in other components that are excluded by the syntax
        //# defined above MUST be converted from Unicode to ASCII by first
        //# encoding the characters as UTF-8 and then replacing the
        //# corresponding bytes using their percent-encoded form as defined in
        //# the URI [RFC3986] and IRI [RFC3987] specifications.
        let resource = percent_encode_resource(&resource);
        let (host, port) = match authority.rfind(':') {
            Some(colon) if !authority[colon..].contains(']') => {
                let port = authority[colon + 1..]
                    .parse::<u16>()
                    .ok()
                    .filter(|port| *port != 0)
                    .ok_or(UrlError::Port)?;
                (&authority[..colon], port)
            }
            _ => (authority, if secure { 443 } else { 80 }),
        };
        // A host is an IP literal in brackets, or ASCII letters, digits, `-._~` and
        // percent-encodings: a non-ASCII host is refused.
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-11.1.1
        //= type=exception
        //= reason=Not met: a host with characters outside ASCII (an internationalized domain
        //= reason=name) is refused with UrlError::Host, not converted: IDNA (UTS 46 mapping and
        //= reason=punycode) is not implemented. Give the host in its A-label form
        //= reason=(xn--bcher-kva.example, not bücher.example).
        //# Encoding considerations
        //# Characters in the host component that are excluded by the syntax
        //# defined above MUST be converted from Unicode to ASCII as specified
        //# in [RFC3987] or its replacement.
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-11.1.2
        //= type=exception
        //= reason=Not met, as for ws:// (section 11.1.1): a non-ASCII host is refused with
        //= reason=UrlError::Host; give it in its A-label form.
        //# Encoding considerations
        //# Characters in the host component that are excluded by the syntax
        //# defined above MUST be converted from Unicode to ASCII as specified
        //# in [RFC3987] or its replacement.
        let bracketed = host.starts_with('[') && host.ends_with(']') && host.len() > 2;
        let valid = bracketed
            || (!host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
        if !valid || authority.contains('@') {
            return Err(UrlError::Host);
        }
        Ok(WsUrl {
            secure,
            host: host.to_string(),
            port,
            resource,
        })
    }

    /// The `Host` header value: the host, and the port unless it is the scheme's default (§4.1
    /// item 4).
    pub fn authority(&self) -> String {
        let default = if self.secure { 443 } else { 80 };
        if self.port == default {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// `resource` with every byte that RFC 3986 does not allow in a path or a query
/// percent-encoded: spaces, control characters, the bytes of non-ASCII characters (a `str` is
/// UTF-8 already) and `"<>[\\]^`{|}`. A `%` is kept as it is: the caller may have encoded
/// already, and encoding it again would change the resource.
fn percent_encode_resource(resource: &str) -> String {
    // RFC 3986 §3.3 and §3.4: pchar = unreserved / pct-encoded / sub-delims / ":" / "@", and
    // "/" and "?" between segments and before the query.
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b);
    if resource.bytes().all(allowed) {
        return resource.to_string();
    }
    let mut encoded = String::with_capacity(resource.len() * 3);
    for b in resource.bytes() {
        if allowed(b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    encoded
}

/// What a client asks for in its opening request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientRequest {
    /// The `Host` header value (host, and port unless the default).
    pub host: String,
    /// The request target: the path and query, at least `/`.
    pub resource: String,
    /// The `Origin` to send, as a browser would; none for a non-browser client.
    pub origin: Option<String>,
    /// Subprotocols to offer, in order of preference (`Sec-WebSocket-Protocol`).
    pub protocols: Vec<String>,
    /// More header fields, sent as they are.
    pub headers: Vec<(String, String)>,
}

impl ClientRequest {
    /// A request for `url`'s host and resource, with nothing else.
    pub fn for_url(url: &WsUrl) -> Self {
        //= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
        //# 3.   The "Request-URI" part of the request MUST match the /resource
        //#      name/ defined in Section 3 (a relative URI) or be an absolute
        //#      http/https URI that, when parsed, has a /resource name/, /host/,
        //#      and /port/ that match the corresponding ws/wss URI.
        //
        //= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
        //# 4.   The request MUST contain a |Host| header field whose value
        //#      contains /host/ plus optionally ":" followed by /port/ (when not
        //#      using the default port).
        ClientRequest {
            host: url.authority(),
            resource: url.resource.clone(),
            ..ClientRequest::default()
        }
    }
}

/// Why a request cannot be sent as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// A subprotocol is empty or has a character a token may not have.
    InvalidProtocol(String),
    /// A subprotocol is offered twice.
    DuplicateProtocol(String),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::InvalidProtocol(name) => {
                write!(f, "subprotocol {name:?} is not an HTTP token")
            }
            RequestError::DuplicateProtocol(name) => {
                write!(f, "subprotocol {name:?} is offered twice")
            }
        }
    }
}

impl std::error::Error for RequestError {}

/// Checks what a request offers before it is sent.
pub fn check_request(request: &ClientRequest) -> Result<(), RequestError> {
    //= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
    //# The elements that comprise this value
    //# MUST be non-empty strings with characters in the range U+0021 to
    //# U+007E not including separator characters as defined in
    //# [RFC2616] and MUST all be unique strings.
    for (i, protocol) in request.protocols.iter().enumerate() {
        if !http::is_token(protocol) {
            return Err(RequestError::InvalidProtocol(protocol.clone()));
        }
        if request.protocols[..i].contains(protocol) {
            return Err(RequestError::DuplicateProtocol(protocol.clone()));
        }
    }
    Ok(())
}

/// A fresh `Sec-WebSocket-Key` from 16 random bytes.
pub fn new_key(random: [u8; 16]) -> String {
    //= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
    //# The request MUST include a header field with the name
    //# |Sec-WebSocket-Key|.  The value of this header field MUST be a
    //# nonce consisting of a randomly selected 16-byte value that has
    //# been base64-encoded (see Section 4 of [RFC4648]).
    BASE64.encode(random)
}

/// Appends the opening request (§4.1) to `out`. `extensions` is the `Sec-WebSocket-Extensions`
/// offer, if any.
pub fn write_request(
    request: &ClientRequest,
    key: &str,
    extensions: Option<&str>,
    out: &mut Vec<u8>,
) {
    //= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
    //# 1.   The handshake MUST be a valid HTTP request as specified by
    //#      [RFC2616].
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
    //# The method of the request MUST be GET, and the HTTP version MUST
    //# be at least 1.1.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
    //# 5.   The request MUST contain an |Upgrade| header field whose value
    //#      MUST include the "websocket" keyword.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
    //# 6.   The request MUST contain a |Connection| header field whose value
    //#      MUST include the "Upgrade" token.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
    //# 9.   The request MUST include a header field with the name
    //#      |Sec-WebSocket-Version|.  The value of this header field MUST be
    //#      13.
    let mut head = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: {WEBSOCKET_VERSION}\r\n",
        request.resource, request.host
    );
    //= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
    //= type=exception
    //= reason=This is not a browser client: there is no script whose origin it could name. The
    //= reason=application may set one (ClientRequest::origin), as the RFC allows a non-browser
    //= reason=client to.
    //# 8.   The request MUST include a header field with the name |Origin|
    //#      [RFC6454] if the request is coming from a browser client.
    if let Some(origin) = &request.origin {
        head.push_str(&format!("Origin: {origin}\r\n"));
    }
    if !request.protocols.is_empty() {
        head.push_str(&format!(
            "Sec-WebSocket-Protocol: {}\r\n",
            request.protocols.join(", ")
        ));
    }
    if let Some(extensions) = extensions {
        head.push_str(&format!("Sec-WebSocket-Extensions: {extensions}\r\n"));
    }
    for (name, value) in &request.headers {
        if !name.is_empty() && !format!("{name}{value}").contains(['\r', '\n']) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str("\r\n");
    out.extend_from_slice(head.as_bytes());
}

/// A response other than `101 Switching Protocols`, kept for the caller (a redirect, a 401, a
/// 404...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// Every header field in order.
    pub headers: Vec<(String, String)>,
}

/// A rule of §4.1 (or RFC 7692) that the server's response broke. The client fails the
/// connection: it closes TCP without opening.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseError {
    /// The response head is larger than `Limits::max_head_size`.
    HeadTooLarge,
    /// The bytes are not an HTTP/1.1 response.
    Malformed,
    /// The status is not 101: the server refused (its answer is kept).
    Refused(Box<Refusal>),
    /// No `Upgrade: websocket`.
    MissingUpgrade,
    /// No `Connection: Upgrade`.
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Accept` is missing or does not match the key.
    WrongAccept,
    /// An extension the client did not offer.
    ExtensionNotOffered,
    /// A `Sec-WebSocket-Extensions` value that does not match the ABNF, or permessage-deflate
    /// parameters that RFC 7692 §7.1 does not allow in a response.
    InvalidExtension,
    /// A subprotocol the client did not offer.
    ProtocolNotOffered,
}

impl ResponseError {
    /// The section of RFC 6455 (or RFC 7692) that sets the rule.
    pub fn section(&self) -> &'static str {
        match self {
            ResponseError::HeadTooLarge => "limit",
            ResponseError::Malformed => "4.1",
            ResponseError::Refused(_) => "4.1",
            ResponseError::MissingUpgrade => "4.1",
            ResponseError::MissingConnectionUpgrade => "4.1",
            ResponseError::WrongAccept => "4.1",
            ResponseError::ExtensionNotOffered => "4.1",
            ResponseError::InvalidExtension => "RFC 7692 7.1",
            ResponseError::ProtocolNotOffered => "4.1",
        }
    }
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseError::HeadTooLarge => f.write_str("response head too large"),
            ResponseError::Malformed => f.write_str("malformed HTTP response"),
            ResponseError::Refused(refusal) => {
                write!(f, "refused: {} {}", refusal.status, refusal.reason)
            }
            ResponseError::MissingUpgrade => f.write_str("no Upgrade: websocket in the response"),
            ResponseError::MissingConnectionUpgrade => {
                f.write_str("no Connection: Upgrade in the response")
            }
            ResponseError::WrongAccept => f.write_str("Sec-WebSocket-Accept does not match"),
            ResponseError::ExtensionNotOffered => f.write_str("an extension that was not offered"),
            ResponseError::InvalidExtension => f.write_str("invalid Sec-WebSocket-Extensions"),
            ResponseError::ProtocolNotOffered => f.write_str("a subprotocol that was not offered"),
        }
    }
}

impl std::error::Error for ResponseError {}

/// What the server agreed to in a valid `101` response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The subprotocol the server chose, if any.
    pub protocol: Option<String>,
    /// The permessage-deflate parameters, if the server accepted the offer.
    pub deflate: Option<Negotiated>,
}

/// Checks the server's response head against §4.1, in the order the section lists the rules.
/// `key` is the `Sec-WebSocket-Key` that was sent, `offered` the request, and `deflate` whether
/// permessage-deflate was offered.
pub fn check_response(
    head: &[u8],
    key: &str,
    offered: &ClientRequest,
    deflate: &DeflateConfig,
    limits: &Limits,
) -> Result<Accepted, ResponseError> {
    let mut headers = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(ResponseError::Malformed),
    }
    let (Some(status), Some(1)) = (response.code, response.version) else {
        return Err(ResponseError::Malformed);
    };
    let values = |name: &'static str| {
        response
            .headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.trim_ascii())
    };
    let tokens = |name: &'static str| {
        values(name)
            .filter_map(|v| std::str::from_utf8(v).ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
    };
    //= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
    //# The client MUST validate the server's response as follows:
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
    //# 1.  If the status code received from the server is not 101, the
    //#     client handles the response per HTTP [RFC2616] procedures.
    if status != 101 {
        return Err(ResponseError::Refused(Box::new(Refusal {
            status,
            reason: response.reason.unwrap_or_default().to_string(),
            headers: response
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_string(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect(),
        })));
    }
    //= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
    //# 2.  If the response lacks an |Upgrade| header field or the |Upgrade|
    //#     header field contains a value that is not an ASCII case-
    //#     insensitive match for the value "websocket", the client MUST
    //#     _Fail the WebSocket Connection_.
    if !tokens("Upgrade").any(|t| t.eq_ignore_ascii_case("websocket")) {
        return Err(ResponseError::MissingUpgrade);
    }
    //= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
    //# 3.  If the response lacks a |Connection| header field or the
    //#     |Connection| header field doesn't contain a token that is an
    //#     ASCII case-insensitive match for the value "Upgrade", the client
    //#     MUST _Fail the WebSocket Connection_.
    if !tokens("Connection").any(|t| t.eq_ignore_ascii_case("upgrade")) {
        return Err(ResponseError::MissingConnectionUpgrade);
    }
    //= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
    //# 4.  If the response lacks a |Sec-WebSocket-Accept| header field or
    //#     the |Sec-WebSocket-Accept| contains a value other than the
    //#     base64-encoded SHA-1 of the concatenation of the |Sec-WebSocket-
    //#     Key| (as a string, not base64-decoded) with the string "258EAFA5-
    //#     E914-47DA-95CA-C5AB0DC85B11" but ignoring any leading and
    //#     trailing whitespace, the client MUST _Fail the WebSocket
    //#     Connection_.
    let expected = accept_key(key.as_bytes());
    let mut accepts = values("Sec-WebSocket-Accept");
    match (accepts.next(), accepts.next()) {
        (Some(accept), None) if accept == expected.as_bytes() => {}
        _ => return Err(ResponseError::WrongAccept),
    }
    //= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
    //# 5.  If the response includes a |Sec-WebSocket-Extensions| header
    //#     field and this header field indicates the use of an extension
    //#     that was not present in the client's handshake (the server has
    //#     indicated an extension not requested by the client), the client
    //#     MUST _Fail the WebSocket Connection_.
    let deflate = deflate::check_server_response(values("Sec-WebSocket-Extensions"), deflate)?;
    //= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
    //# 6.  If the response includes a |Sec-WebSocket-Protocol| header field
    //#     and this header field indicates the use of a subprotocol that was
    //#     not present in the client's handshake (the server has indicated a
    //#     subprotocol not requested by the client), the client MUST _Fail
    //#     the WebSocket Connection_.
    let mut protocols = values("Sec-WebSocket-Protocol");
    let protocol = match (protocols.next(), protocols.next()) {
        (None, _) => None,
        (Some(chosen), None) => {
            let chosen =
                std::str::from_utf8(chosen).map_err(|_| ResponseError::ProtocolNotOffered)?;
            if !offered.protocols.iter().any(|p| p == chosen) {
                return Err(ResponseError::ProtocolNotOffered);
            }
            Some(chosen.to_string())
        }
        (Some(_), Some(_)) => return Err(ResponseError::ProtocolNotOffered),
    };
    Ok(Accepted { protocol, deflate })
}

#[cfg(test)]
mod tests;
