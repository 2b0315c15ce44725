//! Helpers for the socket-level tests: a server on a free loopback port in its own thread, and a
//! small blocking WebSocket client built on the crate's public frame codec.
#![allow(dead_code)]

use rfc6455::frame::{self, FrameHeader, Opcode, Status};
use rfc6455::handshake::accept_key;
use rfc6455::mask::apply_mask;
use rfc6455::server::Stats;
use rfc6455::{Broadcast, Config, Echo, Server, ShutdownHandle};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How long any test read waits before the test fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug)]
pub enum Mode {
    Echo,
    Broadcast,
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub shutdown: ShutdownHandle,
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
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let mut server = Server::bind(config).expect("bind");
        tx.send((server.local_addr(), server.shutdown_handle()))
            .unwrap();
        match mode {
            Mode::Echo => server.run(&mut Echo).expect("run"),
            Mode::Broadcast => server.run(&mut Broadcast).expect("run"),
        }
        server.stats().clone()
    });
    let (addr, shutdown) = rx.recv().expect("server started");
    TestServer {
        addr,
        shutdown,
        thread: Some(thread),
    }
}

impl TestServer {
    /// Shuts the server down and returns its counters.
    pub fn stop(mut self) -> Stats {
        self.shutdown.shutdown();
        self.thread.take().unwrap().join().expect("server thread")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.shutdown.shutdown();
            let _ = thread.join();
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
        let mut stream = tcp(addr);
        let request =
            upgrade_request(addr).replace("\r\n\r\n", &format!("\r\n{extra_headers}\r\n"));
        stream.write_all(request.as_bytes()).unwrap();
        let (status, head) = read_response_head(&mut stream);
        assert_eq!(status, 101, "{head}");
        assert!(
            head.contains(&format!(
                "Sec-WebSocket-Accept: {}\r\n",
                accept_key(KEY.as_bytes())
            )),
            "{head}"
        );
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
        let key = [0xA1, 0xB2, 0xC3, 0xD4];
        let header = FrameHeader {
            fin,
            rsv1,
            rsv2: false,
            rsv3: false,
            opcode,
            mask: Some(key),
            payload_len: payload.len() as u64,
        };
        let mut bytes = [0u8; frame::MAX_HEADER_LEN];
        let n = frame::encode_header(&header, &mut bytes);
        let mut out = bytes[..n].to_vec();
        let start = out.len();
        out.extend_from_slice(payload);
        apply_mask(&mut out[start..], key, 0);
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
