//! The crate's blocking client as the Autobahn|Testsuite testee: it drives `wstest -m
//! fuzzingserver` the way the suite asks a client to, with permessage-deflate offered (the
//! default).
//!
//! ```text
//! cargo run --release --example autobahn_client -- ws://127.0.0.1:9001 rfc6455
//! ```
//!
//! 1. `GET /getCaseCount`: the server sends the number of cases as a text message and closes.
//! 2. For each case N from 1: `GET /runCase?case=N&agent=AGENT`, then every text or binary
//!    message is echoed back as the same type until the connection ends (the server closes it,
//!    or the client fails it when the server breaks a rule).
//! 3. `GET /updateReports?agent=AGENT`: the server writes its reports and closes.
//!
//! `autobahn/run.sh client` builds and runs it and compares the results with
//! `autobahn/expected-results-client.json`.

use rfc6455::CloseCode;
use rfc6455::client::{Client, Error};
use std::process::ExitCode;
use std::time::Duration;

/// The longest a case may stay silent before the driver gives it up and goes on with the next
/// (the suite's own timeouts are shorter).
const CASE_TIMEOUT: Duration = Duration::from_secs(120);

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:9001".to_string());
    let agent = args.next().unwrap_or_else(|| "rfc6455".to_string());
    let base = base.trim_end_matches('/');

    let count = match case_count(base) {
        Ok(count) => count,
        Err(error) => {
            eprintln!("autobahn_client: cannot get the case count from {base}: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("{count} cases");
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={agent}");
        if let Err(error) = run_case(&url) {
            // A case may end in an error on purpose (the server breaks a rule, and the client
            // fails the connection): the report judges it, not the driver.
            println!("case {case}: {error}");
        }
    }
    let url = format!("{base}/updateReports?agent={agent}");
    match Client::connect(&url).and_then(|mut client| drain(&mut client)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("autobahn_client: cannot update the reports: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `/getCaseCount`: one text message holding a number.
fn case_count(base: &str) -> Result<u32, Box<dyn std::error::Error>> {
    let mut client = Client::connect(&format!("{base}/getCaseCount"))?;
    let message = client.recv()?.ok_or("closed before the count")?;
    let count = message
        .as_text()
        .ok_or("the count is not text")?
        .trim()
        .parse()?;
    drain(&mut client)?;
    Ok(count)
}

/// One case: echo every message until the connection ends.
fn run_case(url: &str) -> Result<(), Error> {
    let mut client = Client::connect(url)?;
    client.set_read_timeout(Some(CASE_TIMEOUT));
    loop {
        match client.recv() {
            Ok(Some(message)) => match client.send(message.kind(), message.as_bytes()) {
                // The server's Close may have come while the message was being read: nothing
                // is echoed after it.
                Ok(()) | Err(Error::NotOpen) => {}
                Err(error) => return Err(error),
            },
            Ok(None) => return Ok(()),
            Err(Error::Io(error))
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                // Silence for too long: close, and let the report say what happened.
                let _ = client.close(CloseCode::GOING_AWAY, "case timed out");
                return Err(Error::Io(error));
            }
            Err(error @ Error::Protocol(_)) => {
                // The client failed the connection (its Close is sent): wait for the server to
                // close TCP, as after any closing handshake.
                let _ = drain(&mut client);
                return Err(error);
            }
            Err(error) => return Err(error),
        }
    }
}

/// Reads (and drops) messages until the connection is closed.
fn drain(client: &mut Client) -> Result<(), Error> {
    while client.recv()?.is_some() {}
    Ok(())
}
