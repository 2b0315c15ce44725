//! A cloneable, `Send` handle through which other threads act on the server's connections: each
//! command is queued and the event loop is woken to carry it out.

use super::outbound::{ConnectError, ConnectOptions};
use super::peers::PeerId;
use crate::close::CloseCode;
use crate::message::MessageKind;
use bytes::Bytes;
use mio::Waker;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, OnceLock};
use std::thread::ThreadId;
use std::time::Duration;

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
    Subscribe {
        peer: PeerId,
        topic: String,
    },
    Unsubscribe {
        peer: PeerId,
        topic: String,
    },
    Publish {
        topic: String,
        except: Option<PeerId>,
        kind: MessageKind,
        payload: Bytes,
    },
    Subscribers {
        topic: String,
        reply: SyncSender<usize>,
    },
    Connect {
        url: String,
        options: Box<ConnectOptions>,
        reply: SyncSender<Result<PeerId, ConnectError>>,
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
    /// A call that waits for the loop's answer was made on the loop's own thread (use
    /// [`Context`](super::Context) there).
    OnLoopThread,
}

impl fmt::Display for HandleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HandleError::QueueFull => "the server's command queue is full",
            HandleError::ServerGone => "the server has stopped",
            HandleError::OnLoopThread => "a blocking handle call on the server's own thread",
        })
    }
}

impl std::error::Error for HandleError {}

/// How long [`Handle::subscribers`] waits for the loop's answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends, broadcasts, publishes, manages subscriptions, closes and shuts down through a running
/// server, from any thread.
#[derive(Debug, Clone)]
pub struct Handle {
    commands: SyncSender<Command>,
    waker: Arc<Waker>,
    shutdown: Arc<AtomicBool>,
    /// The thread that runs the loop, once it runs.
    loop_thread: Arc<OnceLock<ThreadId>>,
}

impl Handle {
    /// A handle and the receiving end the loop drains.
    pub(crate) fn new(waker: Arc<Waker>, capacity: usize) -> (Handle, Receiver<Command>) {
        let (commands, receiver) = sync_channel(capacity);
        let handle = Handle {
            commands,
            waker,
            shutdown: Arc::new(AtomicBool::new(false)),
            loop_thread: Arc::new(OnceLock::new()),
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

    /// Subscribes a connection to `topic` (see
    /// [`Context::subscribe`](super::Context::subscribe)); a refusal is logged at debug level.
    pub fn subscribe(&self, peer: PeerId, topic: &str) -> Result<(), HandleError> {
        self.submit(Command::Subscribe {
            peer,
            topic: topic.to_owned(),
        })
    }

    /// Unsubscribes a connection from `topic`.
    pub fn unsubscribe(&self, peer: PeerId, topic: &str) -> Result<(), HandleError> {
        self.submit(Command::Unsubscribe {
            peer,
            topic: topic.to_owned(),
        })
    }

    /// Publishes a message to every subscriber of `topic` (see
    /// [`Context::publish`](super::Context::publish)).
    pub fn publish(
        &self,
        topic: &str,
        kind: MessageKind,
        payload: impl Into<Bytes>,
    ) -> Result<(), HandleError> {
        self.submit(Command::Publish {
            topic: topic.to_owned(),
            except: None,
            kind,
            payload: payload.into(),
        })
    }

    /// Publishes a message to every subscriber of `topic` but `sender` (see
    /// [`Context::publish_except`](super::Context::publish_except)).
    pub fn publish_except(
        &self,
        topic: &str,
        sender: PeerId,
        kind: MessageKind,
        payload: impl Into<Bytes>,
    ) -> Result<(), HandleError> {
        self.submit(Command::Publish {
            topic: topic.to_owned(),
            except: Some(sender),
            kind,
            payload: payload.into(),
        })
    }

    /// How many connections of the server are subscribed to `topic`, asked of the loop and
    /// waited for (at most [`ANSWER_TIMEOUT`]). Refused on the loop's own thread, where it could
    /// only wait for itself: use [`Context::subscribers`](super::Context::subscribers) there.
    pub fn subscribers(&self, topic: &str) -> Result<usize, HandleError> {
        if self.loop_thread.get() == Some(&std::thread::current().id()) {
            return Err(HandleError::OnLoopThread);
        }
        let (reply, answer) = sync_channel(1);
        self.submit(Command::Subscribers {
            topic: topic.to_owned(),
            reply,
        })?;
        answer
            .recv_timeout(ANSWER_TIMEOUT)
            .map_err(|_| HandleError::ServerGone)
    }

    /// Opens a WebSocket connection from the loop (see
    /// [`Context::connect`](super::Context::connect)), asked of the loop and waited for (at
    /// most [`ANSWER_TIMEOUT`]): the id comes back once the TCP connect has started, and the
    /// handler hears the rest. Refused on the loop's own thread (use the `Context` there); a
    /// failure to reach the loop is [`ConnectError::Handle`].
    pub fn connect(&self, url: &str, options: ConnectOptions) -> Result<PeerId, ConnectError> {
        if self.loop_thread.get() == Some(&std::thread::current().id()) {
            return Err(ConnectError::Handle(HandleError::OnLoopThread));
        }
        let (reply, answer) = sync_channel(1);
        self.submit(Command::Connect {
            url: url.to_owned(),
            options: Box::new(options),
            reply,
        })
        .map_err(ConnectError::Handle)?;
        answer
            .recv_timeout(ANSWER_TIMEOUT)
            .map_err(|_| ConnectError::Handle(HandleError::ServerGone))?
    }

    /// Records the thread that runs the loop.
    pub(crate) fn set_loop_thread(&self) {
        let _ = self.loop_thread.set(std::thread::current().id());
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
