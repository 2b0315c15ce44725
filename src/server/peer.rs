//! One socket, accepted or opened by the application: its connection (the sans-IO core, in
//! either role), the input it left unconsumed, its TLS session if it has one, and the few facts
//! the loop keeps about the socket itself.

use super::conn::Conn;
use super::timers::Millis;
use super::tls::{TlsSession, TlsWriter};
use mio::net::TcpStream;
use std::io::{self, Read, Write};
use std::net::Shutdown;

/// What a peer holds besides its fixed fields, boxed so that it costs one pointer while a plain
/// peer is idle.
#[derive(Debug, Default)]
pub(crate) struct Extras {
    /// Input not consumed yet (see `Peer::extras`).
    input: Vec<u8>,
    /// The TLS session, for a client of a TLS listener (kept for the connection's life).
    tls: Option<TlsSession>,
}

/// One socket.
#[derive(Debug)]
pub(crate) struct Peer {
    pub stream: TcpStream,
    /// Distinguishes this peer from earlier ones that used the same slab slot.
    pub generation: u32,
    /// Everything the protocol decides about this connection, and its queued output.
    pub conn: Conn,
    /// Input not consumed yet: the request head so far while handshaking (at most
    /// `Limits::max_head_size`), afterwards a partial frame header or control frame (at most
    /// 139 bytes), or the rest of a read when the connection used up its work budget for the
    /// turn (at most the read buffer); and the TLS session of a TLS client. `None` most of the
    /// time for a plain client; boxed, so that it costs one pointer when idle.
    extras: Option<Box<Extras>>,
    /// Since when (server clock) the output queue has stayed over the high-water mark after
    /// writing; 0 when it is not over it.
    pub over_high_water_since: Millis,
    /// When this peer's live timer entry fires (server clock); 0 when none is set.
    pub timer_at: Millis,
    /// The bytes this peer held (queued output, unconsumed input, a message being assembled)
    /// when last counted against the server's memory budget.
    pub held: u32,
    /// WRITABLE interest is registered (only while output is queued).
    pub write_interest: bool,
    /// Reading is paused because the output queue is over the high-water mark (backpressure).
    pub read_paused: bool,
    /// The peer is in the list of peers to flush at the end of the pass.
    pub dirty: bool,
    /// The peer came through the metrics listener: only the operators' routes are served to it.
    pub on_metrics_listener: bool,
}

/// Reads once from `stream` (through the TLS session in `extras`, for a TLS peer) into `buf`.
fn read_transport(
    stream: &mut TcpStream,
    extras: &mut Option<Box<Extras>>,
    buf: &mut [u8],
) -> io::Result<usize> {
    match extras.as_mut().and_then(|extras| extras.tls.as_mut()) {
        Some(tls) => tls.read(stream, buf),
        None => stream.read(buf),
    }
}

/// What one read produced.
pub(crate) enum ReadOutcome {
    /// `n` bytes are in the buffer (for `read`, the old pending bytes followed by new ones).
    Data(usize),
    /// Nothing new could be read now, but `n` bytes left over from the last turn are in the
    /// buffer.
    Leftover(usize),
    /// Nothing to read now.
    WouldBlock,
    /// The peer closed its side.
    Eof,
}

impl Peer {
    pub fn new(
        stream: TcpStream,
        generation: u32,
        conn: Conn,
        tls: Option<TlsSession>,
        on_metrics_listener: bool,
    ) -> Self {
        Peer {
            stream,
            generation,
            conn,
            extras: tls.map(|tls| {
                Box::new(Extras {
                    input: Vec::new(),
                    tls: Some(tls),
                })
            }),
            over_high_water_since: 0,
            held: 0,
            timer_at: 0,
            write_interest: false,
            read_paused: false,
            dirty: false,
            on_metrics_listener,
        }
    }

    /// Reads once into `buf` after the pending bytes, which are moved to its front on success.
    /// `buf` must be larger than the longest pending input.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<ReadOutcome> {
        let carried = self.pending_len();
        if carried == buf.len() {
            // A whole buffer left over from the last turn: process it before reading more (a
            // read into no room would look like the end of the stream).
            buf.copy_from_slice(&self.take_pending());
            return Ok(ReadOutcome::Data(carried));
        }
        loop {
            return match self.read_transport(carried, buf) {
                Ok(0) => Ok(ReadOutcome::Eof),
                Ok(n) => {
                    buf[..carried].copy_from_slice(&self.take_pending());
                    Ok(ReadOutcome::Data(carried + n))
                }
                // Input left over from a turn that used up its budget is processed even when
                // nothing new has arrived.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && carried > 0 => {
                    buf[..carried].copy_from_slice(&self.take_pending());
                    Ok(ReadOutcome::Leftover(carried))
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(ReadOutcome::WouldBlock),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
        }
    }

    /// Reads once straight into the room the connection lends for the payload of a large frame
    /// (see [`Conn::payload_room`]), when it lends one and no input is left over (that comes
    /// first). Returns the outcome and the size of the room, or `None` when no room is lent.
    pub fn read_in_place(&mut self) -> Option<(io::Result<ReadOutcome>, usize)> {
        if self.pending_len() > 0 {
            return None;
        }
        let room = self.conn.payload_room()?;
        let outcome = loop {
            break match read_transport(&mut self.stream, &mut self.extras, room) {
                Ok(0) => Ok(ReadOutcome::Eof),
                Ok(n) => Ok(ReadOutcome::Data(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(ReadOutcome::WouldBlock),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
        };
        Some((outcome, room.len()))
    }

    /// Reads once from the socket (through TLS for a TLS peer) into `buf[from..]`.
    fn read_transport(&mut self, from: usize, buf: &mut [u8]) -> io::Result<usize> {
        read_transport(&mut self.stream, &mut self.extras, &mut buf[from..])
    }

    /// Whether input waits that no readiness event will announce (TLS plaintext or the end of
    /// the stream already taken from the socket): a short read did not drain the socket.
    pub fn has_more_input(&self) -> bool {
        self.tls().is_some_and(TlsSession::has_more_input)
    }

    /// How many input bytes are waiting to be consumed.
    pub fn pending_len(&self) -> usize {
        self.extras.as_ref().map_or(0, |extras| extras.input.len())
    }

    /// Takes the input waiting to be consumed.
    pub fn take_pending(&mut self) -> Vec<u8> {
        let Some(extras) = self.extras.as_mut() else {
            return Vec::new();
        };
        let input = std::mem::take(&mut extras.input);
        if extras.tls.is_none() {
            self.extras = None;
        }
        input
    }

    /// Keeps `input` to be consumed with the next read.
    pub fn set_pending(&mut self, input: Vec<u8>) {
        match self.extras.as_mut() {
            Some(extras) => extras.input = input,
            None if input.is_empty() => {}
            None => {
                self.extras = Some(Box::new(Extras { input, tls: None }));
            }
        }
    }

    /// The TLS session, for a TLS client.
    pub fn tls(&self) -> Option<&TlsSession> {
        self.extras.as_ref().and_then(|extras| extras.tls.as_ref())
    }

    /// The TLS session, for a TLS client.
    pub fn tls_mut(&mut self) -> Option<&mut TlsSession> {
        self.extras.as_mut().and_then(|extras| extras.tls.as_mut())
    }

    /// Whether bytes wait for the socket to take them: the connection's queued output, or TLS
    /// records.
    pub fn wants_write(&self) -> bool {
        self.conn.queued() > 0 || self.tls_wants_write()
    }

    /// Whether TLS records (handshake messages, alerts, encrypted output) wait to be written.
    pub fn tls_wants_write(&self) -> bool {
        self.tls().is_some_and(TlsSession::wants_write)
    }

    /// Writes the connection's queued output (encrypted, for a TLS client), as much as the
    /// socket takes; nothing while TCP is connecting. Returns the bytes of output taken.
    pub fn write_queued(&mut self) -> io::Result<usize> {
        if self.conn.is_connecting() {
            return Ok(0);
        }
        match self.extras.as_mut().and_then(|extras| extras.tls.as_mut()) {
            None => self.conn.outbox().write_to(&mut self.stream),
            Some(tls) => {
                tls.write_records(&mut self.stream)?;
                let taken = self
                    .conn
                    .outbox()
                    .write_to(&mut tls.writer(&mut self.stream))?;
                tls.write_records(&mut self.stream)?;
                Ok(taken)
            }
        }
    }

    /// Ends the sending side: the TCP half-close, after TLS `close_notify` for a TLS client.
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        match self.extras.as_mut().and_then(|extras| extras.tls.as_mut()) {
            Some(tls) => tls.shutdown_write(&mut self.stream),
            None => match self.stream.shutdown(Shutdown::Write) {
                Err(e) if e.kind() != io::ErrorKind::NotConnected => Err(e),
                _ => Ok(()),
            },
        }
    }

    /// Where a frame can be written straight out: the socket, or the TLS session over it.
    pub fn transport(&mut self) -> (&mut Conn, Transport<'_>) {
        let transport = match self.extras.as_mut().and_then(|extras| extras.tls.as_mut()) {
            Some(tls) => Transport::Tls(tls.writer(&mut self.stream)),
            None => Transport::Plain(&mut self.stream),
        };
        (&mut self.conn, transport)
    }

    /// Reads once into `buf` and appends what came to `pending` (used while the request head
    /// accumulates, so that each byte of it is copied once). `Data(n)` counts only new bytes.
    pub fn read_appending(&mut self, buf: &mut [u8]) -> io::Result<ReadOutcome> {
        loop {
            return match self.read_transport(0, buf) {
                Ok(0) => Ok(ReadOutcome::Eof),
                Ok(n) => {
                    self.extras
                        .get_or_insert_with(Box::default)
                        .input
                        .extend_from_slice(&buf[..n]);
                    Ok(ReadOutcome::Data(n))
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(ReadOutcome::WouldBlock),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
        }
    }
}

/// The socket, or the TLS session over it: where a peer's bytes go.
pub(crate) enum Transport<'a> {
    Plain(&'a mut TcpStream),
    Tls(TlsWriter<'a>),
}

impl Write for Transport<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(stream) => stream.write(buf),
            Transport::Tls(tls) => tls.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Transport::Plain(stream) => stream.write_vectored(bufs),
            Transport::Tls(tls) => tls.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An idle open connection costs its slab entry and nothing else (every buffer is empty and
    /// unallocated), so this size is the user memory per idle connection. The benchmark's idle
    /// cell measures the same thing from the outside.
    #[test]
    fn an_idle_peer_fits_in_192_bytes() {
        // The role of a connection the application opened is boxed: an accepted peer's `Conn`
        // is its `ServerConnection` alone (136 bytes, the enum's tag in one of its niches).
        assert!(
            std::mem::size_of::<Peer>() <= 192,
            "Peer is {} bytes (Conn {})",
            std::mem::size_of::<Peer>(),
            std::mem::size_of::<Conn>()
        );
        assert_eq!(
            std::mem::size_of::<Conn>(),
            std::mem::size_of::<crate::ServerConnection>()
        );
    }
}
