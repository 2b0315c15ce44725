//! tokio-tungstenite broadcast server over TLS (tokio-rustls) on a current_thread runtime: the
//! plain broadcast peer (`examples/server.rs`'s shape: a peer map of unbounded channels, each
//! forwarded into its socket) with the TLS handshake before the WebSocket one. Every recipient
//! gets the same message value; each connection's stream encrypts its own copy.
//! Arguments: PORT CERT.pem KEY.pem.
use futures_channel::mpsc::{UnboundedSender, unbounded};
use futures_util::{StreamExt, TryStreamExt, future, pin_mut};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::Message;

type PeerMap = Arc<Mutex<HashMap<SocketAddr, UnboundedSender<Message>>>>;

async fn handle_connection(
    acceptor: TlsAcceptor,
    peer_map: PeerMap,
    raw_stream: TcpStream,
    addr: SocketAddr,
) {
    let _ = raw_stream.set_nodelay(true);
    let Ok(tls) = acceptor.accept(raw_stream).await else {
        return;
    };
    let Ok(ws_stream) = tokio_tungstenite::accept_async(tls).await else {
        return;
    };
    let (tx, rx) = unbounded();
    peer_map.lock().unwrap().insert(addr, tx);
    let (outgoing, incoming) = ws_stream.split();
    let broadcast_incoming = incoming.try_for_each(|msg| {
        if msg.is_text() || msg.is_binary() {
            let peers = peer_map.lock().unwrap();
            for recipient in peers.values() {
                let _ = recipient.unbounded_send(msg.clone());
            }
        }
        future::ok(())
    });
    let receive_from_others = rx.map(Ok).forward(outgoing);
    pin_mut!(broadcast_incoming, receive_from_others);
    future::select(broadcast_incoming, receive_from_others).await;
    peer_map.lock().unwrap().remove(&addr);
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let acceptor = peers::tls_acceptor();
    let listener = TcpListener::bind(peers::listen_addr()).await.expect("bind");
    println!("listening on {}", listener.local_addr().unwrap());
    let state = PeerMap::new(Mutex::new(HashMap::new()));
    while let Ok((stream, addr)) = listener.accept().await {
        tokio::spawn(handle_connection(
            acceptor.clone(),
            state.clone(),
            stream,
            addr,
        ));
    }
}
