//! Interoperability with an independent implementation: a tungstenite client against our server
//! in both modes.

mod common;

use common::{Mode, config, start};
use tungstenite::{Message, connect};

#[test]
fn tungstenite_client_echo() {
    let server = start(Mode::Echo, config());
    let (mut socket, response) = connect(format!("ws://{}/", server.addr)).expect("connect");
    assert_eq!(response.status(), 101);
    socket
        .send(Message::text("hello from tungstenite"))
        .unwrap();
    assert_eq!(
        socket.read().unwrap(),
        Message::text("hello from tungstenite")
    );
    let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    socket.send(Message::binary(big.clone())).unwrap();
    assert_eq!(socket.read().unwrap(), Message::binary(big));
    socket.send(Message::Ping(b"ping".to_vec().into())).unwrap();
    assert_eq!(
        socket.read().unwrap(),
        Message::Pong(b"ping".to_vec().into())
    );
    socket.close(None).unwrap();
    loop {
        match socket.read() {
            Ok(Message::Close(_)) => {}
            Ok(other) => panic!("unexpected {other:?}"),
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("close: {e}"),
        }
    }
}

#[test]
fn tungstenite_clients_broadcast() {
    let server = start(Mode::Broadcast, config());
    let url = format!("ws://{}/", server.addr);
    let (mut a, _) = connect(&url).unwrap();
    let (mut b, _) = connect(&url).unwrap();
    // Make sure both are registered before sending.
    b.send(Message::Ping(Vec::new().into())).unwrap();
    assert!(matches!(b.read().unwrap(), Message::Pong(_)));
    a.send(Message::text("to everyone")).unwrap();
    assert_eq!(a.read().unwrap(), Message::text("to everyone"));
    assert_eq!(b.read().unwrap(), Message::text("to everyone"));
}
