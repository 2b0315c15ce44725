//! The binary's broadcast mode with rooms: the URL path names the room, `/` is everyone's room
//! (as broadcast always was), paths the server answers itself are no rooms, and clients that ask
//! for it are told how many people their room has.

mod common;

use common::{Binary, Client, read_response_head, tcp, upgrade_request};
use rfc6455::frame::Opcode;
use std::io::Write;

fn text(client: &mut Client) -> String {
    let frame = client.expect_frame();
    assert_eq!(frame.opcode, Opcode::Text, "{frame:?}");
    String::from_utf8(frame.payload).unwrap()
}

fn join(server: &Binary, path: &str) -> Client {
    let mut client = Client::connect_with_path(server.addr, path, "").0;
    // A round trip: open and in its room before the test goes on.
    client.send_frame(true, Opcode::Ping, b"");
    assert_eq!(client.expect_frame().opcode, Opcode::Pong);
    client
}

#[test]
fn each_room_hears_only_its_own_messages() {
    let server = Binary::start("broadcast", &[]);
    let mut root = [join(&server, "/"), join(&server, "/")];
    let mut team = [join(&server, "/team-a"), join(&server, "/team-a")];
    let mut other = join(&server, "/team-b");
    root[0].send_text("to everyone");
    team[1].send_text("to team-a");
    other.send_text("to team-b");
    for client in &mut root {
        assert_eq!(text(client), "to everyone", "the sender included");
    }
    for client in &mut team {
        assert_eq!(text(client), "to team-a");
    }
    assert_eq!(text(&mut other), "to team-b");
    // Nothing crossed: each client's next message is the next one of its own room.
    root[1].send_text("second");
    team[0].send_text("second a");
    other.send_text("second b");
    assert_eq!(text(&mut root[0]), "second");
    assert_eq!(text(&mut team[1]), "second a");
    assert_eq!(text(&mut other), "second b");
}

#[test]
fn paths_the_server_answers_are_no_rooms() {
    let server = Binary::start("broadcast", &[]);
    for path in [
        "/chat.js",
        "/metrics",
        "/healthz",
        "/index.html",
        "/a/b",
        "/caf%C3%A9",
        "/..",
    ] {
        let mut stream = tcp(server.addr);
        let request = upgrade_request(server.addr).replace("GET /chat ", &format!("GET {path} "));
        stream.write_all(request.as_bytes()).unwrap();
        let (status, head) = read_response_head(&mut stream);
        assert_eq!(status, 404, "{path}: {head}");
    }
}

#[test]
fn a_client_that_asks_is_told_how_many_are_in_its_room() {
    let server = Binary::start("broadcast", &[]);
    let mut watcher = Client::connect_with_path(server.addr, "/team-a?presence", "").0;
    assert_eq!(
        text(&mut watcher),
        r#"{"presence":{"room":"team-a","count":1}}"#
    );
    let plain = join(&server, "/team-a");
    assert_eq!(
        text(&mut watcher),
        r#"{"presence":{"room":"team-a","count":2}}"#
    );
    let _elsewhere = join(&server, "/");
    drop(plain);
    assert_eq!(
        text(&mut watcher),
        r#"{"presence":{"room":"team-a","count":1}}"#
    );
    // A forged presence message is not relayed; a plain client never gets presence messages.
    let mut plain = join(&server, "/team-a");
    assert_eq!(
        text(&mut watcher),
        r#"{"presence":{"room":"team-a","count":2}}"#
    );
    plain.send_text(r#"{"presence":{"room":"team-a","count":99}}"#);
    plain.send_text("hi");
    assert_eq!(text(&mut watcher), "hi");
    assert_eq!(text(&mut plain), "hi");
}

#[test]
fn the_redis_flags_are_checked_before_listening() {
    for (args, why) in [
        (
            &["echo", "--redis", "redis://127.0.0.1"][..],
            "--redis is for broadcast mode",
        ),
        (
            &["broadcast", "--redis", "http://127.0.0.1"][..],
            "--redis:",
        ),
        (
            &["broadcast", "--redis", "redis://127.0.0.1:port"][..],
            "--redis:",
        ),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_rfc6455"))
            .args(args)
            .args(["--port", "0"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(why), "{args:?}: {stderr}");
    }
}

#[test]
fn without_redis_at_startup_the_rooms_still_work_here() {
    // Nothing listens on the discard port: the links cannot connect, and the server serves its
    // own clients, saying once that Redis is out of reach.
    let server = Binary::start("broadcast", &["--redis", "redis://127.0.0.1:9"]);
    let mut a = join(&server, "/r");
    let mut b = join(&server, "/r");
    a.send_text("local");
    assert_eq!(text(&mut a), "local");
    assert_eq!(text(&mut b), "local");
    server
        .wait_for_log(&["redis publisher link: cannot connect to 127.0.0.1:9"])
        .expect("logged");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let warnings = server
        .log_lines()
        .iter()
        .filter(|l| l.contains("cannot connect"))
        .count();
    assert_eq!(warnings, 2, "once per link, not once per attempt");
}
