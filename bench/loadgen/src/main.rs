//! `wsload`: a single-threaded WebSocket load generator for the benchmark.
//!
//! Modes:
//! - `echo`: C connections, K messages in flight on each, payloads of S bytes; measures messages
//!   per second, MB/s and round-trip percentiles, and checks every echoed payload byte for byte.
//! - `broadcast`: R receivers and S senders (one by default), every connection receiving every
//!   message; measures deliveries per second and delivery lag, and checks that every connection
//!   gets every sender's messages in that sender's order (payloads carry the sender's number
//!   after the sequence number). With `--also-addr`, the connections are spread over several
//!   servers (processes sharing a room through a broker), and `--also-pid` adds their CPU time.
//! - `idle`: holds C open connections and reports the server's resident memory per connection.
//! - `fairness`: one innocent client does round trips of small messages through an echo server,
//!   one at a time, while a flooding connection sends plain 64 KiB messages, an endless message
//!   of tiny fragments, or compressed messages that inflate to 16 MiB; measures the innocent's
//!   round-trip percentiles and how many bytes the flood got in. Each turn of the loop does at
//!   most one read and one write of 64 KiB for the flood, so the generator's own share of an
//!   innocent round trip stays small.
//!
//! Client frames are masked once, ahead of time (only the sequence digits change per message), and
//! replies are parsed no further than their headers, so that the generator is rarely the
//! bottleneck. With `--pid`, the server's CPU time is read from `/proc/PID/stat` and reported as
//! microseconds per message: the figure that still compares servers when the generator saturates.
//!
//! With `--tls`, the echo, broadcast and idle modes connect with `wss://` (rustls, the `ring`
//! provider, no certificate verification: the benchmark measures the servers' work, not trust),
//! each connection encrypting its own frames and decrypting the server's.
//!
//! The last line printed is `RESULT key=value ...`, read by `bench/run.sh`. When the server's
//! replies are wrong (an echo that differs in bytes, length or type, a message out of order, bytes
//! that do not parse as a frame), the last line is `MISMATCH <what>` and the exit status is 3, so
//! that a corrupting server is never mistaken for one that merely failed to run (status 1).

use clap::{Args, Parser, Subcommand, ValueEnum};
use flate2::{Compress, Compression, FlushCompress};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rfc6455::client_handshake::{self, ClientRequest};
use rfc6455::deflate::DEFLATE_TAIL;
use rfc6455::deflate::DeflateConfig;
use rfc6455::frame::{self, FrameHeader, MAX_HEADER_LEN, Opcode, Status};
use rfc6455::handshake::HeadScanner;
use rfc6455::limits::Limits;
use rfc6455::mask::apply_mask;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "A single-threaded WebSocket load generator")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Round trips through an echo server.
    Echo(EchoArgs),
    /// One or more senders, many receivers, through a broadcast server.
    Broadcast(BroadcastArgs),
    /// Hold open connections and read the server's memory per connection.
    Idle(IdleArgs),
    /// One client's round trips through an echo server while another connection floods it.
    Fairness(FairnessArgs),
}

#[derive(Args)]
struct Common {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:9001")]
    addr: SocketAddr,
    /// Server process id, to read its CPU time and memory from /proc.
    #[arg(long)]
    pid: Option<u32>,
    /// Connect over TLS (wss://), without verifying the server's certificate.
    #[arg(long)]
    tls: bool,
}

impl Common {
    /// The TLS client settings, with `--tls`: the rfc6455 client's, with verification off.
    fn tls(&self) -> io::Result<Option<Arc<rustls::ClientConfig>>> {
        if !self.tls {
            return Ok(None);
        }
        let options = rfc6455::client::ClientOptions {
            danger_accept_invalid_certs: true,
            ..Default::default()
        };
        rfc6455::client::client_config(&options)
            .map(Some)
            .map_err(io::Error::other)
    }
}

#[derive(Args)]
struct EchoArgs {
    #[command(flatten)]
    common: Common,
    /// Connections.
    #[arg(long, short = 'c', default_value_t = 100)]
    connections: usize,
    /// Messages in flight per connection.
    #[arg(long, short = 'k', default_value_t = 1)]
    in_flight: usize,
    /// Payload size in bytes.
    #[arg(long, short = 's', default_value_t = 20)]
    size: usize,
    /// Send text messages (default binary).
    #[arg(long)]
    text: bool,
    /// Measured seconds.
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// Unmeasured seconds before measuring.
    #[arg(long, default_value_t = 0.5)]
    warmup: f64,
}

#[derive(Args)]
struct BroadcastArgs {
    #[command(flatten)]
    common: Common,
    /// Connections that only receive (the senders receive too and are counted separately).
    #[arg(long, short = 'r', default_value_t = 1000)]
    receivers: usize,
    /// Connections that send, each its own sequence, taking turns to fill the window.
    #[arg(long, default_value_t = 1)]
    senders: usize,
    /// Payload size in bytes.
    #[arg(long, short = 's', default_value_t = 64)]
    size: usize,
    /// Messages sent but not yet delivered to every receiver, over all senders.
    #[arg(long, default_value_t = 32)]
    window: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// Unmeasured seconds before measuring.
    #[arg(long, default_value_t = 0.5)]
    warmup: f64,
    /// More servers of the same room (repeatable): connection i goes to the i-th address of
    /// --addr and these, in turn; the first sender is on --addr.
    #[arg(long = "also-addr", value_name = "ADDR")]
    also_addrs: Vec<SocketAddr>,
    /// More server processes whose CPU time counts as the server's (repeatable): the other
    /// servers, a broker.
    #[arg(long = "also-pid", value_name = "PID")]
    also_pids: Vec<u32>,
    /// The request path (the room).
    #[arg(long, default_value = "/")]
    path: String,
}

#[derive(Args)]
struct IdleArgs {
    #[command(flatten)]
    common: Common,
    /// Connections to hold open.
    #[arg(long, short = 'c', default_value_t = 10_000)]
    connections: usize,
    /// Seconds to let the server settle before reading its memory.
    #[arg(long, default_value_t = 1.0)]
    settle: f64,
}

#[derive(Args)]
struct FairnessArgs {
    #[command(flatten)]
    common: Common,
    /// What the flooding connection sends.
    #[arg(long, value_enum)]
    flood: Flood,
    /// Payload size of the innocent client's messages, in bytes.
    #[arg(long, short = 's', default_value_t = 20)]
    size: usize,
    /// Payload size of each plain flood message, in bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    flood_size: usize,
    /// Size each compressed flood message inflates to, in bytes.
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    inflated_size: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// Unmeasured seconds before measuring.
    #[arg(long, default_value_t = 0.5)]
    warmup: f64,
}

/// What the flooding connection sends.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Flood {
    /// Binary messages of --flood-size bytes, as fast as the server takes them; their echoes are
    /// read and checked.
    Plain,
    /// One endless message of empty and 1-byte continuation frames; when the server closes the
    /// connection (rfc6455 does with 1008 past its fragment limit), it is opened again.
    Fragments,
    /// permessage-deflate messages that inflate to --inflated-size bytes of zeros.
    Compressed,
}

impl Flood {
    fn name(self) -> &'static str {
        match self {
            Flood::Plain => "plain",
            Flood::Fragments => "fragments",
            Flood::Compressed => "compressed",
        }
    }
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.mode {
        Mode::Echo(args) => echo(args),
        Mode::Broadcast(args) => broadcast(args),
        Mode::Idle(args) => idle(args),
        Mode::Fairness(args) => fairness(args),
    };
    match result {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            println!("MISMATCH {e}");
            eprintln!("wsload: the server's replies are wrong: {e}");
            std::process::exit(MISMATCH_STATUS);
        }
        Err(e) => {
            eprintln!("wsload: {e}");
            std::process::exit(1);
        }
    }
}

/// The exit status when the server's replies are wrong (2 is clap's, for bad arguments).
const MISMATCH_STATUS: i32 = 3;

/// An error for replies that differ from what the server should have sent.
fn mismatch(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

// ---------------------------------------------------------------------------------------------
// Connections

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// The opening handshake's request, with `extensions` offered in `Sec-WebSocket-Extensions`.
fn upgrade_request(addr: SocketAddr, extensions: Option<&str>) -> Vec<u8> {
    upgrade_request_to(addr, "/", extensions)
}

fn upgrade_request_to(addr: SocketAddr, path: &str, extensions: Option<&str>) -> Vec<u8> {
    let request = ClientRequest {
        host: addr.to_string(),
        resource: path.to_string(),
        ..ClientRequest::default()
    };
    let mut out = Vec::new();
    client_handshake::write_request(&request, KEY, extensions, &mut out);
    out
}

/// The length of the response head at the front of `received`, once it is all there.
fn response_head_len(received: &[u8]) -> Option<usize> {
    match HeadScanner::new().scan(received, Limits::default().max_head_size) {
        Ok(Status::Complete(len)) => Some(len),
        _ => None,
    }
}

/// Checks a response head with the crate's client rules (RFC 6455 §4.1): a 101 with the right
/// accept key and, when `extension` was offered, the extension accepted.
fn check_response(head: &[u8], extension: Option<&str>) -> io::Result<()> {
    let deflate = DeflateConfig {
        enabled: extension.is_some(),
        ..DeflateConfig::default()
    };
    let accepted = client_handshake::check_response(
        head,
        KEY,
        &ClientRequest::default(),
        &deflate,
        &Limits::default(),
    )
    .map_err(|e| io::Error::other(format!("handshake: {e}")))?;
    if let (Some(extension), None) = (extension, accepted.deflate) {
        return Err(io::Error::other(format!(
            "the server did not accept {extension}"
        )));
    }
    Ok(())
}

/// An open connection: its non-blocking stream, the bytes that followed the response, and its
/// TLS state (with `--tls`).
struct Opened {
    stream: TcpStream,
    leftover: Vec<u8>,
    tls: Option<Box<rustls::ClientConnection>>,
}

/// Opens a connection and completes the opening handshake (and the TLS one, with `tls`) with
/// blocking IO, then hands back a non-blocking mio stream and any bytes that followed the
/// response.
fn open(addr: SocketAddr, tls: Option<&Arc<rustls::ClientConfig>>) -> io::Result<Opened> {
    open_path(addr, "/", tls)
}

/// [`open`], asking for `path`.
fn open_path(
    addr: SocketAddr,
    path: &str,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> io::Result<Opened> {
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut tls = match tls {
        Some(config) => {
            let name = "localhost".try_into().expect("a valid name");
            let mut conn =
                rustls::ClientConnection::new(config.clone(), name).map_err(io::Error::other)?;
            // Take every frame the generator queues: it writes what rustls holds.
            conn.set_buffer_limit(None);
            Some(Box::new(conn))
        }
        None => None,
    };
    let mut transport: Box<dyn ReadWrite> = match &mut tls {
        Some(conn) => Box::new(rustls::Stream::new(&mut **conn, &mut stream)),
        None => Box::new(&mut stream),
    };
    transport.write_all(&upgrade_request_to(addr, path, None))?;
    let mut received = Vec::new();
    let mut chunk = [0u8; 1024];
    let head_end = loop {
        let n = transport.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::other("server closed during the handshake"));
        }
        received.extend_from_slice(&chunk[..n]);
        if let Some(len) = response_head_len(&received) {
            break len;
        }
    };
    drop(transport);
    check_response(&received[..head_end], None)?;
    stream.set_nonblocking(true)?;
    Ok(Opened {
        stream: TcpStream::from_std(stream),
        leftover: received[head_end..].to_vec(),
        tls,
    })
}

/// A blocking stream, plain or TLS, for the opening handshake.
trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// Opens `n` connections one after the other, so that the server's accept queue never overflows
/// (10 000 take under 2 s against the Rust servers and about 3 s against Node's `ws`).
fn open_many(
    addr: SocketAddr,
    n: usize,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> io::Result<Vec<Opened>> {
    (0..n).map(|_| open(addr, tls)).collect()
}

/// One client connection in the event loop.
struct Conn {
    stream: TcpStream,
    /// The TLS state, with `--tls`: frames are encrypted into it and written from it, and
    /// records read into it and decrypted into `input`.
    tls: Option<Box<rustls::ClientConnection>>,
    /// Received bytes: `input[parsed..filled]` is not yet parsed. Allocated once and reused, so
    /// that a read costs no memset and no allocation.
    input: Vec<u8>,
    filled: usize,
    parsed: usize,
    output: Vec<u8>,
    written: usize,
    writable_registered: bool,
}

/// Room a read asks for at the least.
const READ_CHUNK: usize = 64 * 1024;

impl Conn {
    fn new(opened: Opened) -> Conn {
        let Opened {
            stream,
            leftover,
            tls,
        } = opened;
        let mut input = vec![0u8; (2 * READ_CHUNK).max(leftover.len() * 2)];
        input[..leftover.len()].copy_from_slice(&leftover);
        Conn {
            stream,
            tls,
            filled: leftover.len(),
            input,
            parsed: 0,
            output: Vec::new(),
            written: 0,
            writable_registered: false,
        }
    }

    /// Reads what is available. Returns false on EOF. A read that does not fill the room it was
    /// given has drained the socket (new bytes raise a new readiness edge), so it is not followed
    /// by one that would only return `WouldBlock`.
    fn fill(&mut self) -> io::Result<bool> {
        loop {
            match self.read_once(usize::MAX)? {
                None => return Ok(false),
                Some(true) => {}
                Some(false) => return Ok(true),
            }
        }
    }

    /// One read of at most `limit` bytes. Returns `None` on EOF, else whether the socket may hold
    /// more (the read filled all it asked for).
    fn read_once(&mut self, limit: usize) -> io::Result<Option<bool>> {
        if self.parsed == self.filled {
            self.parsed = 0;
            self.filled = 0;
        }
        if self.input.len() - self.filled < READ_CHUNK {
            // Move the unparsed bytes to the front, and grow if they fill half the buffer.
            self.input.copy_within(self.parsed..self.filled, 0);
            self.filled -= self.parsed;
            self.parsed = 0;
            if self.input.len() - self.filled < READ_CHUNK {
                let len = self.input.len() * 2;
                self.input.resize(len, 0);
            }
        }
        let end = self.input.len().min(self.filled.saturating_add(limit));
        if self.tls.is_some() {
            return self.read_tls_once(end);
        }
        loop {
            match self.stream.read(&mut self.input[self.filled..end]) {
                Ok(0) => return Ok(None),
                Ok(n) => {
                    self.filled += n;
                    return Ok(Some(self.filled == end));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Some(false)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// `read_once` over TLS: decrypted bytes into `input[filled..end]`, reading records until
    /// the socket would block or that room is full (`Some(true)`: there may be more).
    fn read_tls_once(&mut self, end: usize) -> io::Result<Option<bool>> {
        let tls = self.tls.as_mut().expect("a TLS connection");
        loop {
            if self.filled < end {
                match tls.reader().read(&mut self.input[self.filled..end]) {
                    Ok(0) => return Ok(None), // close_notify
                    Ok(n) => {
                        self.filled += n;
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
                    Err(e) => return Err(e),
                }
            } else {
                return Ok(Some(true));
            }
            match tls.read_tls(&mut self.stream) {
                Ok(_) => {
                    tls.process_new_packets().map_err(io::Error::other)?;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Some(false)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The next complete server message in one frame: (opcode, payload range in `input`).
    fn next_frame(&mut self) -> io::Result<Option<(Opcode, std::ops::Range<usize>)>> {
        match self.next_any_frame()? {
            Some((header, range)) if header.fin => Ok(Some((header.opcode, range))),
            Some(_) => Err(io::Error::other("server sent a fragmented frame")),
            None => Ok(None),
        }
    }

    /// The next complete server frame, a fragment or not: (header, payload range in `input`).
    fn next_any_frame(&mut self) -> io::Result<Option<(FrameHeader, std::ops::Range<usize>)>> {
        let unparsed = &self.input[self.parsed..self.filled];
        match frame::decode_header(unparsed) {
            Ok(Status::Complete((header, len))) => {
                if header.mask.is_some() {
                    return Err(io::Error::other("server sent a masked frame"));
                }
                let total = len + header.payload_len as usize;
                if unparsed.len() < total {
                    return Ok(None);
                }
                let start = self.parsed + len;
                self.parsed += total;
                Ok(Some((header, start..start + header.payload_len as usize)))
            }
            Ok(Status::Partial) => Ok(None),
            Err(e) => Err(mismatch(format!("bad frame from server: {e}"))),
        }
    }

    /// Writes queued output. Returns whether bytes remain.
    fn flush(&mut self) -> io::Result<bool> {
        if let Some(tls) = &mut self.tls {
            // Encrypt everything queued (the buffer has no limit), then write records.
            tls.writer().write_all(&self.output[self.written..])?;
            self.output.clear();
            self.written = 0;
            while tls.wants_write() {
                match tls.write_tls(&mut self.stream) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            return Ok(false);
        }
        while self.written < self.output.len() {
            match self.stream.write(&self.output[self.written..]) {
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.output.clear();
        self.written = 0;
        Ok(false)
    }

    fn update_interest(&mut self, poll: &Poll, token: Token, pending: bool) -> io::Result<()> {
        if pending != self.writable_registered {
            let interest = if pending {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            poll.registry()
                .reregister(&mut self.stream, token, interest)?;
            self.writable_registered = pending;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Messages

/// Digits of the sequence number at the front of every payload.
const SEQ_DIGITS: usize = 16;
/// Digits of the sender's number after the sequence number, in broadcast payloads (where every
/// sender counts its own sequence); echo payloads carry none.
const SENDER_DIGITS: usize = 8;

/// A client frame masked once; each message copies it and rewrites its sequence digits (and its
/// sender digits).
struct Template {
    frame: Vec<u8>,
    header_len: usize,
    key: [u8; 4],
    payload: Vec<u8>,
    opcode: Opcode,
    /// How many digits after the sequence number name the sender (0 in echo payloads).
    sender_digits: usize,
    /// The sequence digits of a settling probe.
    probe_digits: [u8; SEQ_DIGITS],
}

impl Template {
    fn new(size: usize, text: bool, key: [u8; 4]) -> Template {
        // ASCII letters: valid as text and as binary.
        let payload: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
        let opcode = if text { Opcode::Text } else { Opcode::Binary };
        let header = FrameHeader {
            fin: true,
            rsv1: false,
            rsv2: false,
            rsv3: false,
            opcode,
            mask: Some(key),
            payload_len: size as u64,
        };
        let mut bytes = [0u8; MAX_HEADER_LEN];
        let header_len = frame::encode_header(&header, &mut bytes);
        let mut frame = bytes[..header_len].to_vec();
        frame.extend_from_slice(&payload);
        apply_mask(&mut frame[header_len..], key, 0);
        Template {
            frame,
            header_len,
            key,
            payload,
            opcode,
            sender_digits: 0,
            probe_digits: seq_digits(PROBE_SEQ, SEQ_DIGITS.min(size)),
        }
    }

    /// The same template with room for the numbers of `senders` senders after the sequence
    /// digits, or an error when the payload is too short to tell them apart.
    fn with_senders(mut self, senders: usize) -> io::Result<Template> {
        self.sender_digits = SENDER_DIGITS.min(self.payload.len() - self.digits());
        if senders == 0 {
            return Err(io::Error::other("at least one sender is needed"));
        }
        if senders as u64 > 16u64.pow(self.sender_digits as u32) {
            return Err(io::Error::other(format!(
                "a payload of {} bytes cannot name {senders} senders",
                self.payload.len()
            )));
        }
        Ok(self)
    }

    fn digits(&self) -> usize {
        SEQ_DIGITS.min(self.payload.len())
    }

    /// Appends message `seq` of sender `sender` to `out`.
    fn write(&self, sender: usize, seq: u64, out: &mut Vec<u8>) {
        let start = out.len() + self.header_len;
        out.extend_from_slice(&self.frame);
        let (d, sd) = (self.digits(), self.sender_digits);
        let mut digits = seq_digits(seq, d);
        apply_mask(&mut digits[..d], self.key, 0);
        out[start..start + d].copy_from_slice(&digits[..d]);
        if sd > 0 {
            let mut digits = seq_digits(sender as u64, sd);
            apply_mask(&mut digits[..sd], self.key, d);
            out[start + d..start + d + sd].copy_from_slice(&digits[..sd]);
        }
    }

    /// The unmasked payload of message `seq` of sender `sender`, byte for byte as every
    /// connection must receive it.
    fn expected(&self, sender: usize, seq: u64) -> Vec<u8> {
        let (d, sd) = (self.digits(), self.sender_digits);
        let mut payload = self.payload.clone();
        payload[..d].copy_from_slice(&seq_digits(seq, d)[..d]);
        payload[d..d + sd].copy_from_slice(&seq_digits(sender as u64, sd)[..sd]);
        payload
    }

    /// Whether an unmasked payload is a settling probe.
    fn is_probe(&self, payload: &[u8]) -> bool {
        let d = self.digits();
        payload.len() >= d && payload[..d] == self.probe_digits[..d]
    }

    /// The sender named by an unmasked payload, or a mismatch when it names none of `senders`.
    fn sender_of(&self, payload: &[u8], senders: usize) -> io::Result<usize> {
        let (d, sd) = (self.digits(), self.sender_digits);
        let digits = payload.get(d..d + sd).unwrap_or_default();
        // Lower-case hexadecimal, as `seq_digits` writes it (parsed here per delivery, so by
        // hand rather than through a string).
        let sender = match sd {
            0 => Some(0),
            _ => digits.iter().try_fold(0usize, |value, &digit| {
                let nibble = match digit {
                    b'0'..=b'9' => digit - b'0',
                    b'a'..=b'f' => digit - b'a' + 10,
                    _ => return None,
                };
                Some(value << 4 | nibble as usize)
            }),
        };
        match sender {
            Some(sender) if sender < senders && digits.len() == sd => Ok(sender),
            _ => Err(mismatch(format!(
                "a message from no sender: {:?}",
                String::from_utf8_lossy(&payload[..payload.len().min(d + sd)])
            ))),
        }
    }

    /// Checks an unmasked payload: the right length, sequence, sender and bytes.
    fn check(&self, opcode: Opcode, payload: &[u8], sender: usize, seq: u64) -> io::Result<()> {
        let (d, sd) = (self.digits(), self.sender_digits);
        if opcode != self.opcode || payload.len() != self.payload.len() {
            return Err(mismatch(format!(
                "expected {:?} of {} bytes, got {opcode:?} of {}",
                self.opcode,
                self.payload.len(),
                payload.len()
            )));
        }
        // Sixteen digits compare as one fixed-size array, in a few instructions (a slice
        // comparison is a call to `memcmp`, per message).
        let digits_differ = match <[u8; SEQ_DIGITS]>::try_from(&payload[..d]) {
            Ok(got) => got != seq_digits(seq, d),
            Err(_) => payload[..d] != seq_digits(seq, d)[..d],
        };
        if digits_differ {
            let from = if sd > 0 {
                format!(" from sender {sender}")
            } else {
                String::new()
            };
            return Err(mismatch(format!(
                "expected message {seq}{from}, got {:?}",
                String::from_utf8_lossy(&payload[..d])
            )));
        }
        if payload[d..d + sd] != seq_digits(sender as u64, sd)[..sd] {
            return Err(mismatch(format!(
                "expected a message from sender {sender}, got {:?}",
                String::from_utf8_lossy(&payload[d..d + sd])
            )));
        }
        if payload[d + sd..] != self.payload[d + sd..] {
            return Err(mismatch(format!("payload of message {seq} differs")));
        }
        Ok(())
    }
}

/// `seq` in hexadecimal, zero-padded, the lowest `n` digits. Written a nibble at a time: it runs
/// two or three times per message, and formatting through `format!` (an allocation each time)
/// was a third of the generator's own CPU time in the pipelined echo cell.
fn seq_digits(seq: u64, n: usize) -> [u8; SEQ_DIGITS] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'0'; SEQ_DIGITS];
    for (i, digit) in out[..n].iter_mut().enumerate() {
        let shift = 4 * (n - 1 - i);
        *digit = HEX[((seq >> shift) & 0xf) as usize];
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Measurement

/// CPU seconds (user + system) a process has used, from /proc/PID/stat.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

/// CPU seconds the processes have used together; `None` if there are none or one is gone.
fn cpu_total(pids: &[u32]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&pid| cpu_seconds(pid)).sum()
}

fn clock_ticks() -> f64 {
    // sysconf(_SC_CLK_TCK) is 100 on every Linux the benchmark runs on; `getconf` confirms it.
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

fn self_cpu_seconds() -> f64 {
    cpu_seconds(std::process::id()).unwrap_or(0.0)
}

/// Resident memory of a process in bytes, from /proc/PID/status.
fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Latencies in whole microseconds, counted per microsecond below [`Latencies::TABLE_US`] (and
/// kept one by one above it): the same percentiles as sorting every latency, without keeping
/// one entry per message. A list of tens of millions of entries was copied each time it grew,
/// mid-run, on the generator's core.
struct Latencies {
    counts: Vec<u32>,
    over: Vec<u32>,
    len: u64,
}

impl Latencies {
    /// The microseconds counted in the table (about a second); any longer latency is kept.
    const TABLE_US: usize = 1 << 20;

    fn new() -> Self {
        Latencies {
            counts: vec![0; Self::TABLE_US],
            over: Vec::new(),
            len: 0,
        }
    }

    fn record(&mut self, latency: Duration) {
        let us = latency.as_micros().min(u32::MAX as u128) as u32;
        match self.counts.get_mut(us as usize) {
            Some(count) => *count += 1,
            None => self.over.push(us),
        }
        self.len += 1;
    }

    /// The latency at fraction `p` of them in ascending order (the one `percentile` picks from
    /// the sorted list), 0 when there are none.
    fn percentile(&mut self, p: f64) -> u32 {
        if self.len == 0 {
            return 0;
        }
        let rank = ((self.len - 1) as f64 * p).round() as u64;
        let mut below = 0u64;
        for (us, &count) in self.counts.iter().enumerate() {
            below += u64::from(count);
            if rank < below {
                return us as u32;
            }
        }
        self.over.sort_unstable();
        self.over[(rank - below) as usize]
    }
}

/// The measurement window and CPU readings around it.
struct Window {
    start: Instant,
    end: Instant,
    server_cpu_start: Option<f64>,
    self_cpu_start: f64,
    started: bool,
}

impl Window {
    fn new(warmup: f64, duration: f64) -> Window {
        let start = Instant::now() + Duration::from_secs_f64(warmup);
        Window {
            start,
            end: start + Duration::from_secs_f64(duration),
            server_cpu_start: None,
            self_cpu_start: 0.0,
            started: false,
        }
    }

    /// Whether `now` is inside the window; starts the CPU readings on first entry.
    fn measuring(&mut self, now: Instant, pids: &[u32]) -> bool {
        if now < self.start {
            return false;
        }
        if !self.started {
            self.started = true;
            self.start = now;
            self.server_cpu_start = cpu_total(pids);
            self.self_cpu_start = self_cpu_seconds();
        }
        now < self.end
    }

    /// (elapsed seconds, server CPU seconds, load generator CPU seconds)
    fn finish(&self, pids: &[u32]) -> (f64, Option<f64>, f64) {
        let elapsed = self.end.duration_since(self.start).as_secs_f64();
        let server = match (self.server_cpu_start, cpu_total(pids)) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        (elapsed, server, self_cpu_seconds() - self.self_cpu_start)
    }
}

fn report(mode: &str, fields: &[(&str, String)]) {
    let line: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for (k, v) in fields {
        println!("  {k:<22} {v}");
    }
    println!("RESULT mode={mode} {}", line.join(" "));
}

// ---------------------------------------------------------------------------------------------
// Echo

fn echo(args: EchoArgs) -> io::Result<()> {
    let pid = args.common.pid;
    let mut poll = Poll::new()?;
    let mut conns = Vec::with_capacity(args.connections);
    let tls = args.common.tls()?;
    for (i, opened) in open_many(args.common.addr, args.connections, tls.as_ref())?
        .into_iter()
        .enumerate()
    {
        let mut conn = Conn::new(opened);
        poll.registry()
            .register(&mut conn.stream, Token(i), Interest::READABLE)?;
        conns.push(conn);
    }
    let template = Template::new(args.size, args.text, [0x12, 0x34, 0x56, 0x78]);
    let mut next_seq = vec![0u64; conns.len()];
    let mut expect_seq = vec![0u64; conns.len()];
    let mut sent_at: Vec<VecDeque<Instant>> =
        vec![VecDeque::with_capacity(args.in_flight); conns.len()];
    let mut rtts = Latencies::new();
    let mut messages = 0u64;
    let mut window = Window::new(args.warmup, args.duration);

    let now = Instant::now();
    for (i, conn) in conns.iter_mut().enumerate() {
        for _ in 0..args.in_flight {
            template.write(0, next_seq[i], &mut conn.output);
            next_seq[i] += 1;
            sent_at[i].push_back(now);
        }
        let pending = conn.flush()?;
        conn.update_interest(&poll, Token(i), pending)?;
    }
    let mut events = Events::with_capacity(1024);
    loop {
        poll.poll(&mut events, Some(Duration::from_millis(10)))?;
        let now = Instant::now();
        let measuring = window.measuring(now, pid.as_slice());
        if now >= window.end {
            break;
        }
        for event in events.iter() {
            let i = event.token().0;
            let conn = &mut conns[i];
            if event.is_readable() && !conn.fill()? {
                return Err(io::Error::other("server closed a connection"));
            }
            while let Some((opcode, range)) = conn.next_frame()? {
                template.check(opcode, &conn.input[range], 0, expect_seq[i])?;
                expect_seq[i] += 1;
                let sent = sent_at[i].pop_front().expect("a reply matches a request");
                if measuring {
                    messages += 1;
                    rtts.record(now.duration_since(sent));
                }
                template.write(0, next_seq[i], &mut conn.output);
                next_seq[i] += 1;
                sent_at[i].push_back(now);
            }
            let pending = conn.flush()?;
            conn.update_interest(&poll, Token(i), pending)?;
        }
    }
    let (elapsed, server_cpu, self_cpu) = window.finish(pid.as_slice());
    let rate = messages as f64 / elapsed;
    let mut fields = vec![
        ("connections", args.connections.to_string()),
        ("in_flight", args.in_flight.to_string()),
        ("size", args.size.to_string()),
        ("messages_per_sec", format!("{rate:.0}")),
        (
            "mb_per_sec",
            format!("{:.1}", rate * args.size as f64 / 1e6),
        ),
        ("rtt_p50_us", rtts.percentile(0.5).to_string()),
        ("rtt_p99_us", rtts.percentile(0.99).to_string()),
        (
            "loadgen_cpu_pct",
            format!("{:.0}", 100.0 * self_cpu / elapsed),
        ),
    ];
    if let Some(cpu) = server_cpu {
        fields.push(("server_cpu_pct", format!("{:.0}", 100.0 * cpu / elapsed)));
        fields.push((
            "server_us_per_msg",
            format!("{:.3}", cpu * 1e6 / messages.max(1) as f64),
        ));
    }
    report("echo", &fields);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Broadcast

fn broadcast(args: BroadcastArgs) -> io::Result<()> {
    let pid = args.common.pid;
    let senders = args.senders;
    let mut poll = Poll::new()?;
    // Connections 0..senders send; every connection, senders included, receives every message.
    let total = args.receivers + senders;
    let template =
        Template::new(args.size, true, [0x9a, 0xbc, 0xde, 0xf0]).with_senders(senders)?;
    let mut conns = Vec::with_capacity(total);
    let addrs: Vec<SocketAddr> = std::iter::once(args.common.addr)
        .chain(args.also_addrs.iter().copied())
        .collect();
    let tls = args.common.tls()?;
    let opened: Vec<Opened> = (0..total)
        .map(|i| open_path(addrs[i % addrs.len()], &args.path, tls.as_ref()))
        .collect::<io::Result<_>>()?;
    let pids: Vec<u32> = pid
        .into_iter()
        .chain(args.also_pids.iter().copied())
        .collect();
    for (i, opened) in opened.into_iter().enumerate() {
        let mut conn = Conn::new(opened);
        poll.registry()
            .register(&mut conn.stream, Token(i), Interest::READABLE)?;
        conns.push(conn);
    }
    // Settle: a broadcast server registers a connection some time after its handshake. Send
    // probes until every connection has received one, and only then start the sequences.
    settle_broadcast(&poll, &mut conns, &template)?;
    let mut outgoing: Vec<Outgoing> = (0..senders).map(|_| Outgoing::default()).collect();
    // The next message each connection expects from each sender: [receiver * senders + sender].
    let mut expect_seq = vec![0u64; total * senders];
    let mut in_flight = 0usize;
    let mut next_sender = 0usize;
    let mut queued: Vec<usize> = Vec::with_capacity(senders);
    let mut lags = Latencies::new();
    let mut deliveries = 0u64;
    let mut messages = 0u64;
    let mut window = Window::new(args.warmup, args.duration);
    let mut events = Events::with_capacity(4096);
    loop {
        let now = Instant::now();
        // Keep the window full, taking the senders in turn.
        while in_flight < args.window {
            let s = next_sender;
            next_sender = (next_sender + 1) % senders;
            let out = &mut outgoing[s];
            template.write(s, out.next_seq, &mut conns[s].output);
            out.expected.push_back(template.expected(s, out.next_seq));
            out.next_seq += 1;
            out.sent_at.push_back(now);
            out.delivered.push_back(0);
            in_flight += 1;
            if !queued.contains(&s) {
                queued.push(s);
            }
        }
        for s in queued.drain(..) {
            let pending = conns[s].flush()?;
            conns[s].update_interest(&poll, Token(s), pending)?;
        }

        poll.poll(&mut events, Some(Duration::from_millis(10)))?;
        let now = Instant::now();
        let measuring = window.measuring(now, &pids);
        if now >= window.end {
            break;
        }
        for event in events.iter() {
            let i = event.token().0;
            let conn = &mut conns[i];
            if event.is_readable() && !conn.fill()? {
                return Err(io::Error::other(format!("server closed connection {i}")));
            }
            while let Some((opcode, range)) = conn.next_frame()? {
                let payload = &conn.input[range];
                if template.is_probe(payload) {
                    continue;
                }
                let s = template.sender_of(payload, senders)?;
                let seq = expect_seq[i * senders + s];
                let out = &mut outgoing[s];
                // At or after `first_in_flight`: that message is retired only once every
                // connection, this one included, has received it.
                let index = (seq - out.first_in_flight) as usize;
                // Every byte is compared with the message as it was sent, in one comparison;
                // `check` runs only to say what differs.
                let sent = out.expected.get(index);
                if opcode != template.opcode || sent.is_none_or(|sent| payload != &sent[..]) {
                    template.check(opcode, payload, s, seq)?;
                    return Err(mismatch(match sent {
                        None => format!("message {seq} from sender {s} arrived before it was sent"),
                        Some(_) => format!("payload of message {seq} differs"),
                    }));
                }
                expect_seq[i * senders + s] += 1;
                out.delivered[index] += 1;
                if measuring {
                    deliveries += 1;
                    lags.record(now.duration_since(out.sent_at[index]));
                }
            }
            if event.is_writable() {
                let pending = conn.flush()?;
                conn.update_interest(&poll, Token(i), pending)?;
            }
        }
        // Retire messages every connection has received.
        for out in &mut outgoing {
            while out.delivered.front() == Some(&total) {
                out.delivered.pop_front();
                out.sent_at.pop_front();
                out.expected.pop_front();
                out.first_in_flight += 1;
                in_flight -= 1;
                if measuring {
                    messages += 1;
                }
            }
        }
    }
    let (elapsed, server_cpu, self_cpu) = window.finish(&pids);
    let mut fields = vec![
        ("receivers", total.to_string()),
        ("senders", senders.to_string()),
        ("size", args.size.to_string()),
        (
            "messages_per_sec",
            format!("{:.0}", messages as f64 / elapsed),
        ),
        (
            "deliveries_per_sec",
            format!("{:.0}", deliveries as f64 / elapsed),
        ),
        ("lag_p50_us", lags.percentile(0.5).to_string()),
        ("lag_p99_us", lags.percentile(0.99).to_string()),
        (
            "loadgen_cpu_pct",
            format!("{:.0}", 100.0 * self_cpu / elapsed),
        ),
    ];
    if let Some(cpu) = server_cpu {
        fields.push(("server_cpu_pct", format!("{:.0}", 100.0 * cpu / elapsed)));
        fields.push((
            "server_us_per_delivery",
            format!("{:.3}", cpu * 1e6 / deliveries.max(1) as f64),
        ));
    }
    report("broadcast", &fields);
    Ok(())
}

/// One sender's messages in flight: sent, and not yet received by every connection.
#[derive(Default)]
struct Outgoing {
    next_seq: u64,
    /// The sequence number of `sent_at[0]` and `delivered[0]`.
    first_in_flight: u64,
    sent_at: VecDeque<Instant>,
    /// Per message in flight: the connections that have received it so far.
    delivered: VecDeque<usize>,
    /// Per message in flight: its unmasked payload.
    expected: VecDeque<Vec<u8>>,
}

/// The sequence number of settling probes; the measured sequence never reaches it.
const PROBE_SEQ: u64 = u64::MAX;

/// Sends probes from the sender until every connection has received one, so that the measured
/// sequence starts with every receiver registered. Probes still in flight afterwards are skipped.
fn settle_broadcast(poll: &Poll, conns: &mut [Conn], template: &Template) -> io::Result<()> {
    let mut got = vec![false; conns.len()];
    let deadline = Instant::now() + Duration::from_secs(30);
    while !got.iter().all(|&g| g) {
        if Instant::now() > deadline {
            return Err(io::Error::other(
                "not every receiver got a probe within 30 s",
            ));
        }
        template.write(0, PROBE_SEQ, &mut conns[0].output);
        let pending = conns[0].flush()?;
        conns[0].update_interest(poll, Token(0), pending)?;
        std::thread::sleep(Duration::from_millis(50));
        for (i, conn) in conns.iter_mut().enumerate() {
            if !conn.fill()? {
                return Err(io::Error::other(format!("server closed connection {i}")));
            }
            while let Some((_, range)) = conn.next_frame()? {
                got[i] |= template.is_probe(&conn.input[range]);
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Idle

fn idle(args: IdleArgs) -> io::Result<()> {
    let pid = args
        .common
        .pid
        .ok_or_else(|| io::Error::other("idle mode needs --pid"))?;
    let before =
        rss_bytes(pid).ok_or_else(|| io::Error::other("cannot read the server's memory"))?;
    let tls = args.common.tls()?;
    let conns = open_many(args.common.addr, args.connections, tls.as_ref())?;
    std::thread::sleep(Duration::from_secs_f64(args.settle));
    let after =
        rss_bytes(pid).ok_or_else(|| io::Error::other("cannot read the server's memory"))?;
    let per_connection = after.saturating_sub(before) as f64 / conns.len() as f64;
    report(
        "idle",
        &[
            ("connections", conns.len().to_string()),
            ("rss_before_kib", (before / 1024).to_string()),
            ("rss_after_kib", (after / 1024).to_string()),
            ("bytes_per_connection", format!("{per_connection:.0}")),
        ],
    );
    drop(conns);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Fairness

/// The innocent client's token; the flooding connection's is `1 + generation`.
const INNOCENT: Token = Token(0);

/// Bytes the flooding connection reads or writes at most per turn of the loop.
const FLOOD_CHUNK: usize = 64 * 1024;

fn fairness(args: FairnessArgs) -> io::Result<()> {
    let pid = args.common.pid;
    let mut poll = Poll::new()?;
    if args.common.tls {
        return Err(io::Error::other("the fairness mode has no --tls"));
    }
    let mut innocent = Conn::new(open(args.common.addr, None)?);
    poll.registry()
        .register(&mut innocent.stream, INNOCENT, Interest::READABLE)?;
    let template = Template::new(args.size, false, [0x21, 0x43, 0x65, 0x87]);
    let mut flooder = Flooder::new(&args, &poll)?;

    let mut next_seq = 0u64;
    let mut sent_at = Instant::now();
    template.write(0, next_seq, &mut innocent.output);
    let pending = innocent.flush()?;
    innocent.update_interest(&poll, INNOCENT, pending)?;
    let mut rtts_us: Vec<u32> = Vec::with_capacity(1 << 20);
    let mut window = Window::new(args.warmup, args.duration);
    let mut events = Events::with_capacity(64);
    let ended = loop {
        let timeout = if flooder.busy() {
            Duration::ZERO
        } else {
            Duration::from_millis(10)
        };
        poll.poll(&mut events, Some(timeout))?;
        let now = Instant::now();
        let measuring = window.measuring(now, pid.as_slice());
        if now >= window.end {
            break now;
        }
        let mut innocent_ready = false;
        for event in events.iter() {
            if event.token() == INNOCENT {
                innocent_ready = true;
            } else if event.token() == flooder.token() {
                flooder.readable |=
                    event.is_readable() || event.is_read_closed() || event.is_error();
                flooder.writable |=
                    event.is_writable() || event.is_write_closed() || event.is_error();
            }
        }
        // The innocent first: its reply was timed when poll returned.
        if innocent_ready {
            if !innocent.fill()? {
                return Err(io::Error::other("server closed the innocent connection"));
            }
            while let Some((opcode, range)) = innocent.next_frame()? {
                template.check(opcode, &innocent.input[range], 0, next_seq)?;
                if measuring {
                    let rtt = now.duration_since(sent_at).as_micros();
                    rtts_us.push(rtt.min(u32::MAX as u128) as u32);
                }
                next_seq += 1;
                sent_at = Instant::now();
                template.write(0, next_seq, &mut innocent.output);
            }
            let pending = innocent.flush()?;
            innocent.update_interest(&poll, INNOCENT, pending)?;
        }
        flooder.turn(&poll, measuring)?;
    };
    let (elapsed, server_cpu, self_cpu) = window.finish(pid.as_slice());
    let round_trips = rtts_us.len();
    // The message still unanswered counts with what it has waited so far, a lower bound: a
    // server that starves the innocent for the whole window must not show as fast.
    let unanswered_us = ended
        .duration_since(sent_at)
        .as_micros()
        .min(u32::MAX as u128) as u32;
    rtts_us.push(unanswered_us);
    rtts_us.sort_unstable();
    let stats = &flooder.stats;
    let mut fields = vec![
        ("flood", args.flood.name().to_string()),
        ("innocent_p50_us", percentile(&rtts_us, 0.5).to_string()),
        ("innocent_p99_us", percentile(&rtts_us, 0.99).to_string()),
        (
            "innocent_max_us",
            rtts_us.last().copied().unwrap_or(0).to_string(),
        ),
        ("innocent_round_trips", round_trips.to_string()),
        ("innocent_unanswered_us", unanswered_us.to_string()),
        (
            "flood_bytes_per_sec",
            format!("{:.0}", stats.bytes as f64 / elapsed),
        ),
        ("flood_messages", stats.messages.to_string()),
        ("flood_reconnects", stats.reconnects.to_string()),
        ("flood_closes", stats.closes.to_string()),
        (
            "flood_close_code",
            stats
                .close_code
                .map_or_else(|| "none".to_string(), |c| c.to_string()),
        ),
        (
            "loadgen_cpu_pct",
            format!("{:.0}", 100.0 * self_cpu / elapsed),
        ),
    ];
    if let Some(cpu) = server_cpu {
        fields.push(("server_cpu_pct", format!("{:.0}", 100.0 * cpu / elapsed)));
    }
    report("fairness", &fields);
    Ok(())
}

/// What the flooding connection sends once open.
enum FloodBytes {
    /// Each message is this template with the next sequence number; echoes are checked.
    Plain(Template),
    /// `opening` starts the message (a non-final binary frame), then `block`, a run of masked
    /// empty and 1-byte non-final continuation frames, is sent again and again.
    Fragments { opening: Vec<u8>, block: Vec<u8> },
    /// One masked compressed message (RSV1 set), sent again and again.
    Compressed(Vec<u8>),
}

/// What the flood achieved inside the measurement window.
#[derive(Default)]
struct FloodStats {
    /// Bytes of frames written (handshakes not counted).
    bytes: u64,
    /// Complete messages the server sent back.
    messages: u64,
    /// Connections opened again after the server closed one.
    reconnects: u64,
    /// Close frames received.
    closes: u64,
    /// The code of the last close frame received.
    close_code: Option<u16>,
}

/// The flooding connection. It is opened without blocking, so that a handshake never holds up the
/// innocent client, and opened again whenever the server closes it.
struct Flooder {
    addr: SocketAddr,
    bytes: FloodBytes,
    /// The extension the server must accept, for the compressed flood.
    extension: Option<&'static str>,
    conn: Conn,
    generation: usize,
    /// The handshake is complete.
    open: bool,
    /// Readiness seen and not yet used up (the events are edge-triggered).
    readable: bool,
    writable: bool,
    next_seq: u64,
    expect_seq: u64,
    stats: FloodStats,
}

impl Flooder {
    fn new(args: &FairnessArgs, poll: &Poll) -> io::Result<Flooder> {
        let key = [0x0f, 0x1e, 0x2d, 0x3c];
        let (bytes, extension) = match args.flood {
            Flood::Plain => (
                FloodBytes::Plain(Template::new(args.flood_size, false, key)),
                None,
            ),
            Flood::Fragments => (fragments(key), None),
            Flood::Compressed => (
                FloodBytes::Compressed(compressed_zeros(args.inflated_size, key)?),
                Some("permessage-deflate"),
            ),
        };
        Ok(Flooder {
            addr: args.common.addr,
            bytes,
            extension,
            conn: Flooder::connect(args.common.addr, extension, Token(1), poll)?,
            generation: 0,
            open: false,
            readable: false,
            writable: false,
            next_seq: 0,
            expect_seq: 0,
            stats: FloodStats::default(),
        })
    }

    fn token(&self) -> Token {
        Token(1 + self.generation)
    }

    /// Starts a connection and queues its upgrade request; the response is read in `turn`.
    fn connect(
        addr: SocketAddr,
        extension: Option<&str>,
        token: Token,
        poll: &Poll,
    ) -> io::Result<Conn> {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        poll.registry()
            .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
        let mut conn = Conn::new(Opened {
            stream,
            leftover: Vec::new(),
            tls: None,
        });
        // Offer client_no_context_takeover: every flood message is compressed on its own.
        let offer = extension.map(|e| format!("{e}; client_no_context_takeover"));
        conn.output
            .extend_from_slice(&upgrade_request(addr, offer.as_deref()));
        Ok(conn)
    }

    /// Drops the connection the server closed and starts a new one.
    fn reconnect(&mut self, poll: &Poll, measuring: bool) -> io::Result<()> {
        poll.registry().deregister(&mut self.conn.stream)?;
        self.generation += 1;
        self.conn = Flooder::connect(self.addr, self.extension, self.token(), poll)?;
        self.open = false;
        self.readable = false;
        self.writable = false;
        self.next_seq = 0;
        self.expect_seq = 0;
        if measuring {
            self.stats.reconnects += 1;
        }
        Ok(())
    }

    /// Whether the next turn has work without waiting for an event.
    fn busy(&self) -> bool {
        self.readable || (self.writable && self.conn.written < self.conn.output.len())
    }

    /// Queues the next message or block of fragments once the last one is written.
    fn refill(&mut self) {
        if self.conn.written < self.conn.output.len() {
            return;
        }
        self.conn.output.clear();
        self.conn.written = 0;
        match &self.bytes {
            FloodBytes::Plain(template) => {
                template.write(0, self.next_seq, &mut self.conn.output);
                self.next_seq += 1;
            }
            FloodBytes::Fragments { block, .. } => self.conn.output.extend_from_slice(block),
            FloodBytes::Compressed(message) => self.conn.output.extend_from_slice(message),
        }
    }

    /// One bounded step: at most one write and one read of `FLOOD_CHUNK` bytes, then the frames
    /// that are complete.
    fn turn(&mut self, poll: &Poll, measuring: bool) -> io::Result<()> {
        if self.writable {
            if self.open {
                self.refill();
            }
            let (start, end) = (
                self.conn.written,
                self.conn.output.len().min(self.conn.written + FLOOD_CHUNK),
            );
            if start < end {
                match self.conn.stream.write(&self.conn.output[start..end]) {
                    Ok(n) => {
                        self.conn.written += n;
                        if self.open && measuring {
                            self.stats.bytes += n as u64;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if self.open && closed_by_peer(&e) => {
                        return self.reconnect(poll, measuring);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        if self.readable {
            match self.conn.read_once(FLOOD_CHUNK) {
                Ok(Some(more)) => self.readable = more,
                Ok(None) if self.open => return self.reconnect(poll, measuring),
                Ok(None) => {
                    return Err(io::Error::other(
                        "server closed the flooding connection during its handshake",
                    ));
                }
                Err(e) if self.open && closed_by_peer(&e) => {
                    return self.reconnect(poll, measuring);
                }
                Err(e) => return Err(e),
            }
            if !self.open {
                let received = &self.conn.input[self.conn.parsed..self.conn.filled];
                let Some(len) = response_head_len(received) else {
                    return Ok(());
                };
                check_response(&received[..len], self.extension)?;
                self.conn.parsed += len;
                self.open = true;
                if let FloodBytes::Fragments { opening, .. } = &self.bytes {
                    self.conn.output.extend_from_slice(opening);
                }
            }
            while let Some((header, range)) = self.conn.next_any_frame()? {
                let payload = &self.conn.input[range];
                match header.opcode {
                    Opcode::Close => {
                        if measuring {
                            self.stats.closes += 1;
                            self.stats.close_code = Some(match payload {
                                [a, b, ..] => u16::from_be_bytes([*a, *b]),
                                _ => 1005, // no status code (RFC 6455 §7.1.5)
                            });
                        }
                        return self.reconnect(poll, measuring);
                    }
                    Opcode::Ping | Opcode::Pong => {}
                    _ => {
                        if let FloodBytes::Plain(template) = &self.bytes {
                            if !header.fin {
                                return Err(io::Error::other(
                                    "the plain flood checks echoes sent in one frame; the server fragmented one",
                                ));
                            }
                            template.check(header.opcode, payload, 0, self.expect_seq)?;
                            self.expect_seq += 1;
                        }
                        if header.fin && measuring {
                            self.stats.messages += 1;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Whether an IO error means the server closed or reset the connection.
fn closed_by_peer(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}

/// Masks a client frame with `key` and appends it to `out`.
fn push_frame(
    out: &mut Vec<u8>,
    fin: bool,
    rsv1: bool,
    opcode: Opcode,
    payload: &[u8],
    key: [u8; 4],
) {
    let header = FrameHeader {
        fin,
        rsv1,
        rsv2: false,
        rsv3: false,
        opcode,
        mask: Some(key),
        payload_len: payload.len() as u64,
    };
    let mut bytes = [0u8; MAX_HEADER_LEN];
    let header_len = frame::encode_header(&header, &mut bytes);
    out.extend_from_slice(&bytes[..header_len]);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], key, 0);
}

/// The fragments flood: an empty non-final binary frame, then about 64 KiB of non-final
/// continuation frames, empty and 1-byte in turn (10 082 frames per block).
fn fragments(key: [u8; 4]) -> FloodBytes {
    let mut opening = Vec::new();
    push_frame(&mut opening, false, false, Opcode::Binary, &[], key);
    let mut block = Vec::with_capacity(FLOOD_CHUNK);
    while block.len() + 13 <= FLOOD_CHUNK {
        push_frame(&mut block, false, false, Opcode::Continuation, &[], key);
        push_frame(&mut block, false, false, Opcode::Continuation, b"x", key);
    }
    FloodBytes::Fragments { opening, block }
}

/// One masked permessage-deflate message of `size` zeros: raw DEFLATE at the best ratio, ended
/// with a sync flush whose 00 00 ff ff tail is removed (RFC 7692 §7.2.1), RSV1 set (§6).
fn compressed_zeros(size: usize, key: [u8; 4]) -> io::Result<Vec<u8>> {
    let zeros = vec![0u8; size];
    let mut compress = Compress::new(Compression::best(), false);
    let mut deflated = Vec::with_capacity(size / 512 + 1024);
    loop {
        if deflated.len() == deflated.capacity() {
            deflated.reserve(64 * 1024);
        }
        let consumed = compress.total_in() as usize;
        compress
            .compress_vec(&zeros[consumed..], &mut deflated, FlushCompress::Sync)
            .map_err(io::Error::other)?;
        if compress.total_in() as usize == size && deflated.len() < deflated.capacity() {
            break;
        }
    }
    let Some(body) = deflated.strip_suffix(&DEFLATE_TAIL) else {
        return Err(io::Error::other(
            "a sync flush that does not end in 00 00 ff ff",
        ));
    };
    let mut message = Vec::new();
    push_frame(&mut message, true, true, Opcode::Binary, body, key);
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_give_the_percentiles_of_the_sorted_list() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut sorted = Vec::new();
        let mut latencies = Latencies::new();
        for i in 0..20_000u64 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Mostly short, some past the table, a few past u32's microseconds.
            let us = match i % 100 {
                0 => Latencies::TABLE_US as u64 + state % 5_000_000,
                1 => u64::MAX / 2,
                _ => state % 20_000,
            };
            let latency = Duration::from_micros(us);
            latencies.record(latency);
            sorted.push(latency.as_micros().min(u32::MAX as u128) as u32);
        }
        sorted.sort_unstable();
        for p in [0.0, 0.01, 0.5, 0.9, 0.985, 0.99, 0.995, 1.0] {
            assert_eq!(latencies.percentile(p), percentile(&sorted, p), "{p}");
        }
        assert_eq!(Latencies::new().percentile(0.5), 0);
    }
}
