//! fastwebsockets echo server on a current_thread runtime, shaped like the crate's
//! `examples/echo_server.rs` (hyper upgrade, FragmentCollector, write each frame back).
use fastwebsockets::{FragmentCollector, OpCode, WebSocketError, upgrade};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use tokio::net::TcpListener;

async fn handle_client(fut: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
    let mut ws = FragmentCollector::new(fut.await?);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => break,
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            _ => {}
        }
    }
    Ok(())
}

async fn server_upgrade(
    mut req: Request<Incoming>,
) -> Result<Response<Empty<Bytes>>, WebSocketError> {
    let (response, fut) = upgrade::upgrade(&mut req)?;
    tokio::task::spawn(async move {
        let _ = tokio::task::unconstrained(handle_client(fut)).await;
    });
    Ok(response)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let listener = TcpListener::bind(peers::listen_addr()).await.expect("bind");
    println!("listening on {}", listener.local_addr().unwrap());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = http1::Builder::new()
                .serve_connection(io, service_fn(server_upgrade))
                .with_upgrades()
                .await;
        });
    }
}
