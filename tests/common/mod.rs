//! Helpers for the socket-level tests: a server on a free loopback port in its own thread (with
//! the two handlers the tests use), the `rfc6455` binary in a child process, and a small blocking
//! WebSocket client built on the crate's public frame codec.
#![allow(dead_code)]

use rfc6455::client_handshake::{self, ClientRequest};
use rfc6455::deflate::DeflateConfig;
use rfc6455::frame::{self, FrameHeader, Opcode, Status};
use rfc6455::limits::Limits;
use rfc6455::server::{Config, Context, Handle, Handler, Opening, PeerId, Server, Stats, Upgrade};
use rfc6455::{Closure, Message, Request, Response};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long any test read waits before the test fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug)]
pub enum Mode {
    Echo,
    Broadcast,
}

/// Echoes every message to its sender.
pub struct Echo;

impl Handler for Echo {
    fn on_message(&mut self, ctx: &mut Context<'_>, peer: PeerId, message: Message<'_>) {
        let _ = ctx.forward(peer, message);
    }
}

/// Sends every message to every connection.
pub struct Broadcast;

impl Handler for Broadcast {
    fn on_message(&mut self, ctx: &mut Context<'_>, _peer: PeerId, message: Message<'_>) {
        ctx.broadcast(message.kind(), message.as_bytes());
    }
}

/// Runs `inner` and reports how every connection that was open ended.
pub struct Reporting<H> {
    inner: H,
    closes: mpsc::Sender<Closure>,
}

impl<H: Handler> Handler for Reporting<H> {
    fn on_upgrade(&mut self, request: &Request<'_>, remote_addr: SocketAddr) -> Upgrade {
        self.inner.on_upgrade(request, remote_addr)
    }
    fn on_open(&mut self, ctx: &mut Context<'_>, peer: PeerId, opening: &Opening<'_>) {
        self.inner.on_open(ctx, peer, opening)
    }
    fn on_message(&mut self, ctx: &mut Context<'_>, peer: PeerId, message: Message<'_>) {
        self.inner.on_message(ctx, peer, message)
    }
    fn on_close(&mut self, ctx: &mut Context<'_>, peer: PeerId, closure: &Closure) {
        let _ = self.closes.send(closure.clone());
        self.inner.on_close(ctx, peer, closure)
    }
    fn on_http(&mut self, request: &Request<'_>) -> Response {
        self.inner.on_http(request)
    }
}

/// Starts a server in `mode` that reports how each connection ended.
pub fn start_reporting(mode: Mode, config: Config) -> (TestServer, mpsc::Receiver<Closure>) {
    let (closes, receiver) = mpsc::channel();
    let server = match mode {
        Mode::Echo => start_with(
            Reporting {
                inner: Echo,
                closes,
            },
            config,
        ),
        Mode::Broadcast => start_with(
            Reporting {
                inner: Broadcast,
                closes,
            },
            config,
        ),
    };
    (server, receiver)
}

pub struct TestServer {
    pub addr: SocketAddr,
    /// Where `/metrics` and `/healthz` are served when `Config::metrics_addr` was set.
    pub metrics_addr: Option<SocketAddr>,
    pub handle: Handle,
    thread: Option<JoinHandle<Stats>>,
}

/// The default configuration on a free loopback port.
pub fn config() -> Config {
    Config {
        addr: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    }
}

pub fn start(mode: Mode, config: Config) -> TestServer {
    match mode {
        Mode::Echo => start_with(Echo, config),
        Mode::Broadcast => start_with(Broadcast, config),
    }
}

/// Runs `handler` on a server in its own thread.
pub fn start_with<H: Handler + Send + 'static>(mut handler: H, config: Config) -> TestServer {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let mut server = Server::bind(config).expect("bind");
        tx.send((server.local_addr(), server.metrics_addr(), server.handle()))
            .unwrap();
        server.run(&mut handler).expect("run");
        server.stats().clone()
    });
    let (addr, metrics_addr, handle) = rx.recv().expect("server started");
    TestServer {
        addr,
        metrics_addr,
        handle,
        thread: Some(thread),
    }
}

impl TestServer {
    /// Shuts the server down and returns its counters.
    pub fn stop(mut self) -> Stats {
        self.handle.shutdown();
        self.join()
    }

    /// Waits for the server thread; a panic in it fails the test that caused it.
    fn join(&mut self) -> Stats {
        match self.thread.take().expect("joined once").join() {
            Ok(stats) => stats,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.handle.shutdown();
            if std::thread::panicking() {
                // The test failed already; report that failure, not the server's.
                let _ = self.thread.take().unwrap().join();
            } else {
                self.join();
            }
        }
    }
}

pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

pub fn upgrade_request(addr: SocketAddr) -> String {
    format!(
        "GET /chat HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// Connects a raw TCP stream with the test read timeout.
pub fn tcp(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Reads an HTTP response head; returns the status and the whole head.
pub fn read_response_head(stream: &mut TcpStream) -> (u16, String) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("read response");
        assert_eq!(
            n,
            1,
            "EOF inside the response head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let text = String::from_utf8(head).unwrap();
    let status = text[9..12].parse().unwrap();
    (status, text)
}

/// Reads until EOF (the server closed) and returns what came.
pub fn read_to_eof(stream: &mut TcpStream) -> Vec<u8> {
    let mut rest = Vec::new();
    stream
        .read_to_end(&mut rest)
        .expect("EOF before the read timeout");
    rest
}

pub struct Client {
    pub stream: TcpStream,
    /// Received bytes; `buffer[start..]` is not yet parsed.
    buffer: Vec<u8>,
    start: usize,
}

#[derive(Debug, PartialEq, Eq, Clone)]
pub struct Frame {
    pub fin: bool,
    pub rsv1: bool,
    pub opcode: Opcode,
    pub payload: Vec<u8>,
}

impl Client {
    /// Connects and completes the opening handshake, checking the accept value.
    pub fn connect(addr: SocketAddr) -> Client {
        Self::connect_with(addr, "").0
    }

    /// Connects with extra request header lines (each ending in CRLF) and returns the client and
    /// the response head.
    pub fn connect_with(addr: SocketAddr, extra_headers: &str) -> (Client, String) {
        Self::connect_with_path(addr, "/chat", extra_headers)
    }

    /// Connects to `path` with extra request header lines.
    pub fn connect_with_path(
        addr: SocketAddr,
        path: &str,
        extra_headers: &str,
    ) -> (Client, String) {
        // The request is written, and the response checked (§4.1), by the crate's client side;
        // the subprotocols and extension offered come from `extra_headers`.
        let mut request = ClientRequest {
            host: addr.to_string(),
            resource: path.to_string(),
            ..ClientRequest::default()
        };
        let mut extensions = None;
        for line in extra_headers.split("\r\n").filter(|l| !l.is_empty()) {
            let (name, value) = line.split_once(':').expect("Name: value");
            let value = value.trim().to_string();
            if name.eq_ignore_ascii_case("Sec-WebSocket-Protocol") {
                request
                    .protocols
                    .extend(value.split(',').map(|p| p.trim().to_string()));
            } else if name.eq_ignore_ascii_case("Sec-WebSocket-Extensions") {
                extensions = Some(value);
            } else {
                request.headers.push((name.to_string(), value));
            }
        }
        let mut bytes = Vec::new();
        client_handshake::write_request(&request, KEY, extensions.as_deref(), &mut bytes);
        let mut stream = tcp(addr);
        stream.write_all(&bytes).unwrap();
        let (status, head) = read_response_head(&mut stream);
        assert_eq!(status, 101, "{head}");
        let deflate = DeflateConfig {
            enabled: extensions.is_some(),
            ..DeflateConfig::default()
        };
        if let Err(error) = client_handshake::check_response(
            head.as_bytes(),
            KEY,
            &request,
            &deflate,
            &Limits::default(),
        ) {
            panic!("{error}: {head}");
        }
        let client = Client {
            stream,
            buffer: Vec::new(),
            start: 0,
        };
        (client, head)
    }

    pub fn from_stream(stream: TcpStream) -> Client {
        Client {
            stream,
            buffer: Vec::new(),
            start: 0,
        }
    }

    /// Encodes a masked client frame.
    pub fn encode(fin: bool, opcode: Opcode, payload: &[u8]) -> Vec<u8> {
        Self::encode_rsv1(fin, false, opcode, payload)
    }

    /// Encodes a masked client frame with RSV1 as given (a compressed message's first frame).
    pub fn encode_rsv1(fin: bool, rsv1: bool, opcode: Opcode, payload: &[u8]) -> Vec<u8> {
        let header = FrameHeader::new(opcode, payload.len())
            .with_fin(fin)
            .with_rsv1(rsv1)
            .masked([0xA1, 0xB2, 0xC3, 0xD4]);
        let mut out = Vec::new();
        frame::encode_frame(&header, payload, &mut out);
        out
    }

    pub fn send_frame(&mut self, fin: bool, opcode: Opcode, payload: &[u8]) {
        self.stream
            .write_all(&Self::encode(fin, opcode, payload))
            .unwrap();
    }

    pub fn send_text(&mut self, text: &str) {
        self.send_frame(true, Opcode::Text, text.as_bytes());
    }

    /// Reads one frame; `None` on EOF.
    pub fn read_frame(&mut self) -> Option<Frame> {
        loop {
            if let Status::Complete((header, len)) =
                frame::decode_header(&self.buffer).expect("valid server frame")
            {
                assert!(header.mask.is_none(), "server frames are never masked");
                let total = len + header.payload_len as usize;
                if self.buffer.len() >= total {
                    let payload = self.buffer[len..total].to_vec();
                    self.buffer.drain(..total);
                    return Some(Frame {
                        fin: header.fin,
                        rsv1: header.rsv1,
                        opcode: header.opcode,
                        payload,
                    });
                }
            }
            let mut chunk = vec![0u8; 256 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// Reads one frame if one comes within `wait`; `None` otherwise (a frame cut short by the
    /// wait stays buffered for the next read).
    pub fn poll_frame(&mut self, wait: Duration) -> Option<Frame> {
        let give_up = Instant::now() + wait;
        loop {
            if let Status::Complete((header, len)) =
                frame::decode_header(&self.buffer).expect("valid server frame")
            {
                let total = len + header.payload_len as usize;
                if self.buffer.len() >= total {
                    let payload = self.buffer[len..total].to_vec();
                    self.buffer.drain(..total);
                    return Some(Frame {
                        fin: header.fin,
                        rsv1: header.rsv1,
                        opcode: header.opcode,
                        payload,
                    });
                }
            }
            let left = give_up.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut chunk = vec![0u8; 256 * 1024];
            let result = self.stream.read(&mut chunk);
            self.stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
            match result {
                Ok(0) => panic!("EOF while polling for a frame"),
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    pub fn expect_frame(&mut self) -> Frame {
        self.read_frame().expect("a frame, not EOF")
    }

    /// Expects a close frame and returns its code (None for an empty payload).
    pub fn expect_close(&mut self) -> Option<u16> {
        let frame = self.expect_frame();
        assert_eq!(frame.opcode, Opcode::Close, "{frame:?}");
        (frame.payload.len() >= 2).then(|| u16::from_be_bytes([frame.payload[0], frame.payload[1]]))
    }

    /// Expects the server to close TCP (EOF) with nothing else before it.
    pub fn expect_eof(&mut self) {
        assert_eq!(self.read_frame(), None);
    }
}

/// The `rfc6455` binary in a child process on a free port, to test what it serves, read its
/// memory and send it signals. Killed when dropped.
pub struct Binary {
    pub child: Child,
    pub addr: SocketAddr,
    /// The connection cap the startup line announced.
    pub max_connections: usize,
    /// Where the startup line says `/metrics` is served, if it says.
    pub metrics_addr: Option<SocketAddr>,
    /// Every line the server wrote to stderr so far, the startup line included.
    log: Arc<Mutex<Vec<String>>>,
    /// The thread that reads stderr; it ends when the process does.
    log_reader: Option<JoinHandle<()>>,
}

impl Binary {
    pub fn start(mode: &str, args: &[&str]) -> Binary {
        Self::spawn(mode, args, None, None)
    }

    /// Starts the server binary with a low open-file limit (through `sh -c ulimit`).
    pub fn start_with_fd_limit(mode: &str, args: &[&str], fd_limit: Option<u32>) -> Binary {
        Self::spawn(mode, args, fd_limit, None)
    }

    /// Starts the server binary with `RUST_LOG` set to `filter`.
    pub fn start_with_log(mode: &str, args: &[&str], filter: &str) -> Binary {
        Self::spawn(mode, args, None, Some(filter))
    }

    fn spawn(mode: &str, args: &[&str], fd_limit: Option<u32>, filter: Option<&str>) -> Binary {
        let binary = env!("CARGO_BIN_EXE_rfc6455");
        let mut command = match fd_limit {
            Some(limit) => {
                let mut c = Command::new("sh");
                c.args([
                    "-c",
                    &format!("ulimit -n {limit} && exec \"$0\" \"$@\""),
                    binary,
                ]);
                c
            }
            None => Command::new(binary),
        };
        // A free port unless the test names one.
        let port: &[&str] = if args.contains(&"--port") {
            &[]
        } else {
            &["--port", "0"]
        };
        let mut child = command
            .arg(mode)
            .args(port)
            .args(args)
            .env(
                "RUST_LOG",
                filter.map(str::to_owned).unwrap_or_else(|| {
                    std::env::var("SERVER_LOG").unwrap_or_else(|_| "info".into())
                }),
            )
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the server binary");
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let mut log = Vec::new();
        let (addr, max_connections, metrics_addr) = loop {
            let line = lines.next().expect("startup line").unwrap();
            log.push(line.clone());
            let listening = line
                .split("listening on ")
                .nth(1)
                .and_then(|rest| rest.strip_prefix("ws://").or(rest.strip_prefix("wss://")));
            if let Some(rest) = listening {
                let addr = rest.split_whitespace().next().unwrap().parse().unwrap();
                let cap = line
                    .split("at most ")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|cap| cap.parse().ok())
                    .expect("the startup line gives the connection cap");
                let metrics = line
                    .split("metrics at ")
                    .nth(1)
                    .and_then(|rest| rest.split("://").nth(1))
                    .and_then(|rest| rest.split('/').next())
                    .and_then(|addr| addr.parse().ok());
                break (addr, cap, metrics);
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        let echo = std::env::var("SERVER_LOG").is_ok();
        let log = Arc::new(Mutex::new(log));
        let kept = log.clone();
        let log_reader = std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if echo {
                    eprintln!("server: {line}");
                }
                kept.lock().unwrap().push(line);
            }
        });
        Binary {
            child,
            addr,
            max_connections,
            metrics_addr,
            log,
            log_reader: Some(log_reader),
        }
    }

    /// Every log line so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The first log line that contains every one of `words`, waiting up to the read timeout
    /// for it to appear.
    pub fn wait_for_log(&self, words: &[&str]) -> Option<String> {
        let give_up = Instant::now() + READ_TIMEOUT;
        loop {
            let found = self
                .log
                .lock()
                .unwrap()
                .iter()
                .find(|line| words.iter().all(|w| line.contains(w)))
                .cloned();
            if found.is_some() || Instant::now() > give_up {
                return found;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the process to exit (up to `limit`), then for the rest of its log; returns
    /// the exit status and every log line.
    pub fn wait_for_exit(&mut self, limit: Duration) -> (std::process::ExitStatus, Vec<String>) {
        let give_up = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < give_up, "still running after {limit:?}");
            std::thread::sleep(Duration::from_millis(10));
        };
        if let Some(reader) = self.log_reader.take() {
            reader.join().unwrap();
        }
        (status, self.log.lock().unwrap().clone())
    }

    /// CPU seconds the server process has used (user + system), from /proc/PID/stat.
    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<f64> = rest
            .split_whitespace()
            .skip(11)
            .take(2)
            .map(|f| f.parse().unwrap())
            .collect();
        (fields[0] + fields[1]) / 100.0
    }

    /// Resident memory of the server process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// The most resident memory the server process has had since the last
    /// [`reset_peak_rss`](Self::reset_peak_rss), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    /// Starts measuring the peak resident memory afresh (Linux's `clear_refs`, value 5).
    pub fn reset_peak_rss(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5")
            .expect("reset the peak RSS");
        assert!(self.peak_rss_kib() <= self.rss_kib() + 64);
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with(field)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
