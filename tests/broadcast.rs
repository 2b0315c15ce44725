//! Broadcast mode over real sockets: every client, the sender included, gets every message in
//! order.

mod common;

use common::{Client, Mode, config, start};
use rfc6455::frame::Opcode;

#[test]
fn every_client_receives_every_message_in_order() {
    let server = start(Mode::Broadcast, config());
    let mut clients: Vec<Client> = (0..5).map(|_| Client::connect(server.addr)).collect();
    // A round trip per client makes sure all are open before anyone sends.
    for client in &mut clients {
        client.send_frame(true, Opcode::Ping, b"");
        assert_eq!(client.expect_frame().opcode, Opcode::Pong);
    }
    for round in 0..20 {
        for (sender, client) in clients.iter_mut().enumerate() {
            client.send_text(&format!("{round}:{sender}"));
        }
    }
    for client in &mut clients {
        let mut next_round = [0usize; 5];
        for _ in 0..100 {
            let frame = client.expect_frame();
            assert_eq!(frame.opcode, Opcode::Text);
            let text = String::from_utf8(frame.payload).unwrap();
            let (round, sender) = text.split_once(':').unwrap();
            let (round, sender): (usize, usize) = (round.parse().unwrap(), sender.parse().unwrap());
            assert_eq!(
                round, next_round[sender],
                "messages from {sender} out of order"
            );
            next_round[sender] += 1;
        }
        assert_eq!(next_round, [20; 5]);
    }
}

#[test]
fn binary_messages_keep_their_type() {
    let server = start(Mode::Broadcast, config());
    let mut a = Client::connect(server.addr);
    let mut b = Client::connect(server.addr);
    b.send_frame(true, Opcode::Ping, b"");
    assert_eq!(b.expect_frame().opcode, Opcode::Pong);
    a.send_frame(true, Opcode::Binary, &[0, 159, 146, 150]);
    for client in [&mut a, &mut b] {
        let frame = client.expect_frame();
        assert_eq!(
            (frame.opcode, frame.payload),
            (Opcode::Binary, vec![0, 159, 146, 150])
        );
    }
}
