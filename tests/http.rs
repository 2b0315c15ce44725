//! Plain HTTP on the WebSocket port (the binary's chat page, 404, 405; the library's default
//! 404) and the `Origin` policy, over real sockets.

mod common;

use common::{Binary, Mode, config, read_response_head, read_to_eof, start, tcp, upgrade_request};
use rfc6455::handshake::OriginPolicy;
use std::io::Write;

fn request(addr: std::net::SocketAddr, text: &str) -> (u16, String, Vec<u8>) {
    let mut stream = tcp(addr);
    stream.write_all(text.as_bytes()).unwrap();
    let (status, head) = read_response_head(&mut stream);
    let body = read_to_eof(&mut stream);
    (status, head, body)
}

#[test]
fn get_slash_serves_the_chat_page() {
    let server = Binary::start("broadcast", &[]);
    let (status, head, body) = request(
        server.addr,
        &format!("GET / HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr),
    );
    assert_eq!(status, 200);
    assert!(head.contains("Content-Type: text/html; charset=utf-8\r\n"));
    assert!(head.contains(&format!("Content-Length: {}\r\n", body.len())));
    assert!(
        head.contains(&format!("connect-src 'self' ws://{}", server.addr)),
        "{head}"
    );
    assert!(head.contains("X-Content-Type-Options: nosniff\r\n"));
    let page = String::from_utf8(body).unwrap();
    assert!(page.contains("/chat.js"));
    for asset in ["/chat.js", "/chat.css"] {
        let (status, _, body) = request(
            server.addr,
            &format!("GET {asset} HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr),
        );
        assert_eq!(status, 200);
        assert!(!body.is_empty());
    }
}

#[test]
fn a_library_server_answers_404_by_default() {
    let server = start(Mode::Echo, config());
    let (status, head, body) = request(
        server.addr,
        &format!("GET / HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr),
    );
    assert_eq!(status, 404, "{head}");
    assert_eq!(body, b"not found\n");
}

#[test]
fn head_404_and_405() {
    let server = Binary::start("echo", &[]);
    let host = server.addr;
    let (status, head, body) = request(
        server.addr,
        &format!("HEAD / HTTP/1.1\r\nHost: {host}\r\n\r\n"),
    );
    assert_eq!(status, 200);
    assert!(body.is_empty() && !head.contains("Content-Length: 0\r\n"));
    assert_eq!(
        request(
            server.addr,
            &format!("GET /missing HTTP/1.1\r\nHost: {host}\r\n\r\n")
        )
        .0,
        404
    );
    let (status, head, _) = request(
        server.addr,
        &format!("DELETE / HTTP/1.1\r\nHost: {host}\r\n\r\n"),
    );
    assert_eq!(status, 405);
    assert!(head.contains("Allow: GET, HEAD\r\n"));
}

fn upgrade_with_origin(addr: std::net::SocketAddr, origin: &str) -> u16 {
    let text = upgrade_request(addr).replace("\r\n\r\n", &format!("\r\nOrigin: {origin}\r\n\r\n"));
    let mut stream = tcp(addr);
    stream.write_all(text.as_bytes()).unwrap();
    read_response_head(&mut stream).0
}

#[test]
fn default_origin_policy_is_same_host() {
    let server = start(Mode::Broadcast, config());
    assert_eq!(
        upgrade_with_origin(server.addr, &format!("http://{}", server.addr)),
        101
    );
    assert_eq!(
        upgrade_with_origin(server.addr, "https://evil.example"),
        403
    );
    assert_eq!(upgrade_with_origin(server.addr, "null"), 403);
}

#[test]
fn origin_allow_list() {
    let mut cfg = config();
    cfg.connection.origins = OriginPolicy::AllowList(vec!["https://chat.example".into()]);
    let server = start(Mode::Broadcast, cfg);
    assert_eq!(
        upgrade_with_origin(server.addr, "https://chat.example"),
        101
    );
    assert_eq!(
        upgrade_with_origin(server.addr, &format!("http://{}", server.addr)),
        403
    );
}

#[test]
fn a_rebound_host_name_gets_403_on_the_page_and_the_upgrade() {
    let server = Binary::start("broadcast", &[]);
    let port = server.addr.port();
    let rebound = format!("attacker.example:{port}");
    let (status, _, _) = request(
        server.addr,
        &format!("GET / HTTP/1.1\r\nHost: {rebound}\r\n\r\n"),
    );
    assert_eq!(status, 403);
    let upgrade = upgrade_request(server.addr)
        .replace(
            &format!("Host: {}", server.addr),
            &format!("Host: {rebound}"),
        )
        .replace("\r\n\r\n", &format!("\r\nOrigin: http://{rebound}\r\n\r\n"));
    let (status, _, _) = request(server.addr, &upgrade);
    assert_eq!(status, 403, "a matching Origin is not enough");
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        let (status, _, _) = request(
            server.addr,
            &format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n"),
        );
        assert_eq!(status, 200, "{host}");
    }
}

#[test]
fn allowed_hosts_extend_the_defaults_and_a_star_allows_any() {
    let server = Binary::start("echo", &["--allowed-host", "chat.example"]);
    let get = |host: &str| {
        request(
            server.addr,
            &format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n"),
        )
        .0
    };
    assert_eq!(get("chat.example"), 200);
    assert_eq!(get(&server.addr.to_string()), 200);
    assert_eq!(get("other.example"), 403);
    let any = Binary::start("echo", &["--allowed-host", "*"]);
    let (status, _, _) = request(any.addr, "GET / HTTP/1.1\r\nHost: other.example\r\n\r\n");
    assert_eq!(status, 200);
}

#[test]
fn http_1_1_without_host_or_with_two_is_400() {
    let server = start(Mode::Echo, config());
    assert_eq!(request(server.addr, "GET / HTTP/1.1\r\n\r\n").0, 400);
    let two = format!(
        "GET / HTTP/1.1\r\nHost: {0}\r\nHost: {0}\r\n\r\n",
        server.addr
    );
    assert_eq!(request(server.addr, &two).0, 400);
}
