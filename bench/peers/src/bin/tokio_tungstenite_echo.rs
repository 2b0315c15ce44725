//! tokio-tungstenite echo server on a current_thread runtime, shaped like the crate's
//! `examples/echo-server.rs` (split the stream, forward text and binary messages back).
use futures_util::{StreamExt, TryStreamExt, future};
use tokio::net::{TcpListener, TcpStream};

async fn accept_connection(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let Ok(ws_stream) = tokio_tungstenite::accept_async(stream).await else {
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
    let listener = TcpListener::bind(peers::listen_addr()).await.expect("bind");
    println!("listening on {}", listener.local_addr().unwrap());
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(accept_connection(stream));
    }
}
