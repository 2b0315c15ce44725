//! Shared by the peer servers: the listen address from the first argument.

/// `127.0.0.1:PORT` from the first command-line argument (default 9001).
pub fn listen_addr() -> String {
    let port = std::env::args().nth(1).unwrap_or_else(|| "9001".into());
    format!("127.0.0.1:{port}")
}
