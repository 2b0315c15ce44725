//! tokio-tungstenite broadcast server on a current_thread runtime, shaped like the crate's
//! `examples/server.rs`: a map of peers with unbounded channels; every message goes to every
//! peer, the sender included.
use futures_util::{SinkExt, StreamExt};
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio_tungstenite::tungstenite::Message;

type PeerMap = Rc<RefCell<HashMap<SocketAddr, UnboundedSender<Message>>>>;

async fn handle_connection(peers: PeerMap, stream: TcpStream, addr: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let Ok(ws_stream) = tokio_tungstenite::accept_async(stream).await else { return };
    let (tx, mut rx) = unbounded_channel();
    peers.borrow_mut().insert(addr, tx);
    let (mut outgoing, mut incoming) = ws_stream.split();
    let forward = async {
        while let Some(message) = rx.recv().await {
            if outgoing.send(message).await.is_err() {
                break;
            }
        }
    };
    let receive = async {
        while let Some(Ok(message)) = incoming.next().await {
            if message.is_text() || message.is_binary() {
                for tx in peers.borrow().values() {
                    let _ = tx.send(message.clone());
                }
            }
        }
    };
    tokio::select! {
        _ = forward => {}
        _ = receive => {}
    }
    peers.borrow_mut().remove(&addr);
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let listener = TcpListener::bind(peers::listen_addr()).await.expect("bind");
    println!("listening on {}", listener.local_addr().unwrap());
    let peers = PeerMap::default();
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async move {
            while let Ok((stream, addr)) = listener.accept().await {
                tokio::task::spawn_local(handle_connection(peers.clone(), stream, addr));
            }
        })
        .await;
}
