//! One client socket: its connection (the sans-IO core), the input it left unconsumed, and the
//! few facts the loop keeps about the socket itself.

use super::timers::Millis;
use crate::server_connection::ServerConnection;
use mio::net::TcpStream;
use std::io::{self, Read};

/// One client socket.
#[derive(Debug)]
pub(crate) struct Peer {
    pub stream: TcpStream,
    /// Distinguishes this peer from earlier ones that used the same slab slot.
    pub generation: u32,
    /// Everything the protocol decides about this connection, and its queued output.
    pub conn: ServerConnection,
    /// Input not consumed yet: the request head so far while handshaking (at most
    /// `Limits::max_head_size`), afterwards a partial frame header or control frame (at most
    /// 139 bytes), or the rest of a read when the connection used up its work budget for the
    /// turn (at most the read buffer). `None` most of the time; boxed, so that it costs one
    /// pointer when idle.
    #[allow(clippy::box_collection)] // one pointer while idle instead of a 24-byte Vec
    pub pending: Option<Box<Vec<u8>>>,
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
        conn: ServerConnection,
        on_metrics_listener: bool,
    ) -> Self {
        Peer {
            stream,
            generation,
            conn,
            pending: None,
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
            if let Some(pending) = self.pending.take() {
                buf.copy_from_slice(&pending);
            }
            return Ok(ReadOutcome::Data(carried));
        }
        loop {
            return match self.stream.read(&mut buf[carried..]) {
                Ok(0) => Ok(ReadOutcome::Eof),
                Ok(n) => {
                    if let Some(pending) = self.pending.take() {
                        buf[..carried].copy_from_slice(&pending);
                    }
                    Ok(ReadOutcome::Data(carried + n))
                }
                // Input left over from a turn that used up its budget is processed even when
                // nothing new has arrived.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && carried > 0 => {
                    if let Some(pending) = self.pending.take() {
                        buf[..carried].copy_from_slice(&pending);
                    }
                    Ok(ReadOutcome::Leftover(carried))
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(ReadOutcome::WouldBlock),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
        }
    }

    /// How many input bytes are waiting to be consumed.
    pub fn pending_len(&self) -> usize {
        self.pending.as_ref().map_or(0, |pending| pending.len())
    }

    /// Reads once into `buf` and appends what came to `pending` (used while the request head
    /// accumulates, so that each byte of it is copied once). `Data(n)` counts only new bytes.
    pub fn read_appending(&mut self, buf: &mut [u8]) -> io::Result<ReadOutcome> {
        loop {
            return match self.stream.read(buf) {
                Ok(0) => Ok(ReadOutcome::Eof),
                Ok(n) => {
                    self.pending
                        .get_or_insert_with(Box::default)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An idle open connection costs its slab entry and nothing else (every buffer is empty and
    /// unallocated), so this size is the user memory per idle connection. The benchmark's idle
    /// cell measures the same thing from the outside.
    #[test]
    fn an_idle_peer_fits_in_192_bytes() {
        assert!(
            std::mem::size_of::<Peer>() <= 192,
            "Peer is {} bytes (ServerConnection {})",
            std::mem::size_of::<Peer>(),
            std::mem::size_of::<ServerConnection>()
        );
    }
}
