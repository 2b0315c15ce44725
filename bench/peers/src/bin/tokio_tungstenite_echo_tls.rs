//! tokio-tungstenite echo server over TLS (tokio-rustls) on a current_thread runtime: the plain
//! echo peer (`examples/echo-server.rs`'s shape) with the TLS handshake before the WebSocket one.
//! Arguments: PORT CERT.pem KEY.pem.
use futures_util::{StreamExt, TryStreamExt, future};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

async fn accept_connection(acceptor: TlsAcceptor, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let Ok(tls) = acceptor.accept(stream).await else {
        return;
    };
    let Ok(ws_stream) = tokio_tungstenite::accept_async(tls).await else {
        return;
    };
    let (write, read) = ws_stream.split();
    let _ = read
        .try_filter(|msg| future::ready(msg.is_text() || msg.is_binary()))
        .forward(write)
        .await;
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let acceptor = peers::tls_acceptor();
    let listener = TcpListener::bind(peers::listen_addr()).await.expect("bind");
    println!("listening on {}", listener.local_addr().unwrap());
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(accept_connection(acceptor.clone(), stream));
    }
}
