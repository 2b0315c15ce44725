//! Topics (rooms) over real sockets, without a broker: subscribe, unsubscribe, publish (with
//! and without the sender), counts, topic name rules, and the end of a closed connection's
//! subscriptions, through `Context` and through the cross-thread `Handle`.

mod common;

use common::{Client, config, start_with};
use rfc6455::frame::Opcode;
use rfc6455::server::{Context, Handler, Opening, PeerId, TopicError};
use rfc6455::{Message, MessageKind};
use std::sync::mpsc;

/// Joins the topic named by the request path. Text messages are commands:
/// - `join T` / `leave T`: subscribe to or unsubscribe from T, answering `ok true|false` or
///   `error ...`;
/// - `count T`: answers `count N`;
/// - `mine`: answers the sorted topics of the connection;
/// - `say T text`: publishes `text` to T, the sender included, answering nothing;
/// - `others T text`: publishes `text` to T, the sender left out;
/// - `local T text`: publishes `text` to this process's subscribers of T (all of them here);
/// - `say-tell T text`, `say-join T text`, `say-leave T text`: publishes `text` to T, then
///   answers `told`, joins T or leaves T (answering as `join` and `leave` do), all in the same
///   call: what was published first must reach the connection first, and only if it was a
///   subscriber when it was published;
/// - `say-echo T text`: publishes `text` to T, then forwards the command back to the sender;
/// - `say-bye T text`: publishes `text` to T, then closes the connection (1000, "bye").
///
/// When a connection closes, `closed` is published to `/departures`.
struct Rooms {
    ids: mpsc::Sender<PeerId>,
}

impl Handler for Rooms {
    fn on_open(&mut self, ctx: &mut Context<'_>, peer: PeerId, opening: &Opening<'_>) {
        let _ = ctx.subscribe(peer, opening.request.path);
        let _ = self.ids.send(peer);
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, _peer: PeerId, _closure: &rfc6455::Closure) {
        ctx.publish("/departures", MessageKind::Text, b"closed");
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, peer: PeerId, message: Message<'_>) {
        let text = message.as_text().unwrap_or_default().to_owned();
        let mut words = text.splitn(3, ' ');
        let reply = match (words.next(), words.next(), words.next()) {
            (Some("join"), Some(topic), None) => Some(match ctx.subscribe(peer, topic) {
                Ok(new) => format!("ok {new}"),
                Err(e) => format!("error {e:?}"),
            }),
            (Some("leave"), Some(topic), None) => {
                Some(format!("ok {}", ctx.unsubscribe(peer, topic)))
            }
            (Some("count"), Some(topic), None) => Some(format!("count {}", ctx.subscribers(topic))),
            (Some("mine"), None, None) => {
                let mut mine: Vec<&str> = ctx.topics(peer).collect();
                mine.sort_unstable();
                Some(mine.join(","))
            }
            (Some("say"), Some(topic), Some(text)) => {
                ctx.publish(topic, MessageKind::Text, text.as_bytes());
                None
            }
            (Some("local"), Some(topic), Some(text)) => {
                ctx.publish_local(topic, MessageKind::Text, text.as_bytes());
                None
            }
            (Some("say-echo"), Some(topic), Some(text)) => {
                ctx.publish(topic, MessageKind::Text, text.as_bytes());
                let _ = ctx.forward(peer, message);
                None
            }
            (Some("say-bye"), Some(topic), Some(text)) => {
                ctx.publish(topic, MessageKind::Text, text.as_bytes());
                let _ = ctx.close(peer, rfc6455::CloseCode::NORMAL, "bye");
                None
            }
            (Some(then @ ("say-tell" | "say-join" | "say-leave")), Some(topic), Some(text)) => {
                ctx.publish(topic, MessageKind::Text, text.as_bytes());
                Some(match then {
                    "say-tell" => "told".to_owned(),
                    "say-join" => format!("ok {}", ctx.subscribe(peer, topic).is_ok_and(|new| new)),
                    _ => format!("ok {}", ctx.unsubscribe(peer, topic)),
                })
            }
            (Some("others"), Some(topic), Some(text)) => {
                ctx.publish_except(topic, peer, MessageKind::Text, text.as_bytes());
                None
            }
            _ => Some("?".to_owned()),
        };
        if let Some(reply) = reply {
            let _ = ctx.send(peer, MessageKind::Text, reply.as_bytes());
        }
    }
}

fn text(client: &mut Client) -> String {
    let frame = client.expect_frame();
    assert_eq!(frame.opcode, Opcode::Text);
    String::from_utf8(frame.payload).unwrap()
}

fn ask(client: &mut Client, command: &str) -> String {
    client.send_text(command);
    text(client)
}

fn connect(addr: std::net::SocketAddr, path: &str) -> Client {
    let (mut client, _) = Client::connect_with_path(addr, path, "");
    // A round trip: the connection is open and subscribed before the test goes on.
    ask(&mut client, "mine");
    client
}

#[test]
fn publish_reaches_the_subscribers_of_its_topic_only() {
    let (ids, _) = mpsc::channel();
    let server = start_with(Rooms { ids }, config());
    let mut a1 = connect(server.addr, "/a");
    let mut a2 = connect(server.addr, "/a");
    let mut b1 = connect(server.addr, "/b");
    assert_eq!(ask(&mut a1, "count /a"), "count 2");
    assert_eq!(ask(&mut a1, "count /b"), "count 1");
    assert_eq!(ask(&mut a1, "count /nobody"), "count 0");

    a1.send_text("say /a hello a");
    assert_eq!(text(&mut a1), "hello a", "the sender is a subscriber");
    assert_eq!(text(&mut a2), "hello a");
    b1.send_text("say /b hello b");
    assert_eq!(text(&mut b1), "hello b");
    // Nothing from /a reached /b, nor from /b reached /a: the next message each gets is this.
    assert_eq!(ask(&mut a1, "mine"), "/a");
    assert_eq!(ask(&mut a2, "mine"), "/a");
    assert_eq!(ask(&mut b1, "mine"), "/b");

    // Skip the sender.
    a1.send_text("others /a not for a1");
    assert_eq!(text(&mut a2), "not for a1");
    assert_eq!(
        ask(&mut a1, "mine"),
        "/a",
        "a1 got nothing before its own answer"
    );

    // Without a broker, publishing locally is publishing.
    a2.send_text("local /a only here");
    assert_eq!(text(&mut a1), "only here");
    assert_eq!(text(&mut a2), "only here");

    // A non-subscriber may publish; it receives nothing.
    b1.send_text("say /a from b");
    assert_eq!(text(&mut a1), "from b");
    assert_eq!(text(&mut a2), "from b");
    assert_eq!(ask(&mut b1, "mine"), "/b");
}

#[test]
fn subscribe_and_unsubscribe_change_what_a_connection_receives() {
    let (ids, _) = mpsc::channel();
    let server = start_with(Rooms { ids }, config());
    let mut a = connect(server.addr, "/a");
    let mut b = connect(server.addr, "/b");
    assert_eq!(ask(&mut b, "join /a"), "ok true");
    assert_eq!(ask(&mut b, "join /a"), "ok false", "once");
    assert_eq!(ask(&mut b, "mine"), "/a,/b");
    assert_eq!(ask(&mut b, "count /a"), "count 2");
    a.send_text("say /a one");
    assert_eq!(text(&mut a), "one");
    assert_eq!(text(&mut b), "one");
    assert_eq!(ask(&mut b, "leave /a"), "ok true");
    assert_eq!(ask(&mut b, "leave /a"), "ok false");
    a.send_text("say /a two");
    assert_eq!(text(&mut a), "two");
    assert_eq!(ask(&mut b, "count /a"), "count 1", "b got nothing from /a");
}

#[test]
fn what_is_published_reaches_a_connection_before_what_is_sent_to_it_after() {
    let (ids, _) = mpsc::channel();
    let server = start_with(Rooms { ids }, config());
    let mut a = connect(server.addr, "/a");
    let mut b = connect(server.addr, "/b");
    // Published, then a reply to the sender, a subscriber: the publication first.
    a.send_text("say-tell /a one");
    assert_eq!(text(&mut a), "one");
    assert_eq!(text(&mut a), "told");
    // Published, then the sender joins: it was not a subscriber when it was published.
    b.send_text("say-join /a two");
    assert_eq!(text(&mut b), "ok true");
    assert_eq!(text(&mut a), "two");
    assert_eq!(ask(&mut b, "mine"), "/a,/b", "b got nothing else");
    // Published, then the sender leaves: it was a subscriber when it was published.
    a.send_text("say-leave /a three");
    assert_eq!(text(&mut a), "three");
    assert_eq!(text(&mut a), "ok true");
    assert_eq!(text(&mut b), "three");
    assert_eq!(ask(&mut a, "mine"), "", "a left, and got nothing else");
    assert_eq!(ask(&mut b, "mine"), "/a,/b", "b got nothing else");
    // Published, then the command forwarded back to the sender: a small one, and one large
    // enough to be written from the read buffer where it lies.
    for size in [10, 10_000] {
        let echoed = "e".repeat(size);
        b.send_text(&format!("say-echo /b {echoed}"));
        assert_eq!(text(&mut b), echoed);
        assert_eq!(text(&mut b), format!("say-echo /b {echoed}"));
    }
    // Published, then the sender is closed: the publication before the Close.
    b.send_text("say-bye /a four");
    assert_eq!(text(&mut b), "four");
    assert_eq!(b.expect_close(), Some(1000));
}

#[test]
fn what_a_handler_publishes_as_a_connection_closes_reaches_the_subscribers() {
    let (ids, _) = mpsc::channel();
    let server = start_with(Rooms { ids }, config());
    let mut watcher = connect(server.addr, "/departures");
    let mut leaving = connect(server.addr, "/a");
    leaving.send_frame(true, Opcode::Close, &1000u16.to_be_bytes());
    assert_eq!(leaving.expect_close(), Some(1000));
    leaving.expect_eof();
    // Published from `on_close`, while the server writes what the pass produced.
    let frame = watcher
        .poll_frame(std::time::Duration::from_secs(2))
        .expect("the departure, within 2 s");
    assert_eq!(frame.payload, b"closed");
}

#[test]
fn many_messages_published_at_once_arrive_whole_in_order_to_the_right_connections() {
    let (ids, _) = mpsc::channel();
    let server = start_with(Rooms { ids }, config());
    let mut a1 = connect(server.addr, "/a");
    let mut a2 = connect(server.addr, "/a");
    let mut b = connect(server.addr, "/b");
    assert_eq!(ask(&mut b, "join /a"), "ok true");
    // One write of many commands, most of them read and handled in one pass of the server:
    // small and large messages (over the size that is copied rather than shared), to /a with
    // and without the sender, and to /b, interleaved.
    let large = "L".repeat(3000);
    let mut commands = Vec::new();
    let (mut to_a1, mut to_a2, mut to_b) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..300 {
        let (command, payload) = match i % 5 {
            0 => ("say /a", format!("a{i}")),
            1 => ("others /a", format!("o{i}")),
            2 => ("say /b", format!("b{i}")),
            3 => ("say /a", format!("{large}{i}")),
            _ => ("others /a", format!("{large}{i}")),
        };
        commands.extend(Client::encode(
            true,
            Opcode::Text,
            format!("{command} {payload}").as_bytes(),
        ));
        if command.ends_with("/b") {
            to_b.push(payload);
        } else {
            if command.starts_with("say") {
                to_a1.push(payload.clone());
            }
            to_a2.push(payload.clone());
            to_b.push(payload);
        }
    }
    std::io::Write::write_all(&mut a1.stream, &commands).unwrap();
    for (client, expected) in [(&mut a1, to_a1), (&mut a2, to_a2), (&mut b, to_b)] {
        for (n, payload) in expected.iter().enumerate() {
            assert_eq!(&text(client), payload, "message {n}");
        }
        assert_eq!(ask(client, "count /a"), "count 3", "nothing else came");
    }
}

#[test]
fn topic_names_are_checked() {
    let (ids, _) = mpsc::channel();
    let server = start_with(Rooms { ids }, config());
    let mut a = connect(server.addr, "/a");
    assert_eq!(
        ask(&mut a, &format!("join {}", "x".repeat(129))),
        format!("error {:?}", TopicError::TooLong { len: 129 })
    );
    assert_eq!(
        ask(&mut a, "join news*"),
        format!("error {:?}", TopicError::InvalidByte { byte: b'*', at: 4 })
    );
    assert!(ask(&mut a, "join caf\u{e9}").starts_with("error InvalidByte"));
    assert_eq!(ask(&mut a, "mine"), "/a");
    // A path that is no topic name: the connection opens in no topic.
    let (mut odd, _) = Client::connect_with_path(server.addr, "/a?b=c", "");
    assert_eq!(ask(&mut odd, "mine"), "");
}

#[test]
fn a_connection_may_be_in_only_so_many_topics() {
    let (ids, _) = mpsc::channel();
    let server = start_with(
        Rooms { ids },
        rfc6455::server::Config {
            max_topics_per_connection: 2,
            ..config()
        },
    );
    let mut a = connect(server.addr, "/a");
    assert_eq!(ask(&mut a, "join /b"), "ok true");
    assert_eq!(
        ask(&mut a, "join /c"),
        format!("error {:?}", TopicError::TooManyTopics { limit: 2 })
    );
}

#[test]
fn subscriptions_end_when_the_connection_closes() {
    let (ids, _) = mpsc::channel();
    let server = start_with(Rooms { ids }, config());
    let mut a = connect(server.addr, "/a");
    let mut gone = connect(server.addr, "/a");
    assert_eq!(ask(&mut gone, "join /only-gone"), "ok true");
    assert_eq!(ask(&mut a, "count /a"), "count 2");
    gone.send_frame(true, Opcode::Close, &1000u16.to_be_bytes());
    assert_eq!(gone.expect_close(), Some(1000));
    gone.expect_eof();
    // The server removes the connection once its TCP is closed; poll the count until then.
    let give_up = std::time::Instant::now() + common::READ_TIMEOUT;
    while ask(&mut a, "count /a") != "count 1" {
        assert!(std::time::Instant::now() < give_up, "still counted");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(ask(&mut a, "count /only-gone"), "count 0");
    a.send_text("say /a still here");
    assert_eq!(text(&mut a), "still here");
}

#[test]
fn the_handle_subscribes_publishes_and_counts_from_another_thread() {
    let (ids, opened) = mpsc::channel();
    let server = start_with(Rooms { ids }, config());
    let mut a = connect(server.addr, "/a");
    let a_id = opened.recv().unwrap();
    let mut b = connect(server.addr, "/b");
    let b_id = opened.recv().unwrap();
    let handle = server.handle.clone();
    handle.subscribe(b_id, "/a").unwrap();
    assert_eq!(handle.subscribers("/a"), Ok(2));
    handle
        .publish("/a", MessageKind::Text, &b"from the handle"[..])
        .unwrap();
    assert_eq!(text(&mut a), "from the handle");
    assert_eq!(text(&mut b), "from the handle");
    handle
        .publish_except("/a", a_id, MessageKind::Binary, vec![1, 2, 3])
        .unwrap();
    let frame = b.expect_frame();
    assert_eq!(
        (frame.opcode, frame.payload),
        (Opcode::Binary, vec![1, 2, 3])
    );
    handle.unsubscribe(b_id, "/a").unwrap();
    assert_eq!(handle.subscribers("/a"), Ok(1));
    assert_eq!(
        ask(&mut a, "mine"),
        "/a",
        "a got nothing from the publish without it"
    );
}

/// Joins the topic its path names and reports every count the server reports.
struct Counting {
    counts: mpsc::Sender<(String, usize)>,
}

impl Handler for Counting {
    fn on_open(&mut self, ctx: &mut Context<'_>, peer: PeerId, opening: &Opening<'_>) {
        ctx.subscribe(peer, opening.request.path).unwrap();
    }
    fn on_message(&mut self, _ctx: &mut Context<'_>, _peer: PeerId, _message: Message<'_>) {}
    fn on_subscribers(&mut self, ctx: &mut Context<'_>, topic: &str, count: usize) {
        assert_eq!(count, ctx.subscribers_everywhere(topic));
        assert_eq!(
            count,
            ctx.subscribers(topic),
            "no broker: everywhere is here"
        );
        let _ = self.counts.send((topic.to_owned(), count));
    }
}

#[test]
fn the_handler_is_told_when_a_topics_count_changes() {
    let (counts, reported) = mpsc::channel();
    let server = start_with(Counting { counts }, config());
    let next = || {
        reported
            .recv_timeout(common::READ_TIMEOUT)
            .expect("a count")
    };
    let a = Client::connect_with_path(server.addr, "/a", "").0;
    assert_eq!(next(), ("/a".to_owned(), 1));
    let b = Client::connect_with_path(server.addr, "/a", "").0;
    assert_eq!(next(), ("/a".to_owned(), 2));
    let _c = Client::connect_with_path(server.addr, "/c", "").0;
    assert_eq!(next(), ("/c".to_owned(), 1));
    drop(b);
    assert_eq!(next(), ("/a".to_owned(), 1), "told of the leave too");
    drop(a);
    assert_eq!(next(), ("/a".to_owned(), 0));
}
