//! One client socket and what is known about it: the handshake in progress or the open
//! connection, input left over from the last read, and output not yet written.

use crate::connection::Connection;
use crate::handshake::HeadScanner;
use crate::outbox::Outbox;
use mio::net::TcpStream;
use std::io::{self, IoSlice, Read, Write};

/// How far a peer has come.
#[derive(Debug)]
pub(crate) enum Phase {
    /// Reading the HTTP upgrade request.
    Handshaking(HeadScanner),
    /// The WebSocket connection is open (or in its closing handshake).
    Open(Connection),
    /// Our side of TCP is shut down (after a close handshake, a failure, or an HTTP error
    /// response); input is read and discarded until the peer closes too or the close deadline.
    Draining,
}

/// One client socket.
#[derive(Debug)]
pub(crate) struct Peer {
    pub stream: TcpStream,
    /// Distinguishes this peer from earlier ones that used the same slab slot.
    pub generation: u32,
    pub phase: Phase,
    /// Input not consumed yet: the request head so far while handshaking (at most
    /// `Limits::max_head_size`), afterwards a partial frame header or control frame (at most
    /// 139 bytes). Empty, and unallocated, most of the time.
    pub pending: Vec<u8>,
    /// Output not written yet.
    pub outbox: Outbox,
    /// Milliseconds (server clock) of the last byte received, for the idle timer.
    pub last_activity: u64,
    /// When this peer's live timer fires (server clock, ms); 0 when none is set.
    pub timer_at: u64,
    /// The peer has a ping outstanding from the idle timer.
    pub awaiting_pong: bool,
    /// WRITABLE interest is registered (only while the outbox holds bytes).
    pub write_interest: bool,
    /// Reading is paused because the outbox is over the high-water mark (echo backpressure).
    pub read_paused: bool,
    /// The peer is in the server's list of peers with output to flush.
    pub dirty: bool,
    /// The peer is to be dropped at the end of the current pass.
    pub doomed: bool,
}

/// What one read produced.
pub(crate) enum ReadOutcome {
    /// `n` bytes are in the buffer (for `read`, the old pending bytes followed by new ones).
    Data(usize),
    /// Nothing to read now.
    WouldBlock,
    /// The peer closed its side.
    Eof,
}

impl Peer {
    pub fn new(stream: TcpStream, generation: u32, now: u64) -> Self {
        Peer {
            stream,
            generation,
            phase: Phase::Handshaking(HeadScanner::new()),
            pending: Vec::new(),
            outbox: Outbox::new(),
            last_activity: now,
            timer_at: 0,
            awaiting_pong: false,
            write_interest: false,
            read_paused: false,
            dirty: false,
            doomed: false,
        }
    }

    /// Reads once into `buf` after the pending bytes, which are moved to its front on success.
    /// `buf` must be larger than the longest pending input.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<ReadOutcome> {
        let carried = self.pending.len();
        loop {
            return match self.stream.read(&mut buf[carried..]) {
                Ok(0) => Ok(ReadOutcome::Eof),
                Ok(n) => {
                    buf[..carried].copy_from_slice(&self.pending);
                    self.pending = Vec::new();
                    Ok(ReadOutcome::Data(carried + n))
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(ReadOutcome::WouldBlock),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
        }
    }

    /// Reads once into `buf` and appends what came to `pending` (used while the request head
    /// accumulates). `Data(n)` counts only the new bytes.
    pub fn read_appending(&mut self, buf: &mut [u8]) -> io::Result<ReadOutcome> {
        loop {
            return match self.stream.read(buf) {
                Ok(0) => Ok(ReadOutcome::Eof),
                Ok(n) => {
                    self.pending.extend_from_slice(&buf[..n]);
                    Ok(ReadOutcome::Data(n))
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(ReadOutcome::WouldBlock),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
        }
    }

    /// Writes as much of the outbox as the socket takes, in as few `writev` calls as possible.
    pub fn flush(&mut self) -> io::Result<()> {
        const SLICES: usize = 64;
        while !self.outbox.is_empty() {
            let mut slices = [IoSlice::new(&[]); SLICES];
            let count = self.outbox.io_slices(&mut slices);
            // One contiguous buffer (the common case) goes out with a plain write, which costs
            // the kernel less than a one-element writev.
            let result = match count {
                1 => self.stream.write(&slices[0]),
                _ => self.stream.write_vectored(&slices[..count]),
            };
            match result {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.outbox.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The open connection and the outbox its frames go to, if the handshake is done and TCP is
    /// not being drained.
    pub fn connection(&mut self) -> Option<(&mut Connection, &mut Outbox)> {
        match &mut self.phase {
            Phase::Open(connection) => Some((connection, &mut self.outbox)),
            _ => None,
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
            "Peer is {} bytes",
            std::mem::size_of::<Peer>()
        );
        assert!(
            std::mem::size_of::<Connection>() <= 72,
            "Connection is {} bytes",
            std::mem::size_of::<Connection>()
        );
    }
}
