//! Shared by the peer servers: the listen address from the first argument, and for the TLS
//! peers the certificate chain and key from the second and third.

use std::sync::Arc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// `127.0.0.1:PORT` from the first command-line argument (default 9001).
pub fn listen_addr() -> String {
    let port = std::env::args().nth(1).unwrap_or_else(|| "9001".into());
    format!("127.0.0.1:{port}")
}

/// A TLS acceptor for the chain (PEM, second argument) and key (PEM, third argument): rustls
/// with its `ring` provider and safe defaults, ALPN `http/1.1`, as rfc6455's `--tls-cert` and
/// `--tls-key` set it up.
pub fn tls_acceptor() -> TlsAcceptor {
    let mut args = std::env::args().skip(2);
    let (Some(cert), Some(key)) = (args.next(), args.next()) else {
        panic!("usage: PORT CERT.pem KEY.pem");
    };
    let chain = CertificateDer::pem_file_iter(&cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .expect("the certificate chain");
    let key = PrivateKeyDer::from_pem_file(&key).expect("the private key");
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("a certificate and its key");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsAcceptor::from(Arc::new(config))
}
