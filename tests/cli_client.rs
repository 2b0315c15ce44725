//! `rfc6455 client`, the terminal client, run as a child process in a pipe (standard input piped,
//! no terminal) against servers from the library in this process: echo, the close code both
//! ways, a refused upgrade, subprotocols, header fields, binary messages, and a server that
//! breaks the protocol.

mod common;

use common::{Mode, config, start, start_reporting, start_with};
use rfc6455::handshake::accept_key;
use rfc6455::server::{Context, Handler, Opening, PeerId, Upgrade};
use rfc6455::{CloseCause, CloseCode, Message, MessageKind, Request};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The longest a client run may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(20);

/// Runs `rfc6455 client` with `args`, writes `stdin` to it and closes it, and returns what the
/// client printed and its exit status.
fn client(args: &[&str], stdin: &[u8]) -> Output {
    run_client(args, stdin, false)
}

/// Runs `rfc6455 client` with `args` and writes `stdin` to it; closes its standard input after
/// that, or, with `keep_open`, only once it has exited.
fn run_client(args: &[&str], stdin: &[u8], keep_open: bool) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rfc6455"))
        .arg("client")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rfc6455 client");
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        // The client may exit before reading everything (a refused upgrade): that is its answer.
        let _ = input.write_all(&stdin);
        keep_open.then_some(input)
    });
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        stdout.read_to_end(&mut bytes).unwrap();
        bytes
    });
    let err = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        stderr.read_to_end(&mut bytes).unwrap();
        bytes
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rfc6455 client {args:?} did not exit within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    writer.join().unwrap();
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("ws://{addr}{path}")
}

fn stdout(output: &Output) -> &str {
    std::str::from_utf8(&output.stdout).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn once_in_a_pipe_sends_a_line_and_prints_the_reply() {
    let server = start(Mode::Echo, config());
    let output = client(&[&url(server.addr, "/"), "--once"], b"hi\n");
    assert_eq!(stdout(&output), "hi\n", "{}", stderr(&output));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("closed with 1000"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn without_once_every_echo_before_the_servers_close_is_printed() {
    let (server, closes) = start_reporting(Mode::Echo, config());
    let lines: String = (0..300).map(|i| format!("line {i} héllo\n")).collect();
    for compression in [&[][..], &["--no-compression"]] {
        let address = url(server.addr, "/");
        let args = [&[address.as_str()][..], compression].concat();
        let output = client(&args, lines.as_bytes());
        assert_eq!(stdout(&output), lines, "{}", stderr(&output));
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let closure = closes.recv_timeout(DEADLINE).unwrap();
        assert_eq!(closure.code, CloseCode::NORMAL);
        assert_eq!(closure.cause, CloseCause::ClosedByPeer);
    }
}

#[test]
fn a_line_without_newline_and_crlf_lines_are_sent_as_lines() {
    let server = start(Mode::Echo, config());
    let output = client(&[&url(server.addr, "/")], b"one\r\n\ntwo");
    assert_eq!(stdout(&output), "one\n\ntwo\n", "{}", stderr(&output));
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn another_close_code_exits_3_and_reaches_the_server() {
    let (server, closes) = start_reporting(Mode::Echo, config());
    let output = client(&[&url(server.addr, "/"), "--close", "4000:bye"], b"x\n");
    assert_eq!(stdout(&output), "x\n");
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(stderr(&output).contains("4000"), "{}", stderr(&output));
    let closure = closes.recv_timeout(DEADLINE).unwrap();
    assert_eq!(
        (closure.code, closure.reason.as_str()),
        (CloseCode(4000), "bye")
    );
    assert!(closure.was_clean());
}

#[test]
fn an_invalid_close_code_is_a_usage_error() {
    let output = client(&["ws://127.0.0.1:9/", "--close", "1006"], b"");
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--close"), "{}", stderr(&output));
}

#[test]
fn a_subprotocol_that_is_not_a_token_is_refused_before_connecting() {
    // Port 9 (discard) has no server: the answer comes before any connection is tried.
    let output = client(&["ws://127.0.0.1:9/", "--protocol", "a b"], b"");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("\"a b\" is not an HTTP token"),
        "{}",
        stderr(&output)
    );
}

/// Accepts on one path only, greets every connection with what it asked for (subprotocol,
/// `X-Token`), and answers every message with a binary message of the same bytes; closes with
/// 4001 when asked.
struct Greeter;

impl Handler for Greeter {
    fn on_upgrade(&mut self, request: &Request<'_>, _: SocketAddr) -> Upgrade {
        if request.path != "/greet" {
            return Upgrade::Refuse(rfc6455::Response::text(404, "no such place\n"));
        }
        match request
            .protocols()
            .find(|p| ["chat", "superchat"].contains(p))
        {
            Some(protocol) => Upgrade::accept_with(protocol),
            None => Upgrade::accept(),
        }
    }

    fn on_open(&mut self, ctx: &mut Context<'_>, peer: PeerId, opening: &Opening<'_>) {
        let token = opening
            .request
            .header("X-Token")
            .map(|value| String::from_utf8_lossy(value).into_owned());
        let greeting = format!(
            "protocol={} token={}",
            opening.protocol.unwrap_or("-"),
            token.as_deref().unwrap_or("-")
        );
        let _ = ctx.send(peer, MessageKind::Text, greeting.as_bytes());
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, peer: PeerId, message: Message<'_>) {
        if message.as_text() == Some("close please") {
            let _ = ctx.close(peer, CloseCode(4001), "as asked");
        } else {
            let _ = ctx.send(peer, MessageKind::Binary, message.as_bytes());
        }
    }
}

#[test]
fn a_refused_upgrade_exits_2_with_the_status() {
    let server = start_with(Greeter, config());
    let output = client(&[&url(server.addr, "/elsewhere")], b"hi\n");
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("404"), "{}", stderr(&output));
    assert_eq!(stdout(&output), "");
    // The server's Origin check refuses with 403.
    let server = start(Mode::Echo, config());
    let output = client(
        &[
            &url(server.addr, "/"),
            "--origin",
            "https://elsewhere.example",
        ],
        b"",
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("403"), "{}", stderr(&output));
}

#[test]
fn subprotocols_are_offered_in_order() {
    let server = start_with(Greeter, config());
    let address = url(server.addr, "/greet");
    for (offer, chosen) in [
        (["superchat", "chat"], "superchat"),
        (["chat", "superchat"], "chat"),
        (["v9", "chat"], "chat"),
    ] {
        let args = [
            &address,
            "--once",
            "--protocol",
            offer[0],
            "--protocol",
            offer[1],
        ];
        let output = client(&args, b"");
        assert_eq!(
            stdout(&output),
            format!("protocol={chosen} token=-\n"),
            "{}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(&format!("subprotocol {chosen}")),
            "{}",
            stderr(&output)
        );
        assert_eq!(output.status.code(), Some(0));
    }
}

#[test]
fn header_fields_reach_the_server() {
    let server = start_with(Greeter, config());
    let output = client(
        &[
            &url(server.addr, "/greet"),
            "--once",
            "-H",
            "X-Token: s3cret",
            "--header",
            "X-Other: 1",
        ],
        b"",
    );
    assert_eq!(stdout(&output), "protocol=- token=s3cret\n");
    assert_eq!(output.status.code(), Some(0));
    let output = client(&[&url(server.addr, "/greet"), "-H", "no colon"], b"");
    assert_eq!(output.status.code(), Some(2), "a usage error");
}

#[test]
fn binary_messages_print_as_hex_or_with_binary_raw() {
    let server = start_with(Greeter, config());
    let address = url(server.addr, "/greet");
    // The greeting is text; the answer to "hi" comes back binary (before the server's Close).
    let output = client(&[&address], b"hi\n");
    assert_eq!(stdout(&output), "protocol=- token=-\n6869\n");
    let output = client(&[&address, "--binary"], b"hi\n");
    assert_eq!(stdout(&output), "protocol=- token=-\nhi\n");
    // Lines that are not UTF-8 go out with --binary, and come back byte for byte.
    let server = start(Mode::Echo, config());
    let line = b"\x00\x01\xfe\xffz";
    let output = client(
        &[&url(server.addr, "/"), "--binary"],
        &[&line[..], b"\n"].concat(),
    );
    assert_eq!(output.stdout, [&line[..], b"\n"].concat());
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn the_servers_close_ends_the_client_with_its_code() {
    let server = start_with(Greeter, config());
    let output = run_client(&[&url(server.addr, "/greet")], b"close please\n", true);
    assert_eq!(stdout(&output), "protocol=- token=-\n");
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("closed by the server with 4001 \"as asked\""),
        "{}",
        stderr(&output)
    );
}

/// A server that completes the handshake and then does `then` with the socket.
fn raw_server(then: impl FnOnce(&mut std::net::TcpStream) + Send + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut key = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(value) = line.strip_prefix("Sec-WebSocket-Key: ") {
                key = value.trim().to_string();
            }
            if line == "\r\n" {
                break;
            }
        }
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            accept_key(key.as_bytes())
        );
        stream.write_all(response.as_bytes()).unwrap();
        then(&mut stream);
    });
    addr
}

#[test]
fn a_server_that_breaks_the_protocol_exits_4() {
    let (closes, got) = std::sync::mpsc::channel();
    let addr = raw_server(move |stream| {
        // A masked frame: a server must never send one (RFC 6455 §5.1).
        stream
            .write_all(&[0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2])
            .unwrap();
        let mut reply = Vec::new();
        let _ = stream.read_to_end(&mut reply);
        let _ = closes.send(reply);
    });
    let output = run_client(&[&url(addr, "/")], b"", true);
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    assert!(stderr(&output).contains("1002"), "{}", stderr(&output));
    let reply = got.recv_timeout(DEADLINE).unwrap();
    assert_eq!(reply[0], 0x88, "the client's Close, masked: {reply:?}");
    let code = [reply[6] ^ reply[2], reply[7] ^ reply[3]];
    assert_eq!(u16::from_be_bytes(code), 1002);
}

#[test]
fn a_server_that_drops_tcp_exits_4_with_1006() {
    let addr = raw_server(|stream| {
        let _ = stream.shutdown(std::net::Shutdown::Both);
    });
    let output = run_client(&[&url(addr, "/")], b"", true);
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    assert!(stderr(&output).contains("1006"), "{}", stderr(&output));
}

#[test]
fn ping_interval_pings_a_silent_server() {
    let (pinged, got) = std::sync::mpsc::channel();
    let addr = raw_server(move |stream| {
        // The first frame from the client: a masked ping with an empty payload.
        let mut head = [0u8; 6];
        stream.read_exact(&mut head).unwrap();
        let _ = pinged.send(head[..2].to_vec());
        let _ = stream.shutdown(std::net::Shutdown::Both);
    });
    let start = Instant::now();
    let output = run_client(&[&url(addr, "/"), "--ping-interval", "0.2"], b"", true);
    assert_eq!(got.recv_timeout(DEADLINE).unwrap(), [0x89, 0x80]);
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
}
