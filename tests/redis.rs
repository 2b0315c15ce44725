//! Rooms across processes on Redis Pub/Sub: the `rfc6455` binary, several processes on one
//! Redis that each test starts for itself on a free loopback port (persistence off) and stops
//! by its PID.
//!
//! These tests need `redis-server` and are ignored by a plain `cargo test`; `tests/redis/run.sh`
//! installs Redis when it is missing and runs them with `--ignored`. `REDIS_SERVER` names the
//! binary (default: `redis-server` on `PATH`); a test fails, never passes, without it.
#![cfg(feature = "redis")]

mod common;

use common::{Binary, Client, Frame};
use rfc6455::frame::Opcode;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A Redis server of the test's own.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start() -> Redis {
        Self::start_on(free_port())
    }

    /// Starts `redis-server` on `port` (loopback, no persistence) and waits until it answers.
    fn start_on(port: u16) -> Redis {
        let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(&binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {binary}: {e} (tests/redis/run.sh installs it)")
            });
        let redis = Redis { child, port };
        let give_up = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
                let mut reply = [0u8; 7];
                if stream.write_all(b"PING\r\n").is_ok() && stream.read_exact(&mut reply).is_ok() {
                    assert_eq!(&reply, b"+PONG\r\n");
                    return redis;
                }
            }
            assert!(
                Instant::now() < give_up,
                "redis-server did not answer on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGKILL: the connections are reset, as when the machine's Redis dies.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.signal_cont_quietly();
        self.kill();
    }
}

impl Redis {
    fn signal_cont_quietly(&self) {
        let _ = Command::new("kill")
            .args(["-s", "CONT", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The samples of `/metrics` on `addr`, by name.
fn metrics(addr: SocketAddr) -> HashMap<String, u64> {
    let mut stream = common::tcp(addr);
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let body = String::from_utf8(common::read_to_eof(&mut stream)).unwrap();
    body.lines()
        .filter(|line| line.starts_with("rfc6455_"))
        .filter_map(|line| line.rsplit_once(' '))
        .map(|(name, value)| (name.to_owned(), value.parse().unwrap_or(0)))
        .collect()
}

fn metric(addr: SocketAddr, name: &str) -> u64 {
    metrics(addr)
        .get(&format!("rfc6455_{name}"))
        .copied()
        .unwrap_or_else(|| panic!("no rfc6455_{name} in /metrics"))
}

/// Waits (up to 10 s) until `done` holds.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < give_up, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn broadcast_on(redis: &Redis, extra: &[&str]) -> Binary {
    let url = redis.url();
    let mut args = vec!["--redis", url.as_str()];
    args.extend_from_slice(extra);
    Binary::start("broadcast", &args)
}

fn join(addr: SocketAddr, path: &str) -> Client {
    let mut client = Client::connect_with_path(addr, path, "").0;
    client.send_frame(true, Opcode::Ping, b"");
    assert_eq!(client.expect_frame().opcode, Opcode::Pong);
    client
}

fn text(frame: Frame) -> String {
    assert_eq!(frame.opcode, Opcode::Text, "{frame:?}");
    String::from_utf8(frame.payload).unwrap()
}

#[test]
#[ignore = "needs redis-server: tests/redis/run.sh"]
fn three_processes_deliver_every_room_in_one_order() {
    let redis = Redis::start();
    let servers: Vec<Binary> = (0..3).map(|_| broadcast_on(&redis, &[])).collect();
    let rooms = ["/r1", "/r2", "/r3"];
    // Two clients per room on each process: six per room, eighteen in all.
    let mut clients: Vec<(&str, Client)> = Vec::new();
    for server in &servers {
        for room in rooms {
            for _ in 0..2 {
                clients.push((room, join(server.addr, room)));
            }
        }
    }
    for server in &servers {
        wait_until("every process subscribed to the three rooms", || {
            metric(server.addr, "redis_channels") == 3
        });
    }
    const EACH: usize = 15;
    for i in 0..EACH {
        for (n, (room, client)) in clients.iter_mut().enumerate() {
            client.send_text(&format!("{room}|{n}|{i}"));
        }
    }
    let mut orders: HashMap<&str, Vec<Vec<String>>> = HashMap::new();
    for (room, client) in &mut clients {
        let got: Vec<String> = (0..6 * EACH).map(|_| text(client.expect_frame())).collect();
        let mut next: HashMap<String, usize> = HashMap::new();
        for message in &got {
            let mut parts = message.split('|');
            assert_eq!(
                parts.next(),
                Some(*room),
                "a message of another room: {message}"
            );
            let sender = parts.next().unwrap().to_owned();
            let i: usize = parts.next().unwrap().parse().unwrap();
            let expected = next.entry(sender).or_default();
            assert_eq!(i, *expected, "a sender's messages out of order: {message}");
            *expected += 1;
        }
        assert!(next.values().all(|&n| n == EACH), "{next:?}");
        orders.entry(room).or_default().push(got);
    }
    for (room, seen) in &orders {
        assert_eq!(seen.len(), 6);
        assert!(
            seen.iter().all(|order| order == &seen[0]),
            "the clients of {room} saw different orders"
        );
    }
    // Nothing else arrives: each client's next message is the end marker of its own room.
    for room in rooms {
        let sender = clients.iter_mut().find(|(r, _)| *r == room).unwrap();
        sender.1.send_text(&format!("{room}|end"));
    }
    for (room, client) in &mut clients {
        assert_eq!(text(client.expect_frame()), format!("{room}|end"));
    }
    for server in &servers {
        let m = metrics(server.addr);
        assert_eq!(m["rfc6455_redis_local_only_total"], 0);
        assert_eq!(m["rfc6455_redis_dropped_total"], 0);
        assert_eq!(m["rfc6455_redis_received_total"], 3 * (6 * EACH + 1) as u64);
    }
}

#[test]
#[ignore = "needs redis-server: tests/redis/run.sh"]
fn two_processes_share_one_port_with_reuse_port() {
    let redis = Redis::start();
    let port = free_port().to_string();
    let flags = [
        "--port",
        port.as_str(),
        "--reuse-port",
        "--metrics-bind",
        "127.0.0.1:0",
    ];
    let servers = [broadcast_on(&redis, &flags), broadcast_on(&redis, &flags)];
    assert_eq!(servers[0].addr, servers[1].addr, "one address");
    let mut clients: Vec<Client> = (0..16).map(|_| join(servers[0].addr, "/x")).collect();
    let open: Vec<u64> = servers
        .iter()
        .map(|s| metric(s.metrics_addr.unwrap(), "connections_open"))
        .collect();
    assert_eq!(open.iter().sum::<u64>(), 16, "{open:?}");
    assert!(
        open.iter().all(|&n| n > 0),
        "the kernel spread them: {open:?}"
    );
    for server in &servers {
        wait_until("both processes subscribed", || {
            metric(server.metrics_addr.unwrap(), "redis_channels") == 1
        });
    }
    clients[0].send_text("one");
    clients[15].send_text("two");
    let first = text(clients[0].expect_frame());
    let second = text(clients[0].expect_frame());
    for client in &mut clients[1..] {
        assert_eq!(text(client.expect_frame()), first);
        assert_eq!(text(client.expect_frame()), second);
    }
}

#[test]
#[ignore = "needs redis-server: tests/redis/run.sh"]
fn when_redis_dies_rooms_go_on_locally_and_resume_once_it_is_back() {
    let mut redis = Redis::start();
    let a = broadcast_on(&redis, &[]);
    let b = broadcast_on(&redis, &[]);
    let mut a1 = join(a.addr, "/r");
    let mut a2 = join(a.addr, "/r");
    let mut b1 = join(b.addr, "/r");
    for server in [&a, &b] {
        wait_until("subscribed", || metric(server.addr, "redis_channels") == 1);
    }
    a1.send_text("before");
    for client in [&mut a1, &mut a2, &mut b1] {
        assert_eq!(text(client.expect_frame()), "before");
    }

    // Killed mid-traffic: a1 sends every 10 ms while Redis dies.
    let sender = std::thread::spawn({
        let mut stream = a1.stream.try_clone().unwrap();
        move || {
            for i in 0..100 {
                let frame = Client::encode(true, Opcode::Text, format!("m {i}").as_bytes());
                stream.write_all(&frame).unwrap();
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    redis.kill();
    sender.join().unwrap();
    // a2 (a1's process) gets a1's messages in order, none twice, and every one sent once Redis
    // was gone; only those in flight through Redis when it died may be lost (at most once).
    let mut last = None;
    let mut lost = 0;
    while last != Some(99) {
        let got = text(a2.expect_frame());
        let i: u32 = got.strip_prefix("m ").unwrap().parse().unwrap();
        let expected = last.map_or(0, |l| l + 1);
        assert!(i >= expected, "out of order or twice: {i} after {last:?}");
        lost += i - expected;
        last = Some(i);
    }
    assert!(lost < 10, "{lost} lost");
    for _ in 0..100 - lost {
        assert!(text(a1.expect_frame()).starts_with("m "));
    }
    // b1 (the other process) got only what crossed before Redis died.
    let mut crossed = 0;
    while let Some(frame) = b1.poll_frame(Duration::from_millis(200)) {
        assert_eq!(text(frame), format!("m {crossed}"));
        crossed += 1;
    }
    eprintln!("{crossed} messages crossed before Redis died, {lost} were lost in it");
    assert!(crossed < 60, "{crossed}");
    for server in [&a, &b] {
        wait_until("both links are down", || {
            let m = metrics(server.addr);
            m["rfc6455_redis_subscriber_up"] == 0 && m["rfc6455_redis_publisher_up"] == 0
        });
    }
    // Local delivery goes on while Redis is down, in order, at no cost in CPU.
    let cpu = [a.cpu_seconds(), b.cpu_seconds()];
    let started = Instant::now();
    for i in 0..50 {
        a1.send_text(&format!("down {i}"));
        std::thread::sleep(Duration::from_millis(20));
    }
    for client in [&mut a1, &mut a2] {
        for i in 0..50 {
            assert_eq!(text(client.expect_frame()), format!("down {i}"));
        }
    }
    std::thread::sleep(Duration::from_secs(1));
    let elapsed = started.elapsed().as_secs_f64();
    let used = [a.cpu_seconds() - cpu[0], b.cpu_seconds() - cpu[1]];
    eprintln!("CPU while Redis was down for {elapsed:.1} s: {used:?} s");
    assert!(
        used.iter().all(|&s| s < 0.1 * elapsed),
        "no spinning: {used:?} s of CPU in {elapsed:.1} s"
    );
    assert!(metric(a.addr, "redis_local_only_total") >= 50);
    // Rooms first joined while Redis is down.
    let mut a3 = join(a.addr, "/new");
    let mut b2 = join(b.addr, "/new");

    let _redis = Redis::start_on(redis.port);
    let restarted = Instant::now();
    let mut resumed = [None, None];
    let mut k = 0;
    while resumed.iter().any(Option::is_none) {
        assert!(
            restarted.elapsed() < Duration::from_secs(5),
            "cross-process delivery did not resume: {resumed:?}"
        );
        k += 1;
        a1.send_text(&format!("probe {k}"));
        a3.send_text(&format!("new {k}"));
        for (i, client, prefix) in [(0, &mut b1, "probe"), (1, &mut b2, "new")] {
            while let Some(frame) = client.poll_frame(Duration::from_millis(50)) {
                let got = text(frame);
                assert!(got.starts_with(prefix), "{got}");
                resumed[i].get_or_insert(restarted.elapsed());
            }
        }
    }
    eprintln!("cross-process delivery resumed after {resumed:?}");
    for at in resumed.iter().flatten() {
        assert!(*at < Duration::from_secs(2), "resumed after {at:?}");
    }
    // Each transition is logged once, not once per message.
    for server in [&a, &b] {
        for link in ["subscriber", "publisher"] {
            let lines = server.log_lines();
            let lost = lines
                .iter()
                .filter(|l| l.contains(&format!("redis {link} link")) && l.contains("lost"))
                .count();
            assert_eq!(lost, 1, "{lines:#?}");
        }
        server
            .wait_for_log(&["redis publisher link", "is up"])
            .expect("the return is logged");
    }
}

#[test]
#[ignore = "needs redis-server: tests/redis/run.sh"]
fn a_redis_that_does_not_read_never_stalls_the_loop() {
    let redis = Redis::start();
    let a = broadcast_on(&redis, &[]);
    let mut sender = join(a.addr, "/r");
    let receiver = join(a.addr, "/r");
    wait_until("subscribed", || metric(a.addr, "redis_channels") == 1);
    // The receiver drains whatever comes, until the marker.
    let reader = std::thread::spawn(move || {
        let mut receiver = receiver;
        let mut count = 0;
        loop {
            let frame = receiver.expect_frame();
            if frame.opcode == Opcode::Text && frame.payload == b"marker" {
                return count;
            }
            count += 1;
        }
    });
    let drain = std::thread::spawn({
        let mut stream = sender.stream.try_clone().unwrap();
        move || {
            let mut sink = vec![0u8; 1 << 20];
            while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
        }
    });

    let t0 = Instant::now();
    redis.signal("STOP");
    // 40 MiB for a Redis that reads nothing: more than the 16 MiB the server queues for it.
    let payload = vec![7u8; 1 << 20];
    for _ in 0..40 {
        sender.send_frame(true, Opcode::Binary, &payload);
    }
    wait_until("messages are dropped at the output limit", || {
        metric(a.addr, "redis_dropped_total") > 0
    });
    eprintln!("dropping after {:?}", t0.elapsed());
    // The loop is not stalled: it answers at once.
    let started = Instant::now();
    let m = metrics(a.addr);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(
        m["rfc6455_redis_queued_bytes"] <= 17 * 1024 * 1024,
        "bounded: {m:?}"
    );
    eprintln!(
        "dropped {} of 40 while Redis was stopped; {} bytes queued",
        m["rfc6455_redis_dropped_total"], m["rfc6455_redis_queued_bytes"]
    );
    let t = Instant::now();
    redis.signal("CONT");
    wait_until("the queue drains", || {
        metric(a.addr, "redis_queued_bytes") == 0
    });
    // Sent through Redis or, for those dropped, delivered here: the receiver got all 40.
    // (A new client: the sender's socket is being drained by another thread.)
    let mut probe = Client::connect_with_path(a.addr, "/r", "").0;
    probe.send_text("marker");
    assert_eq!(reader.join().unwrap(), 40);
    eprintln!("drained in {:?}", t.elapsed());
    let _ = sender.stream.shutdown(std::net::Shutdown::Both);
    let _ = drain.join();
}

/// Joins the topic its path names; `others TEXT` publishes to it but the sender, anything else
/// publishes it to everyone.
struct Room;

impl rfc6455::server::Handler for Room {
    fn on_open(
        &mut self,
        ctx: &mut rfc6455::server::Context<'_>,
        peer: rfc6455::server::PeerId,
        opening: &rfc6455::server::Opening<'_>,
    ) {
        ctx.subscribe(peer, opening.request.path).unwrap();
    }

    fn on_message(
        &mut self,
        ctx: &mut rfc6455::server::Context<'_>,
        peer: rfc6455::server::PeerId,
        message: rfc6455::Message<'_>,
    ) {
        let topic = ctx.topics(peer).next().unwrap().to_owned();
        let text = message.as_text().unwrap();
        match text.strip_prefix("others ") {
            Some(rest) => {
                ctx.publish_except(&topic, peer, rfc6455::MessageKind::Text, rest.as_bytes())
            }
            None => ctx.publish(&topic, rfc6455::MessageKind::Text, text.as_bytes()),
        };
    }
}

#[test]
#[ignore = "needs redis-server: tests/redis/run.sh"]
fn publish_except_leaves_out_the_sender_only_on_its_own_process() {
    let redis = Redis::start();
    let config = || rfc6455::server::Config {
        redis: Some(rfc6455::server::RedisConfig::from_url(&redis.url()).unwrap()),
        ..common::config()
    };
    let a = common::start_with(Room, config());
    let b = common::start_with(Room, config());
    // The first connection of each process has the same id there (#0.0): the one left out is
    // the sender, on the sender's process, not its namesake on the other.
    let mut a1 = join(a.addr, "/t");
    let mut b1 = join(b.addr, "/t");
    let mut b2 = join(b.addr, "/t");
    for server in [&a, &b] {
        wait_until("subscribed", || metric(server.addr, "redis_channels") == 1);
    }
    a1.send_text("others not for a1");
    assert_eq!(text(b1.expect_frame()), "not for a1");
    assert_eq!(text(b2.expect_frame()), "not for a1");
    b2.send_text("others not for b2");
    assert_eq!(text(a1.expect_frame()), "not for b2");
    assert_eq!(text(b1.expect_frame()), "not for b2");
    a1.send_text("everyone");
    for client in [&mut a1, &mut b1, &mut b2] {
        assert_eq!(
            text(client.expect_frame()),
            "everyone",
            "nothing else before"
        );
    }
}

#[test]
#[ignore = "needs redis-server: tests/redis/run.sh"]
fn the_page_counts_the_people_of_its_room_in_every_process() {
    let redis = Redis::start();
    let a = broadcast_on(&redis, &[]);
    let mut b = broadcast_on(&redis, &[]);
    let presence = |count: usize| format!(r#"{{"presence":{{"room":"team-a","count":{count}}}}}"#);
    let mut watcher = Client::connect_with_path(a.addr, "/team-a?presence", "").0;
    assert_eq!(text(watcher.expect_frame()), presence(1));
    let b1 = join(b.addr, "/team-a");
    assert_eq!(
        text(watcher.expect_frame()),
        presence(2),
        "B's join counts on A"
    );
    let _b2 = join(b.addr, "/team-a");
    assert_eq!(text(watcher.expect_frame()), presence(3));
    // A watcher on B counts A's people too: at once, or after A's next full count (2 s).
    let mut other = Client::connect_with_path(b.addr, "/team-a?presence", "").0;
    let give_up = Instant::now() + Duration::from_secs(5);
    loop {
        let got = text(other.expect_frame());
        if got == presence(4) {
            break;
        }
        assert!(Instant::now() < give_up, "B's watcher never saw 4: {got}");
    }
    assert_eq!(text(watcher.expect_frame()), presence(4));
    drop(b1);
    assert_eq!(
        text(watcher.expect_frame()),
        presence(3),
        "a leave on B counts on A"
    );
    // B dies without a word: A stops counting its people once it has not heard of B for
    // COUNTS_EXPIRY (6 s).
    let killed = Instant::now();
    let _ = b.child.kill();
    let _ = b.child.wait();
    assert_eq!(text(watcher.expect_frame()), presence(1));
    let took = killed.elapsed();
    eprintln!("B's people stopped counting {took:?} after it died");
    assert!(took < Duration::from_secs(9), "{took:?}");
}
