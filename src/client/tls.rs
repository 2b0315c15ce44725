//! `wss://` for the blocking client: rustls (with the `ring` provider) over a `TcpStream`.
//!
//! Servers are verified against the platform's trust store (read once per process with
//! `rustls-native-certs`: on Linux the OpenSSL bundle, `/etc/ssl/certs`, or the files that
//! `SSL_CERT_FILE` and `SSL_CERT_DIR` name), or against a CA file given in
//! [`ClientOptions::ca_file`]. [`ClientOptions::danger_accept_invalid_certs`] turns
//! verification off, for tests against self-signed certificates only.

use super::{ClientOptions, Error, Transport};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// A TLS stream over TCP, as the client runs over it.
#[derive(Debug)]
pub struct TlsStream {
    inner: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
}

impl TlsStream {
    /// Runs the TLS handshake with `server_name` (a host name or an IP address) over `stream`,
    /// waiting at most `timeout` for each read.
    pub fn connect(
        stream: TcpStream,
        server_name: &str,
        config: Arc<rustls::ClientConfig>,
        timeout: Duration,
    ) -> Result<Self, Error> {
        // rustls sends the name in the Server Name Indication extension (its default); for an IP
        // address it sends none, as RFC 6066 §3 allows no literal address there.
        //= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
        //# Clients MUST use the Server Name Indication extension in the TLS
        //# handshake [RFC6066].
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| Error::InvalidServerName(server_name.to_owned()))?;
        let conn = rustls::ClientConnection::new(config, name).map_err(Error::Tls)?;
        let mut inner = rustls::StreamOwned::new(conn, stream);
        inner
            .sock
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        while inner.conn.is_handshaking() {
            inner.conn.complete_io(&mut inner.sock).map_err(tls_error)?;
        }
        Ok(TlsStream { inner })
    }

    /// The TLS connection: its protocol version, cipher suite, the server's certificates.
    pub fn connection(&self) -> &rustls::ClientConnection {
        &self.inner.conn
    }

    /// The TCP stream under it.
    pub fn tcp(&self) -> &TcpStream {
        &self.inner.sock
    }
}

/// A rustls error inside an IO error becomes [`Error::Tls`].
fn tls_error(error: io::Error) -> Error {
    if error
        .get_ref()
        .is_some_and(|inner| inner.is::<rustls::Error>())
    {
        let inner = error.into_inner().expect("checked above");
        return Error::Tls(*inner.downcast::<rustls::Error>().expect("checked above"));
    }
    Error::Io(error)
}

impl Read for TlsStream {
    /// The server's TCP close without `close_notify` reads as the end of the stream: whether
    /// the WebSocket ended cleanly is the closing handshake's to say, and a message cut short
    /// stays incomplete.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
            result => result,
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Transport for TlsStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.sock.set_read_timeout(timeout)
    }

    /// `close_notify`, then the TCP half-close.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-7.1.1
    //# An endpoint SHOULD use a method that
    //# cleanly closes the TCP connection, as well as the TLS session, if
    //# applicable, discarding any trailing bytes that may have been
    //# received.
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.inner.conn.send_close_notify();
        while self.inner.conn.wants_write() {
            self.inner.conn.write_tls(&mut self.inner.sock)?;
        }
        match self.inner.sock.shutdown(Shutdown::Write) {
            Err(e) if e.kind() != io::ErrorKind::NotConnected => Err(e),
            _ => Ok(()),
        }
    }
}

/// The rustls configuration `options` ask for: their own [`tls_config`], or verification
/// against [`ca_file`], or against the platform's roots (loaded once), or none at all with
/// [`danger_accept_invalid_certs`].
///
/// [`tls_config`]: ClientOptions::tls_config
/// [`ca_file`]: ClientOptions::ca_file
/// [`danger_accept_invalid_certs`]: ClientOptions::danger_accept_invalid_certs
pub fn client_config(options: &ClientOptions) -> Result<Arc<rustls::ClientConfig>, Error> {
    if let Some(config) = &options.tls_config {
        return Ok(config.clone());
    }
    if options.danger_accept_invalid_certs {
        let provider = provider();
        let verifier = Arc::new(AcceptAnyCertificate(
            provider.signature_verification_algorithms,
        ));
        return Ok(with_alpn(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(Error::Tls)?
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth(),
        ));
    }
    if let Some(path) = &options.ca_file {
        return with_roots(roots_from_file(path)?);
    }
    type Platform = Result<Arc<rustls::ClientConfig>, Option<Arc<rustls_native_certs::Error>>>;
    static PLATFORM: OnceLock<Platform> = OnceLock::new();
    let platform = PLATFORM.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(loaded.certs);
        if roots.is_empty() {
            return Err(loaded.errors.into_iter().next().map(Arc::new));
        }
        Ok(with_roots(roots).expect("the ring provider supports the safe default versions"))
    });
    platform.clone().map_err(Error::NoPlatformRoots)
}

/// The certificates of a PEM file, as trust anchors.
fn roots_from_file(path: &Path) -> Result<RootCertStore, Error> {
    let ca_error = |error| Error::CaFile {
        path: path.to_owned(),
        error,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(ca_error)?;
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(Error::Tls)?;
    }
    if roots.is_empty() {
        return Err(ca_error(rustls::pki_types::pem::Error::NoItemsFound));
    }
    Ok(roots)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn with_roots(roots: RootCertStore) -> Result<Arc<rustls::ClientConfig>, Error> {
    Ok(with_alpn(
        rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(Error::Tls)?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

/// RFC 6455 §4.1 runs over HTTP/1.1: offer only it, so that a server that speaks HTTP/2 too
/// does not pick that.
fn with_alpn(mut config: rustls::ClientConfig) -> Arc<rustls::ClientConfig> {
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Accepts any certificate for any name; still checks that the server holds the certificate's
/// key (the handshake signature), which costs nothing to keep.
#[derive(Debug)]
struct AcceptAnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
