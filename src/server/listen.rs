//! The listening socket: bound like mio's `TcpListener::bind` (`SO_REUSEADDR`, a backlog of
//! 1024, non-blocking), and with `SO_REUSEPORT` when asked, so that several processes can listen
//! on one address and the kernel spreads new connections among them. Neither std nor mio sets
//! `SO_REUSEPORT`; rustix, which the shell already uses for the descriptor limit, does it
//! without unsafe code.

use mio::net::TcpListener;
use rustix::net::{AddressFamily, SocketFlags, SocketType, sockopt};
use std::io;
use std::net::SocketAddr;

/// Binds a non-blocking listener to `addr`, with `SO_REUSEPORT` if `reuse_port`.
pub(crate) fn bind(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    if !reuse_port {
        return TcpListener::bind(addr);
    }
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::INET,
        SocketAddr::V6(_) => AddressFamily::INET6,
    };
    let socket = rustix::net::socket_with(
        family,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?;
    sockopt::set_socket_reuseaddr(&socket, true)?;
    sockopt::set_socket_reuseport(&socket, true)?;
    rustix::net::bind(&socket, &addr)?;
    rustix::net::listen(&socket, 1024)?;
    Ok(TcpListener::from_std(std::net::TcpListener::from(socket)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_listeners_share_a_port_only_with_reuse_port() {
        let first = bind("127.0.0.1:0".parse().unwrap(), true).unwrap();
        let addr = first.local_addr().unwrap();
        let second = bind(addr, true).unwrap();
        assert_eq!(second.local_addr().unwrap(), addr);
        assert!(bind(addr, false).is_err(), "without it the port is taken");
    }
}
