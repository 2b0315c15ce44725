//! `wsload`: a single-threaded WebSocket load generator for the benchmark.
//!
//! Modes:
//! - `echo`: C connections, K messages in flight on each, payloads of S bytes; measures messages
//!   per second, MB/s and round-trip percentiles, and checks every echoed payload byte for byte.
//! - `broadcast`: R receivers and S senders (one by default), every connection receiving every
//!   message; measures deliveries per second and delivery lag, and checks that every connection
//!   gets every sender's messages in that sender's order (payloads carry the sender's number
//!   after the sequence number).
//! - `idle`: holds C open connections and reports the server's resident memory per connection.
//!
//! Client frames are masked once, ahead of time (only the sequence digits change per message), and
//! replies are parsed no further than their headers, so that the generator is rarely the
//! bottleneck. With `--pid`, the server's CPU time is read from `/proc/PID/stat` and reported as
//! microseconds per message: the figure that still compares servers when the generator saturates.
//!
//! The last line printed is `RESULT key=value ...`, read by `bench/run.sh`. When the server's
//! replies are wrong (an echo that differs in bytes, length or type, a message out of order, bytes
//! that do not parse as a frame), the last line is `MISMATCH <what>` and the exit status is 3, so
//! that a corrupting server is never mistaken for one that merely failed to run (status 1).

use clap::{Args, Parser, Subcommand};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rfc6455::frame::{self, FrameHeader, MAX_HEADER_LEN, Opcode, Status};
use rfc6455::handshake::accept_key;
use rfc6455::mask::apply_mask;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
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
}

#[derive(Args)]
struct Common {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:9001")]
    addr: SocketAddr,
    /// Server process id, to read its CPU time and memory from /proc.
    #[arg(long)]
    pid: Option<u32>,
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

fn main() {
    let cli = Cli::parse();
    let result = match cli.mode {
        Mode::Echo(args) => echo(args),
        Mode::Broadcast(args) => broadcast(args),
        Mode::Idle(args) => idle(args),
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

/// Opens a connection and completes the opening handshake with blocking IO, then hands back a
/// non-blocking mio stream and any bytes that followed the response.
fn open(addr: SocketAddr) -> io::Result<(TcpStream, Vec<u8>)> {
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes())?;
    let mut received = Vec::new();
    let mut chunk = [0u8; 1024];
    let head_end = loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::other("server closed during the handshake"));
        }
        received.extend_from_slice(&chunk[..n]);
        if let Some(pos) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
    };
    let head = String::from_utf8_lossy(&received[..head_end]).to_lowercase();
    let accept = accept_key(KEY.as_bytes()).to_lowercase();
    if !head.starts_with("http/1.1 101") || !head.contains(&accept) {
        return Err(io::Error::other(format!("handshake refused: {head}")));
    }
    stream.set_nonblocking(true)?;
    Ok((TcpStream::from_std(stream), received[head_end..].to_vec()))
}

/// Opens `n` connections one after the other, so that the server's accept queue never overflows
/// (10 000 take under 2 s against the Rust servers and about 3 s against Node's `ws`).
fn open_many(addr: SocketAddr, n: usize) -> io::Result<Vec<(TcpStream, Vec<u8>)>> {
    (0..n).map(|_| open(addr)).collect()
}

/// One client connection in the event loop.
struct Conn {
    stream: TcpStream,
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
    fn new(stream: TcpStream, leftover: Vec<u8>) -> Conn {
        let mut input = vec![0u8; (2 * READ_CHUNK).max(leftover.len() * 2)];
        input[..leftover.len()].copy_from_slice(&leftover);
        Conn {
            stream,
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
        if self.parsed == self.filled {
            self.parsed = 0;
            self.filled = 0;
        }
        loop {
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
            let room = self.input.len() - self.filled;
            match self.stream.read(&mut self.input[self.filled..]) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.filled += n;
                    if n < room {
                        return Ok(true);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The next complete server frame: (opcode, payload range in `input`).
    fn next_frame(&mut self) -> io::Result<Option<(Opcode, std::ops::Range<usize>)>> {
        let unparsed = &self.input[self.parsed..self.filled];
        match frame::decode_header(unparsed) {
            Ok(Status::Complete((header, len))) => {
                if header.mask.is_some() || !header.fin {
                    return Err(io::Error::other("server sent a masked or fragmented frame"));
                }
                let total = len + header.payload_len as usize;
                if unparsed.len() < total {
                    return Ok(None);
                }
                let start = self.parsed + len;
                self.parsed += total;
                Ok(Some((
                    header.opcode,
                    start..start + header.payload_len as usize,
                )))
            }
            Ok(Status::Partial) => Ok(None),
            Err(e) => Err(mismatch(format!("bad frame from server: {e}"))),
        }
    }

    /// Writes queued output. Returns whether bytes remain.
    fn flush(&mut self) -> io::Result<bool> {
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

    /// Whether an unmasked payload is a settling probe.
    fn is_probe(&self, payload: &[u8]) -> bool {
        let d = self.digits();
        payload.len() >= d && payload[..d] == seq_digits(PROBE_SEQ, d)[..d]
    }

    /// The sender named by an unmasked payload, or a mismatch when it names none of `senders`.
    fn sender_of(&self, payload: &[u8], senders: usize) -> io::Result<usize> {
        let (d, sd) = (self.digits(), self.sender_digits);
        let digits = payload.get(d..d + sd).unwrap_or_default();
        let sender = std::str::from_utf8(digits)
            .ok()
            .and_then(|hex| usize::from_str_radix(hex, 16).ok())
            .or((sd == 0).then_some(0));
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
        if payload[..d] != seq_digits(seq, d)[..d] {
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

/// `seq` in hexadecimal, zero-padded, the lowest `n` digits.
fn seq_digits(seq: u64, n: usize) -> [u8; SEQ_DIGITS] {
    let mut out = [b'0'; SEQ_DIGITS];
    let hex = format!("{seq:016x}");
    out[..n].copy_from_slice(&hex.as_bytes()[SEQ_DIGITS - n..]);
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
    fn measuring(&mut self, now: Instant, pid: Option<u32>) -> bool {
        if now < self.start {
            return false;
        }
        if !self.started {
            self.started = true;
            self.start = now;
            self.server_cpu_start = pid.and_then(cpu_seconds);
            self.self_cpu_start = self_cpu_seconds();
        }
        now < self.end
    }

    /// (elapsed seconds, server CPU seconds, load generator CPU seconds)
    fn finish(&self, pid: Option<u32>) -> (f64, Option<f64>, f64) {
        let elapsed = self.end.duration_since(self.start).as_secs_f64();
        let server = match (self.server_cpu_start, pid.and_then(cpu_seconds)) {
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
    for (i, (stream, leftover)) in open_many(args.common.addr, args.connections)?
        .into_iter()
        .enumerate()
    {
        let mut conn = Conn::new(stream, leftover);
        poll.registry()
            .register(&mut conn.stream, Token(i), Interest::READABLE)?;
        conns.push(conn);
    }
    let template = Template::new(args.size, args.text, [0x12, 0x34, 0x56, 0x78]);
    let mut next_seq = vec![0u64; conns.len()];
    let mut expect_seq = vec![0u64; conns.len()];
    let mut sent_at: Vec<VecDeque<Instant>> =
        vec![VecDeque::with_capacity(args.in_flight); conns.len()];
    let mut rtts_us: Vec<u32> = Vec::with_capacity(1 << 20);
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
        let measuring = window.measuring(now, pid);
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
                    rtts_us.push(now.duration_since(sent).as_micros().min(u32::MAX as u128) as u32);
                }
                template.write(0, next_seq[i], &mut conn.output);
                next_seq[i] += 1;
                sent_at[i].push_back(now);
            }
            let pending = conn.flush()?;
            conn.update_interest(&poll, Token(i), pending)?;
        }
    }
    let (elapsed, server_cpu, self_cpu) = window.finish(pid);
    rtts_us.sort_unstable();
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
        ("rtt_p50_us", percentile(&rtts_us, 0.5).to_string()),
        ("rtt_p99_us", percentile(&rtts_us, 0.99).to_string()),
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
    for (i, (stream, leftover)) in open_many(args.common.addr, total)?.into_iter().enumerate() {
        let mut conn = Conn::new(stream, leftover);
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
    let mut lags_us: Vec<u32> = Vec::with_capacity(1 << 20);
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
        let measuring = window.measuring(now, pid);
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
                template.check(opcode, payload, s, seq)?;
                expect_seq[i * senders + s] += 1;
                let out = &mut outgoing[s];
                // At or after `first_in_flight`: that message is retired only once every
                // connection, this one included, has received it.
                let index = (seq - out.first_in_flight) as usize;
                let Some(delivered) = out.delivered.get_mut(index) else {
                    return Err(mismatch(format!(
                        "message {seq} from sender {s} arrived before it was sent"
                    )));
                };
                *delivered += 1;
                if measuring {
                    deliveries += 1;
                    lags_us.push(
                        now.duration_since(out.sent_at[index])
                            .as_micros()
                            .min(u32::MAX as u128) as u32,
                    );
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
                out.first_in_flight += 1;
                in_flight -= 1;
                if measuring {
                    messages += 1;
                }
            }
        }
    }
    let (elapsed, server_cpu, self_cpu) = window.finish(pid);
    lags_us.sort_unstable();
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
        ("lag_p50_us", percentile(&lags_us, 0.5).to_string()),
        ("lag_p99_us", percentile(&lags_us, 0.99).to_string()),
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
    let conns = open_many(args.common.addr, args.connections)?;
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
