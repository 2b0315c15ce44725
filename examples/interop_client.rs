//! The crate's blocking client against another implementation's echo server: the checks that
//! `tests/interop/run.sh` runs against Python's websockets and Node's ws.
//!
//! ```text
//! cargo run --release --example interop_client -- NAME ws://127.0.0.1:PORT
//! ```
//!
//! The server must serve the paths of `tests/interop/echo_server.py`: `/` echoes every message
//! as the same type, `/info` first sends the extensions it agreed to (`none` without one), then
//! echoes, `/refuse` answers the upgrade with 403, and `/close/N` closes at once with code N.
//! Prints one line per check (`ok` or `FAIL` and why), then `N passed, N failed`; exits 1 if
//! any check failed or none ran.

use rfc6455::client::{Client, ClientOptions, Error};
use rfc6455::client_handshake::ResponseError;
use rfc6455::{CloseCause, CloseCode, MessageKind};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The longest any one read may wait.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Message sizes echoed, up to the default message limit (16 MiB).
const SIZES: [usize; 9] = [0, 1, 125, 126, 65_535, 65_536, 1 << 20, 4 << 20, 16 << 20];

type Check = fn(&str) -> Result<(), String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [name, base] = &args[..] else {
        eprintln!("usage: interop_client NAME ws://HOST:PORT");
        return ExitCode::from(2);
    };
    let base = base.trim_end_matches('/');
    let checks: [(&str, Check); 8] = [
        ("echo with permessage-deflate", |b| echo(b, true)),
        ("echo without compression", |b| echo(b, false)),
        ("1000 messages in a row, compressed", |b| pipelined(b, true)),
        ("1000 messages in a row, uncompressed", |b| {
            pipelined(b, false)
        }),
        ("close from the client with 4000", client_close),
        ("close from the server with 4001", |b| server_close(b, 4001)),
        ("close from the server with 1001", |b| server_close(b, 1001)),
        ("refused upgrade (403)", refused),
    ];
    let (mut passed, mut failed) = (0, 0);
    for (check, run) in checks {
        let start = Instant::now();
        match run(base) {
            Ok(()) => {
                passed += 1;
                println!(
                    "ok   {name}: {check} ({:.2} s)",
                    start.elapsed().as_secs_f64()
                );
            }
            Err(why) => {
                failed += 1;
                println!("FAIL {name}: {check}: {why}");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 && passed > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn connect(url: &str, compression: bool) -> Result<Client, String> {
    let mut options = ClientOptions::default();
    options.config.deflate.enabled = compression;
    let mut client = Client::connect_with(url, options).map_err(|e| format!("{url}: {e}"))?;
    client.set_read_timeout(Some(READ_TIMEOUT));
    Ok(client)
}

/// The next message, as a text or binary payload.
fn recv(client: &mut Client) -> Result<(MessageKind, Vec<u8>), String> {
    match client.recv() {
        Ok(Some(message)) => Ok((message.kind(), message.into_payload())),
        Ok(None) => Err(format!("closed: {:?}", client.closure())),
        Err(e) => Err(format!("recv: {e}")),
    }
}

/// Bytes that do not compress (xorshift), or text that does.
fn payload(len: usize, kind: MessageKind) -> Vec<u8> {
    match kind {
        MessageKind::Binary => {
            let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ len as u64;
            (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect()
        }
        MessageKind::Text => "héllo wörld, ".bytes().cycle().take(len).collect(),
    }
}

/// Text and binary messages of every size come back unchanged, and the extension was (or was
/// not) agreed as offered; then a clean close with 1000.
fn echo(base: &str, compression: bool) -> Result<(), String> {
    let mut client = connect(&format!("{base}/info"), compression)?;
    let (_, info) = recv(&mut client)?;
    let info = String::from_utf8_lossy(&info).into_owned();
    if info.contains("permessage-deflate") != compression {
        return Err(format!("the server agreed to extensions {info:?}"));
    }
    for kind in [MessageKind::Text, MessageKind::Binary] {
        for len in SIZES {
            // A text payload of `len` bytes cut inside a two-byte character is not UTF-8.
            let mut sent = payload(len, kind);
            while kind == MessageKind::Text && std::str::from_utf8(&sent).is_err() {
                sent.pop();
            }
            client
                .send(kind, &sent)
                .map_err(|e| format!("send {len}: {e}"))?;
            let (got_kind, got) = recv(&mut client)?;
            if got_kind != kind || got != sent {
                return Err(format!(
                    "{kind:?} of {} bytes came back as {got_kind:?} of {} bytes",
                    sent.len(),
                    got.len()
                ));
            }
        }
    }
    expect_clean_close(&mut client, CloseCode::NORMAL)
}

/// Many small messages sent before any echo is read, then read back in order (with
/// compression, the server's context carries from message to message).
fn pipelined(base: &str, compression: bool) -> Result<(), String> {
    let mut client = connect(&format!("{base}/"), compression)?;
    let messages: Vec<String> = (0..1000)
        .map(|i| format!("message {i}: {}", "abc".repeat(i % 700)))
        .collect();
    for message in &messages {
        client
            .send(MessageKind::Text, message.as_bytes())
            .map_err(|e| format!("send: {e}"))?;
    }
    for (i, message) in messages.iter().enumerate() {
        let (_, got) = recv(&mut client)?;
        if got != message.as_bytes() {
            return Err(format!("message {i} came back different"));
        }
    }
    expect_clean_close(&mut client, CloseCode::NORMAL)
}

fn expect_clean_close(client: &mut Client, code: CloseCode) -> Result<(), String> {
    let closure = client.close(code, "").map_err(|e| format!("close: {e}"))?;
    if !closure.was_clean() || closure.code != code {
        return Err(format!("closing with {}: {closure:?}", code.0));
    }
    Ok(())
}

/// Our Close with 4000 and a reason: the server answers it, and the close is clean.
fn client_close(base: &str) -> Result<(), String> {
    let mut client = connect(&format!("{base}/"), true)?;
    client
        .send(MessageKind::Text, b"before closing")
        .map_err(|e| e.to_string())?;
    recv(&mut client)?;
    let closure = client
        .close(CloseCode(4000), "bye")
        .map_err(|e| format!("close: {e}"))?;
    match (closure.was_clean(), closure.code, closure.cause) {
        (true, CloseCode(4000), CloseCause::ClosedByUs(CloseCode(4000))) => Ok(()),
        _ => Err(format!("{closure:?}")),
    }
}

/// The server's Close with `code` and its reason: the client answers, the close is clean.
fn server_close(base: &str, code: u16) -> Result<(), String> {
    let mut client = connect(&format!("{base}/close/{code}"), true)?;
    match client.recv() {
        Ok(None) => {}
        other => return Err(format!("expected the server's close, got {other:?}")),
    }
    let closure = client.closure().ok_or("no closure")?;
    let reason_from_server = closure.reason.starts_with("bye from ");
    match (closure.was_clean(), closure.cause, reason_from_server) {
        (true, CloseCause::ClosedByPeer, true) if closure.code == CloseCode(code) => Ok(()),
        _ => Err(format!("{closure:?}")),
    }
}

/// A refusal is reported with the server's status.
fn refused(base: &str) -> Result<(), String> {
    match Client::connect(&format!("{base}/refuse")) {
        Err(Error::Handshake(ResponseError::Refused(refusal))) if refusal.status == 403 => Ok(()),
        Err(e) => Err(format!("expected a 403 refusal, got {e}")),
        Ok(_) => Err("the upgrade was accepted".into()),
    }
}
