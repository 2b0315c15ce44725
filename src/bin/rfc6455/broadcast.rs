//! `rfc6455 broadcast`: a chat relay with rooms. The room is the URL path: every connection to
//! `/` shares one room (every message goes to every connection there, the sender included, like
//! `wss.clients.forEach(c => c.send(msg))` in Node's `ws`), and a connection to `/NAME` talks
//! only with room `NAME`. With a broker (`--redis`), a room spans every process on it.
//!
//! A client that asks for it (`?presence` in its URL, as the chat page does) is also told how
//! many connections its room has (in every process on the broker, with `--redis`), as a text
//! message of its own form, `{"presence":{"room":"NAME","count":N}}`, sent whenever someone
//! joins or leaves (`room` is `""` for `/`). So that no one can forge one, a client's message that starts with
//! `{"presence":` is not relayed. Other clients never see one: what they send and receive is
//! unchanged.

use crate::page;
use crate::subprotocol::Subprotocols;
use rfc6455::server::{Context, Handler, Opening, PeerId, Upgrade};
use rfc6455::{Closure, Message, MessageKind, Request, Response};
use std::collections::HashMap;
use std::net::SocketAddr;

/// The longest room name, in bytes (the topic is the path, one byte longer).
pub const MAX_ROOM_LEN: usize = 64;

/// How presence messages start; a client's message that starts so is not relayed.
pub const PRESENCE_PREFIX: &str = "{\"presence\":";

/// The room topic a request path names (`/` or `/NAME`, without the query), or `None` when the
/// path is no room: a name of 1 to 64 ASCII letters, digits, `-`, `_`, `~` or `.` (not first),
/// and none of the paths the server answers itself (the page's files, `/metrics`, `/healthz`).
pub fn room_of(path: &str) -> Option<&str> {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let name = path.strip_prefix('/')?;
    if name.is_empty() {
        return Some(path);
    }
    let valid = name.len() <= MAX_ROOM_LEN
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_~.".contains(&b))
        && !page::is_reserved(path);
    valid.then_some(path)
}

/// Whether the request's query asks for presence messages (`?presence`, `?presence=1`, ...).
fn wants_presence(path: &str) -> bool {
    path.split_once('?').is_some_and(|(_, query)| {
        query
            .split('&')
            .any(|pair| pair.split('=').next() == Some("presence"))
    })
}

/// A presence message for `room` (a topic: `/` or `/NAME`).
fn presence(room: &str, count: usize) -> String {
    let name = &room[1..]; // room names need no JSON escaping
    format!("{PRESENCE_PREFIX}{{\"room\":\"{name}\",\"count\":{count}}}}}")
}

/// Relays every message to its room.
#[derive(Debug, Default)]
pub struct Broadcast {
    /// The subprotocols accepted (`--subprotocol`).
    pub subprotocols: Subprotocols,
    /// The connections that asked for presence messages, by room. Kept here rather than as a
    /// topic so that, with a broker, no Redis channel is spent on what only concerns this
    /// process.
    pub watchers: HashMap<String, Vec<PeerId>>,
}

impl Handler for Broadcast {
    fn on_upgrade(&mut self, request: &Request<'_>, _remote_addr: SocketAddr) -> Upgrade {
        if room_of(request.path).is_none() {
            return Upgrade::Refuse(Response::text(404, "no such room\n"));
        }
        self.subprotocols.answer(request)
    }

    fn on_open(&mut self, ctx: &mut Context<'_>, peer: PeerId, opening: &Opening<'_>) {
        let path = opening.request.path;
        let Some(room) = room_of(path) else {
            return; // refused in on_upgrade
        };
        if let Err(e) = ctx.subscribe(peer, room) {
            log::warn!("{peer}: cannot join room {room}: {e}");
            return;
        }
        if wants_presence(path) {
            // Told the count at the end of this turn, when on_subscribers reports the join.
            self.watchers.entry(room.to_owned()).or_default().push(peer);
        }
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, peer: PeerId, message: Message<'_>) {
        if message.as_bytes().starts_with(PRESENCE_PREFIX.as_bytes()) {
            log::debug!("{peer}: a message in the form of a presence message is not relayed");
            return;
        }
        // A connection is in one room: its one topic.
        let room = ctx.topics(peer).next().map(str::to_owned);
        if let Some(room) = room {
            ctx.publish(&room, message.kind(), message.as_bytes());
        }
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, peer: PeerId, _closure: &Closure) {
        let rooms: Vec<String> = ctx.topics(peer).map(str::to_owned).collect();
        for room in &rooms {
            ctx.unsubscribe(peer, room);
            if let Some(watchers) = self.watchers.get_mut(room) {
                watchers.retain(|&w| w != peer);
                if watchers.is_empty() {
                    self.watchers.remove(room);
                }
            }
        }
    }

    /// Tells the room's watchers how many people it has now, in every process.
    fn on_subscribers(&mut self, ctx: &mut Context<'_>, room: &str, count: usize) {
        let Some(watchers) = self.watchers.get(room) else {
            return;
        };
        let text = presence(room, count);
        for &watcher in watchers {
            let _ = ctx.send(watcher, MessageKind::Text, text.as_bytes());
        }
    }

    fn on_http(&mut self, request: &Request<'_>) -> Response {
        page::respond(request, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_names_the_room() {
        assert_eq!(room_of("/"), Some("/"));
        assert_eq!(room_of("/?presence"), Some("/"));
        assert_eq!(room_of("/team-a"), Some("/team-a"));
        assert_eq!(room_of("/team-a?presence=1"), Some("/team-a"));
        assert_eq!(room_of("/Team_A.2~"), Some("/Team_A.2~"));
        assert_eq!(
            room_of(&format!("/{}", "r".repeat(64))).map(str::len),
            Some(65)
        );
        for no_room in [
            "",
            "team-a",
            "/a/b",
            "/a b",
            "/caf%C3%A9",
            "/.hidden",
            "/..",
            "/chat.js",
            "/chat.css",
            "/favicon.svg",
            "/index.html",
            "/metrics",
            "/healthz",
            &format!("/{}", "r".repeat(65)),
        ] {
            assert_eq!(room_of(no_room), None, "{no_room}");
        }
    }

    #[test]
    fn presence_is_asked_for_in_the_query() {
        assert!(wants_presence("/a?presence"));
        assert!(wants_presence("/?x=1&presence=1"));
        assert!(!wants_presence("/a"));
        assert!(!wants_presence("/a?presences"));
    }

    #[test]
    fn a_presence_message_is_json_with_the_room_and_count() {
        assert_eq!(
            presence("/team-a", 3),
            r#"{"presence":{"room":"team-a","count":3}}"#
        );
        assert_eq!(presence("/", 1), r#"{"presence":{"room":"","count":1}}"#);
        assert!(presence("/", 1).starts_with(PRESENCE_PREFIX));
    }
}
