//! tokio-tungstenite broadcast server on a current_thread runtime, shaped like the crate's
//! `examples/server.rs`: a map of peers with unbounded channels, every message sent to every peer
//! (the sender included), and each peer's channel forwarded into its socket with `forward`, which
//! writes out whatever is queued before flushing.
use futures_channel::mpsc::{UnboundedSender, unbounded};
use futures_util::{StreamExt, TryStreamExt, future, pin_mut};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

type PeerMap = Arc<Mutex<HashMap<SocketAddr, UnboundedSender<Message>>>>;

async fn handle_connection(peer_map: PeerMap, raw_stream: TcpStream, addr: SocketAddr) {
    let _ = raw_stream.set_nodelay(true);
    let Ok(ws_stream) = tokio_tungstenite::accept_async(raw_stream).await else {
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
    let listener = TcpListener::bind(peers::listen_addr()).await.expect("bind");
    println!("listening on {}", listener.local_addr().unwrap());
    let state = PeerMap::new(Mutex::new(HashMap::new()));
    while let Ok((stream, addr)) = listener.accept().await {
        tokio::spawn(handle_connection(state.clone(), stream, addr));
    }
}
