//! `rfc6455 client URL`: a terminal client in the manner of websocat and wscat. Each line of
//! standard input is sent as a message and each message received is printed on its own line; it
//! works the same in a pipe as at a terminal.
//!
//! Standard input is read by a thread of its own, which hands lines over a channel; the main
//! thread waits for the server's messages with a short read timeout and looks at the channel
//! between reads, so that a line is sent at most [`POLL`] after it is typed.

use clap::Args;
use rfc6455::client::{Client, ClientOptions, Error};
use rfc6455::client_handshake::ResponseError;
use rfc6455::closure::Deadline;
use rfc6455::{CloseCause, CloseCode, Closure, Message, MessageKind};
use std::io::{self, BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::Duration;

/// How long the main thread waits for the server before it looks at standard input again.
const POLL: Duration = Duration::from_millis(20);

/// How many lines read ahead of the network may wait in the channel.
const LINES_AHEAD: usize = 64;

/// How long the server may take to answer our Close (its echo of what we sent last may come
/// first).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The exit statuses, for `--help`.
pub const EXIT_STATUS: &str = "\
Received messages: text is printed as it is, followed by a newline; binary is printed in
lowercase hex followed by a newline, or with --binary as its raw bytes followed by a newline.
The close code and reason, and any error, go to standard error.

Exit status (how the connection ended):
  0  closed cleanly with 1000 (normal), 1001 (going away) or no code (1005)
  3  closed cleanly with another code (4000, say)
  4  failed or dropped: the server broke the protocol (we closed with 1002, 1007...), closed
     TCP without a Close (1006), or a deadline passed
  2  usage error, invalid URL, no connection, or the upgrade was refused or invalid
  1  reading standard input or writing standard output failed";

/// Connect to a WebSocket server: send each line of standard input as a message, print each
/// message received on its own line.
#[derive(Args, Debug)]
pub struct ClientArgs {
    /// The server's URL: ws://HOST[:PORT][/PATH][?QUERY], or wss:// for TLS (the server's
    /// certificate verified against the platform's trust store, or --ca-file).
    url: String,
    /// Send each line as a binary message (without its newline), and print binary messages
    /// received as raw bytes instead of hex.
    #[arg(long)]
    binary: bool,
    /// Request and reply: once standard input has ended, wait until a message has arrived
    /// since the last line was sent (it may have arrived already; with no line sent, since the
    /// connection opened), print it, close with the --close code and exit. Without --once, the
    /// end of standard input closes at once, and every message that arrives before the
    /// server's Close is printed.
    #[arg(long)]
    once: bool,
    /// A request header field, 'NAME: VALUE' (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// A subprotocol to offer (repeatable; offered in the order given). The server's choice is
    /// printed on standard error.
    #[arg(long = "protocol", value_name = "NAME")]
    protocols: Vec<String>,
    /// The Origin to send, as a page from that origin would (none by default).
    #[arg(long, value_name = "ORIGIN")]
    origin: Option<String>,
    /// Keepalive: ping the server after this many seconds without a message from it, and drop
    /// the connection if nothing arrives within 30 seconds of the ping (0 disables).
    #[arg(long, value_name = "SECONDS", default_value_t = 0.0)]
    ping_interval: f64,
    /// Do not offer permessage-deflate (RFC 7692); by default it is offered.
    #[arg(long)]
    no_compression: bool,
    /// The close code, and optionally a reason, sent when standard input ends: CODE[:REASON],
    /// CODE one a client may send (1000-1003, 1007-1014, 3000-4999).
    #[arg(long, value_name = "CODE[:REASON]", default_value = "1000", value_parser = parse_close)]
    close: CloseArg,
    /// For wss://: trust the CA certificates in this PEM file instead of the platform's trust
    /// store (a private CA, or a self-signed server certificate).
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// For wss://: accept any certificate for any name from any issuer. Dangerous: anyone on
    /// the path can read and change the traffic. For testing against a server with a
    /// self-signed certificate; prefer --ca-file.
    #[arg(long)]
    insecure: bool,
}

/// The `--close` value.
#[derive(Debug, Clone)]
struct CloseArg {
    code: CloseCode,
    reason: String,
}

fn parse_header(value: &str) -> Result<(String, String), String> {
    let (name, field) = value
        .split_once(':')
        .ok_or_else(|| format!("{value:?} is not NAME: VALUE"))?;
    let name = name.trim();
    let valid_name = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid_name || field.contains(['\r', '\n']) {
        return Err(format!("{value:?} is not a valid header field"));
    }
    Ok((name.to_string(), field.trim().to_string()))
}

fn parse_close(value: &str) -> Result<CloseArg, String> {
    let (code, reason) = value.split_once(':').unwrap_or((value, ""));
    let code = code
        .parse::<u16>()
        .ok()
        .map(CloseCode)
        .filter(|code| code.is_valid_on_wire())
        .ok_or_else(|| format!("{code:?} is not a close code that may be sent"))?;
    // A Close frame's payload is at most 125 bytes: the code's 2 and 123 of reason.
    if reason.len() > 123 {
        return Err(format!("the reason is {} bytes, over 123", reason.len()));
    }
    Ok(CloseArg {
        code,
        reason: reason.to_string(),
    })
}

/// What the thread that reads standard input hands over.
enum Input {
    Line(Vec<u8>),
    End,
    Failed(io::Error),
}

/// Reads standard input line by line into a channel, until its end.
fn read_stdin() -> Receiver<Input> {
    let (lines, receiver) = mpsc::sync_channel(LINES_AHEAD);
    std::thread::spawn(move || {
        let mut stdin = io::stdin().lock();
        loop {
            let mut line = Vec::new();
            let input = match stdin.read_until(b'\n', &mut line) {
                Ok(0) => Input::End,
                Ok(_) => {
                    if line.ends_with(b"\n") {
                        line.pop();
                        if line.ends_with(b"\r") {
                            line.pop();
                        }
                    }
                    Input::Line(line)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Input::Failed(e),
            };
            let last = !matches!(input, Input::Line(_));
            if lines.send(input).is_err() || last {
                return;
            }
        }
    });
    receiver
}

/// Exit statuses.
const CLEAN: u8 = 0;
const LOCAL_FAILURE: u8 = 1;
const NOT_CONNECTED: u8 = 2;
const CLEAN_OTHER_CODE: u8 = 3;
const FAILED: u8 = 4;

/// Runs the client; returns the exit status.
pub fn run(args: &ClientArgs) -> ExitCode {
    let mut options = ClientOptions {
        origin: args.origin.clone(),
        protocols: args.protocols.clone(),
        headers: args.headers.clone(),
        ca_file: args.ca_file.clone(),
        danger_accept_invalid_certs: args.insecure,
        ..ClientOptions::default()
    };
    options.config.deflate.enabled = !args.no_compression;
    options.config.close_timeout = CLOSE_TIMEOUT;
    options.config.idle_timeout = match Duration::try_from_secs_f64(args.ping_interval) {
        Ok(interval) => interval,
        Err(_) => {
            eprintln!(
                "rfc6455: --ping-interval {} is not seconds",
                args.ping_interval
            );
            return ExitCode::from(NOT_CONNECTED);
        }
    };
    let mut client = match Client::connect_with(&args.url, options) {
        Ok(client) => client,
        Err(error) => {
            report_connect_error(&args.url, &error);
            return ExitCode::from(NOT_CONNECTED);
        }
    };
    match client.protocol() {
        Some(protocol) => eprintln!(
            "rfc6455: connected to {} (subprotocol {protocol})",
            args.url
        ),
        None => eprintln!("rfc6455: connected to {}", args.url),
    }
    let status = Terminal {
        args,
        client: &mut client,
        stdout: io::stdout().lock(),
        local_failure: false,
    }
    .run(read_stdin());
    ExitCode::from(status)
}

fn report_connect_error(url: &str, error: &Error) {
    match error {
        Error::Handshake(ResponseError::Refused(refusal)) => eprintln!(
            "rfc6455: {url} refused the upgrade: {} {}",
            refusal.status, refusal.reason
        ),
        error => eprintln!("rfc6455: cannot connect to {url}: {error}"),
    }
}

/// The open connection, standard input and standard output, until the connection ends.
struct Terminal<'a> {
    args: &'a ClientArgs,
    client: &'a mut Client,
    stdout: io::StdoutLock<'static>,
    /// Reading standard input or writing standard output failed.
    local_failure: bool,
}

impl Terminal<'_> {
    fn run(mut self, stdin: Receiver<Input>) -> u8 {
        self.client.set_read_timeout(Some(POLL));
        let mut stdin_open = true;
        // --once: whether a message arrived since the last line was sent.
        let mut replied = false;
        let mut closing = false;
        loop {
            while stdin_open {
                match stdin.try_recv() {
                    Ok(Input::Line(line)) => {
                        if self.send(line) {
                            replied = false;
                        }
                    }
                    Ok(Input::End) | Err(TryRecvError::Disconnected) => stdin_open = false,
                    Ok(Input::Failed(error)) => {
                        eprintln!("rfc6455: reading standard input failed: {error}");
                        self.local_failure = true;
                        stdin_open = false;
                    }
                    Err(TryRecvError::Empty) => break,
                }
            }
            if !stdin_open && !closing && (!self.args.once || replied) {
                closing = true;
                if self.args.once {
                    // The one message is printed: close, and drop whatever else comes.
                    let CloseArg { code, reason } = &self.args.close;
                    return match self.client.close(*code, reason) {
                        Ok(closure) => self.finish(&closure),
                        Err(error) => self.fail(error),
                    };
                }
                let CloseArg { code, reason } = &self.args.close;
                // A Close may have come from the server already; recv then ends the loop.
                let _ = self.client.start_close(*code, reason);
            }
            match self.client.recv() {
                Ok(Some(message)) => {
                    replied = true;
                    if let Err(error) = self.print(&message) {
                        eprintln!("rfc6455: writing standard output failed: {error}");
                        self.local_failure = true;
                        if !closing {
                            // Nowhere to print: stop reading standard input and close.
                            stdin_open = false;
                        }
                    }
                }
                Ok(None) => {
                    let closure = self.client.closure().cloned();
                    return match closure {
                        Some(closure) => self.finish(&closure),
                        None => self.fail(Error::NotOpen),
                    };
                }
                Err(Error::Io(error))
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(error) => return self.fail(error),
            }
        }
    }

    /// Sends one line; whether it was sent.
    fn send(&mut self, line: Vec<u8>) -> bool {
        let kind = if self.args.binary {
            MessageKind::Binary
        } else if std::str::from_utf8(&line).is_ok() {
            MessageKind::Text
        } else {
            eprintln!("rfc6455: a line of standard input is not UTF-8, not sent (see --binary)");
            return false;
        };
        match self.client.send(kind, &line) {
            Ok(()) => true,
            // The server's Close came first: the loop ends at the next recv.
            Err(Error::NotOpen) => false,
            Err(error) => {
                eprintln!("rfc6455: sending failed: {error}");
                false
            }
        }
    }

    fn print(&mut self, message: &Message<'_>) -> io::Result<()> {
        let out = &mut self.stdout;
        match message.kind() {
            MessageKind::Binary if !self.args.binary => {
                for byte in message.as_bytes() {
                    write!(out, "{byte:02x}")?;
                }
            }
            _ => out.write_all(message.as_bytes())?,
        }
        out.write_all(b"\n")?;
        out.flush()
    }

    /// The connection failed on our side of things, or the server broke a rule.
    fn fail(&mut self, error: Error) -> u8 {
        if let Error::Protocol(_) = error {
            // Our Close is sent: wait (bounded by the close timeout) for the server's TCP close.
            self.client.set_read_timeout(None);
            while let Ok(Some(_)) = self.client.recv() {}
        }
        match self.client.closure().cloned() {
            Some(closure) if !matches!(error, Error::Io(_)) => self.finish(&closure),
            _ => {
                eprintln!("rfc6455: connection failed: {error}");
                FAILED
            }
        }
    }

    /// Reports how the connection ended, and returns the exit status that says it.
    fn finish(&mut self, closure: &Closure) -> u8 {
        //= https://www.rfc-editor.org/rfc/rfc6455#section-5.5.1
        //= type=exception
        //= reason=Not met by this terminal client: it prints the server's close reason on standard error,
        //= reason=quoted and escaped ({:?}), after the code, as a tool for developers testing a server. The
        //= reason=library only hands the reason to the application (Closure::reason, the Close event); the
        //= reason=chat page (a browser client) shows the close code alone.
        //# As the data is not guaranteed to
        //# be human readable, clients MUST NOT show it to end users.
        let code = closure.code.0;
        let reason = match closure.reason.as_str() {
            "" => String::new(),
            reason => format!(" {reason:?}"),
        };
        let status = match closure.cause {
            CloseCause::ClosedByPeer => {
                eprintln!("rfc6455: closed by the server with {code}{reason}");
                clean_status(closure.code)
            }
            CloseCause::ClosedByUs(ours) => {
                eprintln!(
                    "rfc6455: closed with {}, answered with {code}{reason}",
                    ours.0
                );
                clean_status(closure.code)
            }
            CloseCause::Failed(error) => {
                eprintln!(
                    "rfc6455: connection failed, closed with {}: {error}",
                    error.close_code().0
                );
                FAILED
            }
            CloseCause::TimedOut(deadline) => {
                let why = match deadline {
                    Deadline::Keepalive => "nothing came back after the keepalive ping",
                    Deadline::Close => "the server did not answer our Close in time",
                    _ => "a deadline passed",
                };
                eprintln!("rfc6455: connection dropped ({code}): {why}");
                FAILED
            }
            CloseCause::TransportClosed => {
                eprintln!(
                    "rfc6455: connection dropped ({code}): the server closed TCP without a Close"
                );
                FAILED
            }
            CloseCause::Dropped(why) => {
                eprintln!("rfc6455: connection dropped ({code}): {why}");
                FAILED
            }
            _ => {
                eprintln!("rfc6455: connection ended ({code}): {:?}", closure.cause);
                FAILED
            }
        };
        if self.local_failure && status == CLEAN {
            LOCAL_FAILURE
        } else {
            status
        }
    }
}

/// The exit status of a clean close with `code` (the server's).
fn clean_status(code: CloseCode) -> u8 {
    if matches!(
        code,
        CloseCode::NORMAL | CloseCode::GOING_AWAY | CloseCode::NO_STATUS
    ) {
        CLEAN
    } else {
        CLEAN_OTHER_CODE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields() {
        assert_eq!(
            parse_header("X-Token:  abc def "),
            Ok(("X-Token".into(), "abc def".into()))
        );
        assert_eq!(parse_header("X-Empty:"), Ok(("X-Empty".into(), "".into())));
        assert!(parse_header("no colon").is_err());
        assert!(parse_header(": value").is_err());
        assert!(parse_header("Bad Name: value").is_err());
    }

    #[test]
    fn close_codes_and_reasons() {
        let close = parse_close("4000:bye").unwrap();
        assert_eq!(
            (close.code, close.reason.as_str()),
            (CloseCode(4000), "bye")
        );
        let close = parse_close("1001").unwrap();
        assert_eq!((close.code, close.reason.as_str()), (CloseCode(1001), ""));
        assert_eq!(parse_close("3000:a:b").unwrap().reason, "a:b");
        for bad in ["1005", "1006", "999", "5000", "x", ""] {
            assert!(parse_close(bad).is_err(), "{bad}");
        }
        assert!(parse_close(&format!("1000:{}", "x".repeat(124))).is_err());
    }

    #[test]
    fn exit_statuses_of_clean_closes() {
        assert_eq!(clean_status(CloseCode::NORMAL), CLEAN);
        assert_eq!(clean_status(CloseCode::GOING_AWAY), CLEAN);
        assert_eq!(clean_status(CloseCode::NO_STATUS), CLEAN);
        assert_eq!(clean_status(CloseCode(4000)), CLEAN_OTHER_CODE);
        assert_eq!(clean_status(CloseCode::PROTOCOL_ERROR), CLEAN_OTHER_CODE);
    }
}
