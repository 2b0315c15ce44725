//! The `rfc6455` binary as an operator meets it: its flags, its signals and its log.

mod common;

use common::{Binary, Client};
use rfc6455::frame::Opcode;

#[test]
fn the_debug_log_names_each_connection_and_says_how_it_ended() {
    let server = Binary::start_with_log("echo", &[], "debug");
    let mut clean = Client::connect(server.addr);
    clean.send_frame(true, Opcode::Close, &1000u16.to_be_bytes());
    assert_eq!(clean.expect_close(), Some(1000));
    clean.expect_eof();
    drop(clean);
    let clean_id = accepted_id(&server, 0);
    let line = server
        .wait_for_log(&[&format!(
            "{clean_id}: closed cleanly, code 1000, by the client"
        )])
        .expect("the clean close is logged");
    assert!(line.contains("DEBUG"), "{line}");

    let dropped = Client::connect(server.addr);
    drop(dropped);
    let dropped_id = accepted_id(&server, 1);
    assert_ne!(clean_id, dropped_id, "each connection has its own name");
    server
        .wait_for_log(&[&format!(
            "{dropped_id}: dropped, code 1006: TCP closed before the closing handshake"
        )])
        .expect("the drop is logged");
}

/// The id the log gave the `nth` accepted connection (`#key.generation`).
fn accepted_id(server: &Binary, nth: usize) -> String {
    server.wait_for_log(&["accepted as #"]).expect("accepted");
    let give_up = std::time::Instant::now() + common::READ_TIMEOUT;
    loop {
        let ids: Vec<String> = server
            .log_lines()
            .iter()
            .filter_map(|line| line.split("accepted as ").nth(1))
            .map(str::to_owned)
            .collect();
        if let Some(id) = ids.get(nth) {
            return id.clone();
        }
        assert!(std::time::Instant::now() < give_up, "{ids:?}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn a_size_flag_takes_a_unit() {
    let server = Binary::start("echo", &["--max-message-size", "1KiB"]);
    let mut client = Client::connect(server.addr);
    client.send_text(&"a".repeat(1024));
    assert_eq!(client.expect_frame().payload.len(), 1024);
    client.send_text(&"a".repeat(2048));
    assert_eq!(client.expect_close(), Some(1009));
}

#[test]
fn a_duration_flag_takes_a_unit() {
    // Pinged after 200 ms of silence, dropped 200 ms later: well before the test's read timeout.
    let server = Binary::start(
        "echo",
        &["--idle-timeout", "200ms", "--pong-timeout", "0.2"],
    );
    let mut client = Client::connect(server.addr);
    let started = std::time::Instant::now();
    assert_eq!(client.expect_frame().opcode, Opcode::Ping);
    client.expect_eof();
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
}

#[test]
fn bind_takes_a_host_name() {
    let server = Binary::start("echo", &["--bind", "localhost"]);
    assert!(server.addr.ip().is_loopback(), "{}", server.addr);
    let mut client = Client::connect(server.addr);
    client.send_text("hi");
    assert_eq!(client.expect_frame().payload, b"hi");
}

#[test]
fn the_startup_line_is_printed_whatever_rust_log_says() {
    // Binary::start_with_log waits for the line: it would wait forever without it.
    let server = Binary::start_with_log("broadcast", &[], "off");
    let line = &server.log_lines()[0];
    assert!(
        line.starts_with(&format!(
            "listening on ws://{} in broadcast mode",
            server.addr
        )),
        "{line}"
    );
    assert_eq!(server.metrics_addr, Some(server.addr));
    assert!(line.ends_with(&format!("at most {} connections", server.max_connections)));
}

/// The subprotocol the server answered with, if any.
fn agreed_subprotocol(head: &str) -> Option<&str> {
    head.lines()
        .find_map(|line| line.strip_prefix("Sec-WebSocket-Protocol: "))
}

#[test]
fn subprotocol_accepts_the_clients_first_listed_offer() {
    let server = Binary::start("echo", &["--subprotocol", "chat"]);
    let offer = "Sec-WebSocket-Protocol: superchat, chat\r\n";
    let (mut client, head) = Client::connect_with(server.addr, offer);
    assert_eq!(agreed_subprotocol(&head), Some("chat"), "{head}");
    client.send_text("hi");
    assert_eq!(client.expect_frame().payload, b"hi");
    // Nothing listed offered: the connection opens without a subprotocol.
    let offer = "Sec-WebSocket-Protocol: superchat\r\n";
    let (_, head) = Client::connect_with(server.addr, offer);
    assert_eq!(agreed_subprotocol(&head), None, "{head}");
}

#[test]
fn subprotocol_star_accepts_the_clients_first_offer_in_both_modes() {
    for mode in ["echo", "broadcast"] {
        let server = Binary::start(mode, &["--subprotocol", "*"]);
        let offer = "Sec-WebSocket-Protocol: superchat, chat\r\n";
        let (_, head) = Client::connect_with(server.addr, offer);
        assert_eq!(
            agreed_subprotocol(&head),
            Some("superchat"),
            "{mode}: {head}"
        );
        // A client that offers none gets none.
        let (_, head) = Client::connect_with(server.addr, "");
        assert_eq!(agreed_subprotocol(&head), None, "{mode}: {head}");
    }
}

#[test]
fn a_second_sigint_exits_at_once_with_130() {
    let mut server = Binary::start("broadcast", &[]);
    // A client that never answers the close keeps the shutdown waiting (5 s by default).
    let mut client = Client::connect(server.addr);
    server.signal("INT");
    assert_eq!(client.expect_close(), Some(1001));
    let second = std::time::Instant::now();
    server.signal("INT");
    let (status, log) = server.wait_for_exit(std::time::Duration::from_secs(4));
    assert!(
        second.elapsed() < std::time::Duration::from_secs(2),
        "exited {:?} after the second SIGINT",
        second.elapsed()
    );
    assert_eq!(status.code(), Some(130), "{status}");
    assert!(
        log.iter().any(|line| line.contains("again: exiting now")),
        "{log:?}"
    );
}

#[test]
fn the_counters_are_logged_at_shutdown_one_line_each_with_the_metrics_names() {
    let mut server = Binary::start("echo", &[]);
    let mut client = Client::connect(server.addr);
    client.send_text("hi");
    assert_eq!(client.expect_frame().payload, b"hi");
    server.signal("TERM");
    assert_eq!(client.expect_close(), Some(1001));
    client.send_frame(true, Opcode::Close, &1001u16.to_be_bytes());
    client.expect_eof();
    drop(client);
    let (status, log) = server.wait_for_exit(std::time::Duration::from_secs(10));
    assert!(status.success(), "{status}");
    let counters: Vec<&str> = log
        .iter()
        .skip_while(|line| !line.contains("shutdown complete"))
        .skip(1)
        .map(|line| {
            assert!(
                line.contains(" INFO "),
                "each counter is a log record: {line}"
            );
            line.rsplit("] ").next().unwrap()
        })
        .collect();
    for expected in [
        "rfc6455_connections_open 0",
        "rfc6455_connections_accepted_total 1",
        "rfc6455_upgrades_total 1",
        "rfc6455_messages_received_total 1",
        "rfc6455_messages_sent_total 1",
        "rfc6455_close_frames_sent_total{code=\"1001\"} 1",
        "rfc6455_close_frames_received_total{code=\"1001\"} 1",
    ] {
        assert!(counters.contains(&expected), "{expected} in {counters:#?}");
    }
}
