//! A cloneable, `Send` handle through which other threads act on the server's connections: each
//! command is queued and the event loop is woken to carry it out.

use super::peers::PeerId;
use crate::close::CloseCode;
use crate::message::MessageKind;
use bytes::Bytes;
use mio::Waker;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

/// Something another thread asked the loop to do.
#[derive(Debug)]
pub(crate) enum Command {
    Send {
        to: PeerId,
        kind: MessageKind,
        payload: Bytes,
    },
    Broadcast {
        kind: MessageKind,
        payload: Bytes,
    },
    Close {
        to: PeerId,
        code: CloseCode,
        reason: String,
    },
}

/// Why a command could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandleError {
    /// The loop has `Config::command_queue` commands waiting already.
    QueueFull,
    /// The server has stopped.
    ServerGone,
}

impl fmt::Display for HandleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HandleError::QueueFull => "the server's command queue is full",
            HandleError::ServerGone => "the server has stopped",
        })
    }
}

impl std::error::Error for HandleError {}

/// Sends, broadcasts, closes and shuts down through a running server, from any thread.
#[derive(Debug, Clone)]
pub struct Handle {
    commands: SyncSender<Command>,
    waker: Arc<Waker>,
    shutdown: Arc<AtomicBool>,
}

impl Handle {
    /// A handle and the receiving end the loop drains.
    pub(crate) fn new(waker: Arc<Waker>, capacity: usize) -> (Handle, Receiver<Command>) {
        let (commands, receiver) = sync_channel(capacity);
        let handle = Handle {
            commands,
            waker,
            shutdown: Arc::new(AtomicBool::new(false)),
        };
        (handle, receiver)
    }

    fn submit(&self, command: Command) -> Result<(), HandleError> {
        match self.commands.try_send(command) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(HandleError::QueueFull),
            Err(TrySendError::Disconnected(_)) => return Err(HandleError::ServerGone),
        }
        self.waker.wake().map_err(|_| HandleError::ServerGone)
    }

    /// Queues a message to one connection (see [`Context::send`](super::Context::send)).
    pub fn send(
        &self,
        to: PeerId,
        kind: MessageKind,
        payload: impl Into<Bytes>,
    ) -> Result<(), HandleError> {
        self.submit(Command::Send {
            to,
            kind,
            payload: payload.into(),
        })
    }

    /// Sends a message to every open connection (see
    /// [`Context::broadcast`](super::Context::broadcast)).
    pub fn broadcast(
        &self,
        kind: MessageKind,
        payload: impl Into<Bytes>,
    ) -> Result<(), HandleError> {
        self.submit(Command::Broadcast {
            kind,
            payload: payload.into(),
        })
    }

    /// Starts the closing handshake with one connection.
    pub fn close(&self, to: PeerId, code: CloseCode, reason: &str) -> Result<(), HandleError> {
        self.submit(Command::Close {
            to,
            code,
            reason: reason.to_owned(),
        })
    }

    /// Starts a graceful shutdown: new upgrades are refused with 503 and `/healthz` answers 503,
    /// every open connection is sent 1001, and `run` returns once they closed (or the shutdown
    /// timeout passed). Never refused: it does not wait in the command queue.
    pub fn shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
    }

    /// Whether a shutdown was asked for.
    pub(crate) fn shutdown_requested(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }
}
