//! Built without the `tls` feature: no peer has a TLS session. The same names as `tls.rs`, on a
//! type with no values, so that the shell's code reads the same either way.

use std::io::{self, Read, Write};

/// A TLS session, of which there is none without the `tls` feature.
#[derive(Debug)]
pub(crate) enum TlsSession {}

impl TlsSession {
    pub fn is_handshaking(&self) -> bool {
        match *self {}
    }

    pub fn failed(&self) -> bool {
        match *self {}
    }

    pub fn take_handshake_done(&mut self) -> bool {
        match *self {}
    }

    pub fn has_more_input(&self) -> bool {
        match *self {}
    }

    pub fn wants_write(&self) -> bool {
        match *self {}
    }

    pub fn read(&mut self, _: &mut impl Read, _: &mut [u8]) -> io::Result<usize> {
        match *self {}
    }

    pub fn write_records(&mut self, _: &mut mio::net::TcpStream) -> io::Result<usize> {
        match *self {}
    }

    pub fn shutdown_write(&mut self, _: &mut mio::net::TcpStream) -> io::Result<()> {
        match *self {}
    }

    pub fn writer<'a>(&'a mut self, _: &'a mut mio::net::TcpStream) -> TlsWriter<'a> {
        match *self {}
    }
}

/// A writer into a TLS session, of which there is none.
pub(crate) struct TlsWriter<'a>(&'a mut TlsSession);

impl Write for TlsWriter<'_> {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        match *self.0 {}
    }

    fn flush(&mut self) -> io::Result<()> {
        match *self.0 {}
    }
}
