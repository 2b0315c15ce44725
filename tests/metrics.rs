//! The operators' routes over real sockets: `/metrics` counts what the test did, `/healthz`
//! turns to 503 during a shutdown, and `--metrics-bind` moves both to a second listener.

mod common;

use common::{Client, Mode, config, read_response_head, read_to_eof, start, tcp};
use rfc6455::frame::Opcode;
use rfc6455::server::Config;
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Sends a GET and returns the status, the response head and the body.
fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut stream = tcp(addr);
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let (status, head) = read_response_head(&mut stream);
    let body = String::from_utf8(read_to_eof(&mut stream)).unwrap();
    (status, head, body)
}

/// Scrapes `/metrics` and parses every sample: `name{labels}` to value.
fn scrape(addr: SocketAddr) -> HashMap<String, u64> {
    let (status, head, body) = get(addr, "/metrics");
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
        "{head}"
    );
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("name value");
            (series.to_owned(), value.parse().expect("an integer"))
        })
        .collect()
}

/// Scrapes until `done` holds (the server handles a client's EOF in its own time). Returns the
/// last scrape and how many came before it.
fn scrape_until(
    addr: SocketAddr,
    done: impl Fn(&HashMap<String, u64>) -> bool,
) -> (HashMap<String, u64>, u64) {
    let give_up = Instant::now() + Duration::from_secs(10);
    let mut before = 0;
    loop {
        let metrics = scrape(addr);
        if done(&metrics) || Instant::now() > give_up {
            return (metrics, before);
        }
        before += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn metrics_count_what_the_clients_did() {
    let server = start(Mode::Echo, config());
    let addr = server.addr;
    // A message echoed, then a clean close with 1000.
    let mut first = Client::connect(addr);
    first.send_text("hello");
    assert_eq!(first.expect_frame().payload, b"hello");
    first.send_frame(true, Opcode::Close, &1000u16.to_be_bytes());
    assert_eq!(first.expect_close(), Some(1000));
    first.expect_eof();
    drop(first);
    // One that stays open.
    let _second = Client::connect(addr);
    // An upgrade refused by the Origin policy.
    let mut refused = tcp(addr);
    write!(
        refused,
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://evil.example\r\n\r\n",
        common::KEY
    )
    .unwrap();
    assert_eq!(read_response_head(&mut refused).0, 403);
    read_to_eof(&mut refused);
    drop(refused);

    // Every connection but the open client and the current scrape is gone, once the server
    // has seen each one's TCP close.
    let (metrics, _) = scrape_until(addr, |m| {
        m["rfc6455_connections_closed_total"] + 2 == m["rfc6455_connections_accepted_total"]
    });
    let value = |series: &str| {
        *metrics
            .get(series)
            .unwrap_or_else(|| panic!("{series} missing: {metrics:?}"))
    };
    assert_eq!(value("rfc6455_connections_open"), 1);
    assert_eq!(value("rfc6455_upgrades_total"), 2);
    assert_eq!(value("rfc6455_upgrades_refused_total{status=\"403\"}"), 1);
    assert_eq!(value("rfc6455_messages_received_total"), 1);
    assert_eq!(value("rfc6455_messages_sent_total"), 1);
    assert_eq!(
        value("rfc6455_close_frames_received_total{code=\"1000\"}"),
        1
    );
    assert_eq!(value("rfc6455_close_frames_sent_total{code=\"1000\"}"), 1);
    assert_eq!(value("rfc6455_slow_consumer_disconnects_total"), 0);
    assert_eq!(value("rfc6455_timeouts_total"), 0);
    // Three WebSocket clients and the scrapes, this one included (each scrape before it was
    // answered, and counted, first).
    let scrapes = value("rfc6455_http_responses_total") + 1;
    assert_eq!(value("rfc6455_connections_accepted_total"), 3 + scrapes);
    // The echoed "hello" both ways, at least, with the handshakes.
    assert!(value("rfc6455_received_bytes_total") > 2 * 100);
    assert!(value("rfc6455_sent_bytes_total") > 2 * 100);
    assert!(!metrics.keys().any(|k| k.contains("1001")), "{metrics:?}");
}

#[test]
fn healthz_is_200_while_running_and_503_while_shutting_down() {
    let server = start(Mode::Echo, config());
    let addr = server.addr;
    let (status, _, body) = get(addr, "/healthz");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    // A client that holds its connection open keeps the shutdown going.
    let mut client = Client::connect(addr);
    server.handle.shutdown();
    assert_eq!(client.expect_close(), Some(1001));
    let (status, _, body) = get(addr, "/healthz");
    assert_eq!((status, body.as_str()), (503, "shutting down\n"));
    // New upgrades are refused while shutting down; the metrics are still served.
    let mut late = tcp(addr);
    late.write_all(common::upgrade_request(addr).as_bytes())
        .unwrap();
    assert_eq!(read_response_head(&mut late).0, 503);
    drop(late);
    let metrics = scrape(addr);
    assert_eq!(metrics["rfc6455_upgrades_refused_total{status=\"503\"}"], 1);
    assert_eq!(metrics["rfc6455_close_frames_sent_total{code=\"1001\"}"], 1);
    // Once the client answers, the server ends without waiting for the shutdown timeout.
    let started = Instant::now();
    client.send_frame(true, Opcode::Close, &1001u16.to_be_bytes());
    client.expect_eof();
    drop(client);
    let stats = server.stop();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(stats.open, 0);
}

#[test]
fn with_a_metrics_address_the_routes_move_there_and_nothing_else_is_served_there() {
    let server = start(
        Mode::Echo,
        Config {
            metrics_addr: Some("127.0.0.1:0".parse().unwrap()),
            ..config()
        },
    );
    let metrics_addr = server.metrics_addr.expect("a metrics listener");
    assert_ne!(metrics_addr, server.addr);
    // On the WebSocket port, the routes are the application's (the library's default: 404).
    for path in ["/metrics", "/healthz"] {
        assert_eq!(get(server.addr, path).0, 404, "{path}");
    }
    // On the metrics listener, only they are served.
    let metrics = scrape(metrics_addr);
    assert_eq!(metrics["rfc6455_connections_open"], 0);
    assert_eq!(get(metrics_addr, "/healthz").0, 200);
    assert_eq!(get(metrics_addr, "/").0, 404);
    // No WebSocket there.
    let mut upgrade = tcp(metrics_addr);
    upgrade
        .write_all(common::upgrade_request(metrics_addr).as_bytes())
        .unwrap();
    assert_eq!(read_response_head(&mut upgrade).0, 404);
    // Its own address is an allowed Host, and the Host allow-list still holds there.
    let host = |host: &str| {
        let mut stream = tcp(metrics_addr);
        write!(stream, "GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
        read_response_head(&mut stream).0
    };
    assert_eq!(host(&format!("localhost:{}", metrics_addr.port())), 200);
    assert_eq!(host("attacker.example"), 403);
    // The WebSocket port still works, and the listener counts what it served.
    let mut client = Client::connect(server.addr);
    client.send_text("hi");
    assert_eq!(client.expect_frame().payload, b"hi");
    let metrics = scrape(metrics_addr);
    assert_eq!(metrics["rfc6455_connections_open"], 1);
    assert_eq!(metrics["rfc6455_upgrades_refused_total{status=\"404\"}"], 1);
}

#[test]
fn the_binary_serves_metrics_only_on_metrics_bind() {
    let server = common::Binary::start("broadcast", &["--metrics-bind", "127.0.0.1:0"]);
    let metrics_addr = server.metrics_addr.expect("the startup line says where");
    assert_ne!(metrics_addr.port(), server.addr.port());
    // The WebSocket port serves the chat page, and /metrics and /healthz are not found there.
    assert_eq!(get(server.addr, "/").0, 200);
    assert_eq!(get(server.addr, "/metrics").0, 404);
    assert_eq!(get(server.addr, "/healthz").0, 404);
    assert_eq!(get(metrics_addr, "/healthz").0, 200);
    assert_eq!(get(metrics_addr, "/").0, 404);
    let _client = Client::connect(server.addr);
    let (metrics, scrapes) = scrape_until(metrics_addr, |m| m["rfc6455_connections_open"] == 1);
    assert_eq!(metrics["rfc6455_connections_open"], 1);
    // The page, the three 404s and the health check, on either listener, and the scrapes before.
    assert_eq!(metrics["rfc6455_http_responses_total"], 5 + scrapes);
}

#[test]
fn the_binary_serves_metrics_on_its_port_by_default() {
    let server = common::Binary::start("echo", &[]);
    assert_eq!(server.metrics_addr, Some(server.addr));
    assert_eq!(get(server.addr, "/healthz").0, 200);
    assert_eq!(scrape(server.addr)["rfc6455_http_responses_total"], 1);
}
