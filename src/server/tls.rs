//! TLS between a client's socket and its connection: the server terminates `https://` and
//! `wss://` on its own port with rustls, driven sans-IO the way rustls' `tlsserver-mio` example
//! drives a `ServerConnection` (`read_tls`, `process_new_packets`, `reader`, `writer`,
//! `write_tls`, `wants_write`, `send_close_notify`).
//!
//! The protocol core never sees TLS: a [`TlsSession`] turns the socket's records into plaintext
//! for the connection, and the connection's outbox into records for the socket. The end of the
//! connection's output (the core's half-close) becomes `close_notify`, then the TCP half-close
//! once every record is written.
//!
//! Memory: a plain peer pays nothing for TLS (the session sits in the peer's boxed extras,
//! which a plain peer allocates only while it holds unconsumed input). A TLS peer holds its
//! rustls connection, boxed; rustls frees each written record, but keeps a read buffer of at
//! least 4 KiB between reads (it shrinks it back to 4 KiB at the next read, never to zero), so
//! an idle TLS connection costs that buffer and rustls' own state (README, "Memory").

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::path::{Path, PathBuf};
use std::sync::Arc;

// The server supports TLS (feature `tls`): with a `TlsConfig` its listener speaks `wss://` and
// `https://` only. Whether to employ it is the operator's choice (a certificate is needed); the
// server's outbound connections (`Context::connect`) speak `ws://` only.
//
//= https://www.rfc-editor.org/rfc/rfc6455#section-10.6
//# WebSocket implementations
//# MUST support TLS and SHOULD employ it when communicating with their
//# peers.
/// The TLS settings of a server's WebSocket listener: its certificate chain and key, and
/// everything else rustls negotiates. Cheap to clone (shared).
#[derive(Clone)]
pub struct TlsConfig(Arc<rustls::ServerConfig>);

impl TlsConfig {
    /// Wraps a rustls configuration made elsewhere (for a certificate resolver, client
    /// certificates, other protocol versions). Its `alpn_protocols` should offer `http/1.1`
    /// only: the server speaks nothing else.
    pub fn new(config: Arc<rustls::ServerConfig>) -> Self {
        TlsConfig(config)
    }

    /// Reads a certificate chain (PEM: the server's certificate first, then the intermediates)
    /// and its private key (PEM: PKCS#8, PKCS#1 or SEC1), and checks that the key matches the
    /// certificate. TLS 1.3 and 1.2 with rustls' safe defaults and the `ring` provider; ALPN
    /// offers `http/1.1`.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, TlsSetupError> {
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|error| TlsSetupError::Certificates {
                path: cert.to_owned(),
                error,
            })?;
        if chain.is_empty() {
            return Err(TlsSetupError::NoCertificates {
                path: cert.to_owned(),
            });
        }
        let private_key =
            PrivateKeyDer::from_pem_file(key).map_err(|error| TlsSetupError::Key {
                path: key.to_owned(),
                error,
            })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|builder| {
                builder
                    .with_no_client_auth()
                    .with_single_cert(chain, private_key)
            })
            .map_err(|error| match error {
                rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                    TlsSetupError::KeyMismatch {
                        cert: cert.to_owned(),
                        key: key.to_owned(),
                    }
                }
                error => TlsSetupError::Rejected(error),
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsConfig(Arc::new(config)))
    }

    /// The rustls configuration.
    pub fn rustls(&self) -> &Arc<rustls::ServerConfig> {
        &self.0
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig").finish_non_exhaustive()
    }
}

/// Two settings are equal when they are the same shared configuration.
impl PartialEq for TlsConfig {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for TlsConfig {}

/// Why the certificate or key could not be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// The certificate file could not be read, or is not PEM.
    Certificates {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        error: pem::Error,
    },
    /// The certificate file holds no certificate.
    NoCertificates {
        /// The file.
        path: PathBuf,
    },
    /// The key file could not be read, is not PEM, or holds no private key.
    Key {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        error: pem::Error,
    },
    /// The private key is not the certificate's.
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// rustls refused the key or the certificate.
    Rejected(rustls::Error),
}

impl fmt::Display for TlsSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsSetupError::Certificates { path, error } => {
                write!(
                    f,
                    "cannot read certificates from {}: {error}",
                    path.display()
                )
            }
            TlsSetupError::NoCertificates { path } => {
                write!(f, "no PEM certificate in {}", path.display())
            }
            TlsSetupError::Key {
                path,
                error: pem::Error::NoItemsFound,
            } => write!(f, "no PEM private key in {}", path.display()),
            TlsSetupError::Key { path, error } => {
                write!(
                    f,
                    "cannot read a private key from {}: {error}",
                    path.display()
                )
            }
            TlsSetupError::KeyMismatch { cert, key } => write!(
                f,
                "the private key in {} is not the key of the certificate in {}",
                key.display(),
                cert.display()
            ),
            TlsSetupError::Rejected(error) => write!(f, "TLS setup: {error}"),
        }
    }
}

impl std::error::Error for TlsSetupError {}

/// Room kept free in the plaintext half of the read buffer before more ciphertext is read:
/// rustls may hold one partial record (at most 16 KiB of plaintext and its overhead) from an
/// earlier read, which the new bytes complete.
const RECORD_SLACK: usize = 18 * 1024;

/// Most TLS records rustls buffers for one connection before `write` stops taking plaintext
/// (the rest stays in the connection's outbox, where it is counted against the output limits).
pub const TLS_BUFFER_LIMIT: usize = 64 * 1024;

/// One client's TLS state.
#[derive(Debug)]
pub(crate) struct TlsSession {
    conn: Box<rustls::ServerConnection>,
    /// The handshake completed and was counted.
    counted: bool,
    /// rustls failed the connection (its alert is queued).
    failed: bool,
    /// The end of the input (`close_notify`, or the socket's EOF) was seen.
    eof: bool,
    /// The last read stopped before the socket said it would block (no room, or plaintext or
    /// the end of the stream still to hand over): read again.
    more: bool,
    /// `close_notify` is queued; the TCP half-close follows once it is written.
    fin_pending: bool,
}

impl TlsSession {
    pub fn new(config: &TlsConfig) -> io::Result<Self> {
        // A failed TLS handshake fails the session (`failed`) and the connection is closed; the
        // WebSocket connection reads and writes only the plaintext of this session.
        //= https://www.rfc-editor.org/rfc/rfc6455#section-4.2.2
        //# If this fails
        //# (e.g., the client indicated a host name in the extended client
        //# hello "server_name" extension that the server does not host),
        //# then close the connection; otherwise, all further communication
        //# for the connection (including the server's handshake) MUST run
        //# through the encrypted tunnel [RFC5246].
        let mut conn = rustls::ServerConnection::new(config.0.clone()).map_err(io::Error::other)?;
        conn.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
        Ok(TlsSession {
            conn: Box::new(conn),
            counted: false,
            failed: false,
            eof: false,
            more: false,
            fin_pending: false,
        })
    }

    /// Whether the TLS handshake is still going on.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Whether rustls failed the connection (a broken or plain-text handshake, a bad record).
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// Returns `true` once, after the handshake completed.
    pub fn take_handshake_done(&mut self) -> bool {
        if self.counted || self.conn.is_handshaking() {
            return false;
        }
        self.counted = true;
        true
    }

    /// Whether the last read left input to hand over without a new readiness event.
    pub fn has_more_input(&self) -> bool {
        self.more
    }

    /// Whether records wait to be written.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Reads records from `stream` and puts their plaintext in `buf`, like `Read::read`:
    /// `Ok(0)` at the end of the stream, `WouldBlock` when nothing can be read now. The second
    /// half of `buf` holds ciphertext meanwhile. When it returns without
    /// [`has_more_input`](Self::has_more_input), the socket is drained: it said it would block,
    /// or a read returned less than it asked for.
    pub fn read(&mut self, stream: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
        self.more = false;
        let half = buf.len() / 2;
        let (out, scratch) = buf.split_at_mut(half);
        let mut filled = self.drain(out)?;
        loop {
            if self.eof {
                break;
            }
            let room = out.len() - filled;
            if room < RECORD_SLACK + 1 {
                self.more = true;
                break;
            }
            // At most what fits in the plaintext half once decrypted, so that no ciphertext
            // read from the socket is ever left over.
            let want = (room - RECORD_SLACK).min(scratch.len());
            match stream.read(&mut scratch[..want]) {
                Ok(0) => {
                    self.conn.read_tls(&mut io::empty())?;
                    self.process()?;
                    filled += self.drain(&mut out[filled..])?;
                    // The socket's EOF without close_notify: rustls says `UnexpectedEof`.
                    // Either way the input is over; whether the WebSocket closed cleanly is
                    // the closing handshake's to say, and a message cut short stays
                    // incomplete.
                    self.eof = true;
                }
                Ok(n) => {
                    let mut records = &scratch[..n];
                    while !records.is_empty() {
                        if self.conn.read_tls(&mut records)? == 0 {
                            break; // close_notify came: nothing after it is read
                        }
                        self.process()?;
                        filled += self.drain(&mut out[filled..])?;
                    }
                    if n < want {
                        // A short read drained the socket (as for a plain peer, the read that
                        // would only say WouldBlock is saved; bytes arriving later raise a new
                        // edge, and the loop reads on to the end of the stream when the FIN
                        // was reported).
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if filled > 0 {
            // The end of the stream, if seen, is reported by the next call.
            self.more |= self.eof;
            Ok(filled)
        } else if self.eof {
            Ok(0)
        } else {
            Err(io::ErrorKind::WouldBlock.into())
        }
    }

    fn process(&mut self) -> io::Result<()> {
        match self.conn.process_new_packets() {
            Ok(_) => Ok(()),
            Err(error) => {
                // rustls queued an alert; it is written before the socket is dropped.
                self.failed = true;
                Err(io::Error::new(io::ErrorKind::InvalidData, error))
            }
        }
    }

    /// Moves the plaintext rustls holds into `out`.
    fn drain(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < out.len() {
            match self.conn.reader().read(&mut out[filled..]) {
                Ok(0) => {
                    self.eof = true; // close_notify
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.eof = true;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        if filled == out.len() {
            self.more = true; // there may be more
        }
        Ok(filled)
    }

    /// Writes queued records to `stream` until none is left or it would block; then, if the
    /// output is over, half-closes it.
    pub fn write_records(&mut self, stream: &mut mio::net::TcpStream) -> io::Result<usize> {
        let mut total = 0;
        while self.conn.wants_write() {
            match self.conn.write_tls(stream) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => total += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(total),
                Err(e) => return Err(e),
            }
        }
        if self.fin_pending {
            self.fin_pending = false;
            match stream.shutdown(Shutdown::Write) {
                Err(e) if e.kind() != io::ErrorKind::NotConnected => return Err(e),
                _ => {}
            }
        }
        Ok(total)
    }

    /// Ends the output: `close_notify`, then (once it is written) the TCP half-close.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-7.1.1
    //# An endpoint SHOULD use a method that
    //# cleanly closes the TCP connection, as well as the TLS session, if
    //# applicable, discarding any trailing bytes that may have been
    //# received.
    pub fn shutdown_write(&mut self, stream: &mut mio::net::TcpStream) -> io::Result<()> {
        self.conn.send_close_notify();
        self.fin_pending = true;
        self.write_records(stream).map(drop)
    }

    /// A writer that encrypts into this session and writes its records to `stream` when
    /// rustls' buffer is full.
    pub fn writer<'a>(&'a mut self, stream: &'a mut mio::net::TcpStream) -> TlsWriter<'a> {
        TlsWriter {
            session: self,
            stream,
        }
    }
}

/// Plaintext in, records out: what the outbox writes to for a TLS peer. A write that finds
/// rustls' buffer full writes records to the socket first, and says `WouldBlock` when the
/// socket does.
pub(crate) struct TlsWriter<'a> {
    session: &'a mut TlsSession,
    stream: &'a mut mio::net::TcpStream,
}

impl TlsWriter<'_> {
    fn write_with(
        &mut self,
        mut encrypt: impl FnMut(&mut rustls::ServerConnection) -> io::Result<usize>,
    ) -> io::Result<usize> {
        loop {
            let taken = encrypt(&mut self.session.conn)?;
            if taken > 0 {
                return Ok(taken);
            }
            // rustls holds as many records as it may: write some out first.
            if !self.session.conn.wants_write() {
                return Err(io::ErrorKind::WouldBlock.into()); // still handshaking
            }
            match self.session.conn.write_tls(self.stream) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Write for TlsWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.write_with(|conn| conn.writer().write(buf))
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        if bufs.iter().all(|b| b.is_empty()) {
            return Ok(0);
        }
        self.write_with(|conn| conn.writer().write_vectored(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A socket's receiving side: gives what was put in (at most `chunk` bytes a read), then
    /// says it would block.
    struct Pipe {
        data: VecDeque<u8>,
        chunk: usize,
    }

    impl Read for Pipe {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.data.is_empty() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.chunk).min(self.data.len());
            for (slot, byte) in buf.iter_mut().zip(self.data.drain(..n)) {
                *slot = byte;
            }
            Ok(n)
        }
    }

    /// A server configuration for a self-signed `localhost`, and a client's that trusts it.
    fn configs() -> (TlsConfig, Arc<rustls::ClientConfig>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server_config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
            )
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.der().clone()).unwrap();
        let client_config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        (
            TlsConfig::new(Arc::new(server_config)),
            Arc::new(client_config),
        )
    }

    /// A rustls client and our session, handshaken in memory, and the pipe into the session.
    fn pair() -> (rustls::ClientConnection, TlsSession, Pipe) {
        let (server_config, client_config) = configs();
        let mut client =
            rustls::ClientConnection::new(client_config, "localhost".try_into().unwrap()).unwrap();
        client.set_buffer_limit(None);
        let mut server = TlsSession::new(&server_config).unwrap();
        let mut pipe = Pipe {
            data: VecDeque::new(),
            chunk: usize::MAX,
        };
        let mut buf = vec![0u8; 256 * 1024];
        while client.is_handshaking() || server.is_handshaking() {
            send(&mut client, &mut pipe);
            assert_eq!(
                server.read(&mut pipe, &mut buf).unwrap_err().kind(),
                io::ErrorKind::WouldBlock
            );
            let mut back = Vec::new();
            while server.conn.wants_write() {
                server.conn.write_tls(&mut back).unwrap();
            }
            let mut back = &back[..];
            while !back.is_empty() {
                client.read_tls(&mut back).unwrap();
                client.process_new_packets().unwrap();
            }
        }
        assert!(server.take_handshake_done());
        assert!(!server.take_handshake_done(), "counted once");
        (client, server, pipe)
    }

    /// Moves the client's records into the pipe.
    fn send(client: &mut rustls::ClientConnection, pipe: &mut Pipe) {
        let mut out = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut out).unwrap();
        }
        pipe.data.extend(out);
    }

    /// Records arriving in pieces of any size (a piece per readiness event), read until the
    /// socket would block after each piece, as the loop does.
    #[test]
    fn hands_over_every_byte_whatever_the_pieces() {
        for piece in [1, 1000, 17_000, 1 << 20] {
            let (mut client, mut server, mut pipe) = pair();
            let message: Vec<u8> = (0..300_000).map(|i| (i % 251) as u8).collect();
            client.writer().write_all(&message).unwrap();
            let mut records = Pipe {
                data: VecDeque::new(),
                chunk: piece,
            };
            send(&mut client, &mut records);
            let mut received = Vec::new();
            let mut buf = vec![0u8; 256 * 1024];
            let mut arrived = vec![0u8; piece.min(1 << 20)];
            while let Ok(n) = records.read(&mut arrived) {
                pipe.data.extend(&arrived[..n]);
                loop {
                    match server.read(&mut pipe, &mut buf) {
                        Ok(n) => {
                            assert!(n > 0 && n <= buf.len() / 2);
                            received.extend_from_slice(&buf[..n]);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => panic!("{e}"),
                    }
                    if !server.has_more_input() && pipe.data.is_empty() {
                        break;
                    }
                }
            }
            assert!(received == message, "pieces of {piece}");
            assert!(!server.has_more_input());
        }
    }

    #[test]
    fn says_so_when_it_stopped_for_lack_of_room() {
        let (mut client, mut server, mut pipe) = pair();
        client.writer().write_all(b"hello").unwrap();
        send(&mut client, &mut pipe);
        // Half of this buffer is less than a record's worth of room: the socket is not read.
        let mut small = vec![0u8; 2 * RECORD_SLACK];
        let error = server.read(&mut pipe, &mut small).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
        assert!(server.has_more_input(), "the socket was not drained");
        let mut buf = vec![0u8; 256 * 1024];
        assert_eq!(server.read(&mut pipe, &mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
        assert!(!server.has_more_input());
    }

    #[test]
    fn close_notify_is_the_end_of_the_stream() {
        let (mut client, mut server, mut pipe) = pair();
        client.writer().write_all(b"last").unwrap();
        client.send_close_notify();
        send(&mut client, &mut pipe);
        let mut buf = vec![0u8; 256 * 1024];
        assert_eq!(server.read(&mut pipe, &mut buf).unwrap(), 4);
        assert!(
            server.has_more_input(),
            "the end is reported by the next read"
        );
        assert_eq!(server.read(&mut pipe, &mut buf).unwrap(), 0);
    }

    #[test]
    fn plain_text_fails_the_handshake_with_an_alert() {
        let mut server = TlsSession::new(&configs().0).unwrap();
        let mut pipe = Pipe {
            data: b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
                .iter()
                .copied()
                .collect(),
            chunk: 1 << 20,
        };
        let mut buf = vec![0u8; 256 * 1024];
        let error = server.read(&mut pipe, &mut buf).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(server.failed() && server.is_handshaking());
        assert!(server.wants_write(), "an alert to send");
    }

    /// A read takes in at most the ciphertext whose plaintext fits in its room, so rustls holds
    /// no plaintext between reads, and never more than its limit of 16 KiB, past which it
    /// refuses records ("received plaintext buffer full") and the connection fails. Here, many
    /// one-byte records (mostly overhead), then full ones, then one-byte ones again: a read
    /// that took in as much as the room plus `RECORD_SLACK` of ciphertext fails that way.
    #[test]
    fn rustls_never_holds_plaintext_between_reads() {
        let (mut client, mut server, mut pipe) = pair();
        let mut message = Vec::new();
        let mut one_byte_records = |client: &mut rustls::ClientConnection| {
            for i in 0..850 {
                let byte = [(i % 251) as u8];
                client.writer().write_all(&byte).unwrap();
                message.push(byte[0]);
            }
        };
        one_byte_records(&mut client);
        send(&mut client, &mut pipe);
        assert_eq!(pipe.data.len(), 850 * 23, "a record per byte");
        let full: Vec<u8> = (0..146_574).map(|i| (i % 241) as u8).collect();
        client.writer().write_all(&full).unwrap();
        one_byte_records(&mut client);
        message.splice(850..850, full);
        send(&mut client, &mut pipe);
        let mut buf = vec![0u8; 256 * 1024];
        let mut received = Vec::new();
        loop {
            match server.read(&mut pipe, &mut buf) {
                Ok(n) => received.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
            let state = server.conn.process_new_packets().unwrap();
            assert_eq!(state.plaintext_bytes_to_read(), 0, "held by rustls");
            if !server.has_more_input() {
                break;
            }
        }
        assert!(pipe.data.is_empty());
        assert_eq!(received.len(), message.len());
        assert!(received == message);
    }
}
