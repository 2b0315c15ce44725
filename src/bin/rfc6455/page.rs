//! The chat page, served as plain HTTP/1.1 on the WebSocket port: `GET /` (and `HEAD /`), and in
//! broadcast mode `GET /NAME` for a room, 404 for other paths, 405 for other methods. Every response closes the connection; a browser opens a new one
//! for the WebSocket anyway.
//!
//! The page, its stylesheet and its script are embedded in the binary and served with a strict
//! `Content-Security-Policy`: scripts and styles from this origin only, and WebSocket connections
//! back to this host only.

use base64::Engine;
use rfc6455::handshake::Request;
use rfc6455::http::Response;
use sha1::{Digest, Sha1};
use std::sync::OnceLock;

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_str!("page/index.html"),
    },
    Asset {
        path: "/chat.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("page/chat.js"),
    },
    Asset {
        path: "/favicon.svg",
        content_type: "image/svg+xml",
        body: include_str!("page/favicon.svg"),
    },
    Asset {
        path: "/chat.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("page/chat.css"),
    },
];

/// A strong validator for an asset: the base64 of the SHA-1 of its bytes, computed once.
fn etag(index: usize) -> &'static str {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    &ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|asset| {
                let digest = Sha1::digest(asset.body.as_bytes());
                format!(
                    "\"{}\"",
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..12])
                )
            })
            .collect()
    })[index]
}

/// Whether `host` is safe to repeat inside a header (a host name or address and a port).
fn is_plain_host(host: &str) -> bool {
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
}

/// Paths the server answers itself, besides the page's own files: never room names.
const OPERATOR_PATHS: &[&str] = &[rfc6455::server::METRICS_PATH, rfc6455::server::HEALTH_PATH];

/// Whether the server answers `path` itself (a file of the page, `/index.html`, `/metrics`,
/// `/healthz`), so that it can be no room.
pub fn is_reserved(path: &str) -> bool {
    path == "/index.html"
        || ASSETS.iter().any(|asset| asset.path == path)
        || OPERATOR_PATHS.contains(&path)
}

/// Answers a plain (non-WebSocket) request. With `rooms`, every room's path (`/NAME`, see
/// [`room_of`](crate::broadcast::room_of)) serves the page too, which then joins that room.
pub fn respond(request: &Request<'_>, rooms: bool) -> Response {
    let path = request.path.split(['?', '#']).next().unwrap_or("/");
    let path = if path == "/index.html" || rooms && crate::broadcast::room_of(path).is_some() {
        "/"
    } else {
        path
    };
    let head_only = request.method == "HEAD";
    if request.method != "GET" && !head_only {
        return Response::text(405, "method not allowed\n").header("Allow", "GET, HEAD");
    }
    let Some(index) = ASSETS.iter().position(|asset| asset.path == path) else {
        let response = Response::text(404, "not found\n");
        return if head_only {
            response.without_body()
        } else {
            response
        };
    };
    let asset = &ASSETS[index];
    let etag = etag(index);
    let host = request
        .header("Host")
        .and_then(|h| std::str::from_utf8(h).ok())
        .filter(|h| is_plain_host(h));
    let connect_src = match host {
        Some(host) => format!("'self' ws://{host} wss://{host}"),
        None => "'self'".to_string(),
    };
    let not_modified = request
        .header("If-None-Match")
        .is_some_and(|tag| tag == etag.as_bytes());
    let response = Response::new(if not_modified { 304 } else { 200 })
        .with_body(asset.content_type, asset.body.as_bytes())
        .header("ETag", etag)
        .header("Cache-Control", "no-cache")
        .header("X-Content-Type-Options", "nosniff")
        .header("Referrer-Policy", "no-referrer")
        .header("X-Frame-Options", "DENY")
        .header(
            "Content-Security-Policy",
            format!(
                "default-src 'none'; script-src 'self'; style-src 'self'; connect-src {connect_src}; \
                 img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
            ),
        );
    if head_only {
        response.without_body()
    } else {
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rfc6455::handshake::parse_request;
    use rfc6455::limits::Limits;

    fn get(method: &str, path: &str, extra: &str) -> (u16, String) {
        let head = format!("{method} {path} HTTP/1.1\r\nHost: localhost:3000\r\n{extra}\r\n");
        let request = parse_request(head.as_bytes(), &Limits::default()).unwrap();
        let response = respond(&request, true);
        let mut out = Vec::new();
        response.write_to(&mut out);
        (response.status(), String::from_utf8(out).unwrap())
    }

    #[test]
    fn serves_the_page_with_headers() {
        let (status, response) = get("GET", "/", "");
        assert_eq!(status, 200);
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}\r\n", body.len())));
        assert!(head.contains("Content-Type: text/html; charset=utf-8"));
        assert!(head.contains("connect-src 'self' ws://localhost:3000 wss://localhost:3000"));
        assert!(body.contains("<script src=\"/chat.js\""));
    }

    #[test]
    fn head_has_headers_and_no_body() {
        let (status, response) = get("HEAD", "/chat.js", "");
        assert_eq!(status, 200);
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        assert!(body.is_empty());
        assert!(head.contains(&format!(
            "Content-Length: {}\r\n",
            include_str!("page/chat.js").len()
        )));
    }

    #[test]
    fn a_room_serves_the_page_in_broadcast_mode_only() {
        let (status, response) = get("GET", "/team-a?x", "");
        assert_eq!(status, 200);
        assert!(response.contains("<script src=\"/chat.js\""));
        let head = "GET /team-a HTTP/1.1\r\nHost: localhost:3000\r\n\r\n";
        let request = parse_request(head.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(
            respond(&request, false).status(),
            404,
            "echo mode has no rooms"
        );
        assert_eq!(get("GET", "/a/b", "").0, 404);
        assert_eq!(
            get("GET", "/metrics", "").0,
            404,
            "the shell answers it, or no one"
        );
    }

    #[test]
    fn unknown_paths_and_methods() {
        assert_eq!(get("GET", "/no/such/file", "").0, 404);
        let (status, response) = get("POST", "/", "");
        assert_eq!(status, 405);
        assert!(response.contains("Allow: GET, HEAD\r\n"));
    }

    #[test]
    fn conditional_get_is_304() {
        let (_, response) = get("GET", "/", "");
        let etag = response
            .lines()
            .find_map(|l| l.strip_prefix("ETag: "))
            .unwrap()
            .to_string();
        let (status, response) = get("GET", "/", &format!("If-None-Match: {etag}\r\n"));
        assert_eq!(status, 304);
        assert!(response.ends_with("\r\n\r\n"), "no body");
    }

    #[test]
    fn odd_host_is_not_echoed_into_the_policy() {
        let head = "GET / HTTP/1.1\r\nHost: a b;c\r\n\r\n";
        let request = parse_request(head.as_bytes(), &Limits::default()).unwrap();
        let mut out = Vec::new();
        respond(&request, true).write_to(&mut out);
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("connect-src 'self';")
        );
    }
}
