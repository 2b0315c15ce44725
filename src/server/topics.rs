//! Topics (rooms): named groups of connections that a message can be published to.
//!
//! A connection subscribes to and unsubscribes from topics by name; publishing to a topic hands
//! one frame, encoded (and compressed) once, to every subscriber (see
//! [`Peers::hand_out`](super::peers::Peers::hand_out)). uWebSockets' `subscribe`, `unsubscribe`,
//! `isSubscribed`, `getTopics`, `publish` (and the same from the app, which skips no one) and
//! `numSubscribers` are the model.
//!
//! The table is the only place that holds per-connection topic data, so a connection in no topic
//! costs nothing here and its `Peer` stays as small as before. A topic exists only while it has a
//! subscriber, and every subscription ends when its connection is removed.
//!
//! # Topic names
//!
//! A name is 1 to [`MAX_TOPIC_LEN`] bytes, each an ASCII letter or digit or one of `- . _ ~ / : @`:
//!
//! - those characters need no escaping in a URL path (RFC 3986's unreserved characters and the
//!   path's own `/ : @`), so a topic can be named by a link (`/team-a`);
//! - none of them is a Redis glob metacharacter (`* ? [ ] \`), so a topic's Redis channel is never
//!   a pattern, whoever subscribes to it with `PSUBSCRIBE`;
//! - no space, control character or quote, so a name can be logged as it is;
//! - the length bound, with [`Config::max_topics_per_connection`](super::Config), bounds what
//!   clients can make the table hold: at most that many names of at most 128 bytes per
//!   connection, gone when the connection is.

use super::peers::PeerId;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

/// The longest topic name, in bytes.
pub const MAX_TOPIC_LEN: usize = 128;

/// Why a topic operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TopicError {
    /// The name is empty.
    Empty,
    /// The name is longer than [`MAX_TOPIC_LEN`] bytes.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The name holds a byte outside the allowed set (ASCII letters, digits, `- . _ ~ / : @`).
    InvalidByte {
        /// The byte.
        byte: u8,
        /// Where it is.
        at: usize,
    },
    /// The connection is subscribed to as many topics as it may be.
    TooManyTopics {
        /// [`Config::max_topics_per_connection`](super::Config::max_topics_per_connection).
        limit: usize,
    },
    /// The connection is gone (or not open yet).
    NotOpen,
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopicError::Empty => f.write_str("empty topic name"),
            TopicError::TooLong { len } => {
                write!(f, "topic name of {len} bytes, over {MAX_TOPIC_LEN}")
            }
            TopicError::InvalidByte { byte, at } => {
                write!(
                    f,
                    "byte 0x{byte:02x} at {at} is not allowed in a topic name"
                )
            }
            TopicError::TooManyTopics { limit } => {
                write!(f, "the connection is in {limit} topics already")
            }
            TopicError::NotOpen => f.write_str("the connection is not open"),
        }
    }
}

impl std::error::Error for TopicError {}

/// Whether `byte` may appear in a topic name.
fn allowed(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~/:@".contains(&byte)
}

/// Checks a topic name: 1 to [`MAX_TOPIC_LEN`] bytes, each an ASCII letter or digit or one of
/// `- . _ ~ / : @`. They need no escaping in a URL path (a topic can be named by a link), none is
/// a Redis glob character (a topic's channel is never a pattern), and a name can be logged as it
/// is.
///
/// ```
/// use rfc6455::server::{validate_topic, TopicError};
/// assert_eq!(validate_topic("/team-a"), Ok(()));
/// assert_eq!(validate_topic(""), Err(TopicError::Empty));
/// assert_eq!(validate_topic("a*"), Err(TopicError::InvalidByte { byte: b'*', at: 1 }));
/// ```
pub fn validate_topic(name: &str) -> Result<(), TopicError> {
    if name.is_empty() {
        return Err(TopicError::Empty);
    }
    if name.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong { len: name.len() });
    }
    match name.bytes().position(|b| !allowed(b)) {
        Some(at) => Err(TopicError::InvalidByte {
            byte: name.as_bytes()[at],
            at,
        }),
        None => Ok(()),
    }
}

/// A change in which topics have subscribers on this server, for a broker that subscribes to
/// their channels (interest-based: on the first subscriber, off after the last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Interest {
    /// The topic got its first subscriber.
    Added(Arc<str>),
    /// The topic lost its last subscriber.
    Removed(Arc<str>),
}

/// Every topic with subscribers, and every connection's subscriptions.
#[derive(Debug, Default)]
pub(crate) struct Topics {
    /// Each topic's subscribers, in slab-key order: a publication visits them in the order
    /// their `Peer`s lie in memory, which the processor's prefetcher follows (a hash set's
    /// order sent it all over the slab, about 7% more server CPU per delivery to 1 000).
    subscribers: HashMap<Arc<str>, BTreeSet<PeerId>>,
    by_peer: HashMap<PeerId, Vec<Arc<str>>>,
    /// Changes of interest since the broker last took them (recorded only when there is one).
    changes: Vec<Interest>,
    tracking: bool,
    /// Topics whose number of subscribers changed since it was last taken.
    counted: HashSet<Arc<str>>,
}

impl Topics {
    /// Subscribes `peer` to `topic`. Returns whether it was not subscribed already.
    pub fn subscribe(
        &mut self,
        peer: PeerId,
        topic: &str,
        limit: usize,
    ) -> Result<bool, TopicError> {
        validate_topic(topic)?;
        let mine = self.by_peer.entry(peer).or_default();
        if mine.iter().any(|t| &**t == topic) {
            return Ok(false);
        }
        if mine.len() >= limit {
            if mine.is_empty() {
                self.by_peer.remove(&peer);
            }
            return Err(TopicError::TooManyTopics { limit });
        }
        let name = match self.subscribers.get_key_value(topic) {
            Some((name, _)) => name.clone(),
            None => {
                let name: Arc<str> = Arc::from(topic);
                self.subscribers.insert(name.clone(), BTreeSet::new());
                if self.tracking {
                    self.changes.push(Interest::Added(name.clone()));
                }
                name
            }
        };
        mine.push(name.clone());
        self.counted.insert(name.clone());
        self.subscribers
            .get_mut(&name)
            .expect("inserted above")
            .insert(peer);
        Ok(true)
    }

    /// Unsubscribes `peer` from `topic`. Returns whether it was subscribed.
    pub fn unsubscribe(&mut self, peer: PeerId, topic: &str) -> bool {
        let Some(mine) = self.by_peer.get_mut(&peer) else {
            return false;
        };
        let Some(at) = mine.iter().position(|t| &**t == topic) else {
            return false;
        };
        mine.swap_remove(at);
        if mine.is_empty() {
            self.by_peer.remove(&peer);
        }
        self.leave(peer, topic);
        true
    }

    /// Takes `peer` out of `topic`'s subscribers, and the topic out of the table if it was the
    /// last.
    fn leave(&mut self, peer: PeerId, topic: &str) {
        if let Some((name, set)) = self.subscribers.get_key_value(topic)
            && set.contains(&peer)
            && !self.counted.contains(topic)
        {
            self.counted.insert(name.clone());
        }
        if let Some(set) = self.subscribers.get_mut(topic) {
            set.remove(&peer);
            if set.is_empty()
                && let Some((name, _)) = self.subscribers.remove_entry(topic)
                && self.tracking
            {
                self.changes.push(Interest::Removed(name));
            }
        }
    }

    /// Ends every subscription of a connection that is gone.
    pub fn remove_peer(&mut self, peer: PeerId) {
        for topic in self.by_peer.remove(&peer).unwrap_or_default() {
            self.leave(peer, &topic);
        }
    }

    /// Whether `peer` is subscribed to `topic`.
    pub fn is_subscribed(&self, peer: PeerId, topic: &str) -> bool {
        self.subscribers
            .get(topic)
            .is_some_and(|set| set.contains(&peer))
    }

    /// The topics `peer` is subscribed to, in no particular order.
    pub fn topics_of(&self, peer: PeerId) -> impl Iterator<Item = &str> {
        self.by_peer
            .get(&peer)
            .into_iter()
            .flatten()
            .map(|topic| &**topic)
    }

    /// How many connections are subscribed to `topic`.
    pub fn count(&self, topic: &str) -> usize {
        self.subscribers.get(topic).map_or(0, BTreeSet::len)
    }

    /// The subscribers of `topic`.
    pub fn subscribers(&self, topic: &str) -> Option<&BTreeSet<PeerId>> {
        self.subscribers.get(topic)
    }

    /// Every topic that has subscribers here.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // the broker's
    pub fn names(&self) -> impl Iterator<Item = &Arc<str>> {
        self.subscribers.keys()
    }

    /// The topics whose number of subscribers changed since the last call.
    pub fn take_counted(&mut self) -> Vec<Arc<str>> {
        self.counted.drain().collect()
    }

    /// Whether a topic's number of subscribers changed since it was last taken.
    pub fn has_counted(&self) -> bool {
        !self.counted.is_empty()
    }

    /// Starts recording changes of interest, for a broker.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // the broker's
    pub fn track_interest(&mut self) {
        self.tracking = true;
    }

    /// The changes of interest since the last call.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // the broker's
    pub fn take_changes(&mut self) -> Vec<Interest> {
        std::mem::take(&mut self.changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(key: usize) -> PeerId {
        PeerId { key, generation: 0 }
    }

    #[test]
    fn names_are_short_and_need_no_escaping() {
        for good in [
            "/",
            "/team-a",
            "a",
            "chat:room_1",
            "user@host",
            "~x.y",
            &"a".repeat(128),
        ] {
            assert_eq!(validate_topic(good), Ok(()), "{good}");
        }
        assert_eq!(validate_topic(""), Err(TopicError::Empty));
        assert_eq!(
            validate_topic(&"a".repeat(129)),
            Err(TopicError::TooLong { len: 129 })
        );
        for (bad, at) in [
            ("a b", 1),
            ("news*", 4),
            ("q?", 1),
            ("[x]", 0),
            ("a\\b", 1),
            ("caf\u{e9}", 3),
            ("a\nb", 1),
            ("50%", 2),
            ("\"x\"", 0),
        ] {
            assert_eq!(
                validate_topic(bad),
                Err(TopicError::InvalidByte {
                    byte: bad.as_bytes()[at],
                    at
                }),
                "{bad:?}"
            );
        }
    }

    fn tracking() -> Topics {
        let mut topics = Topics::default();
        topics.track_interest();
        topics
    }

    #[test]
    fn records_no_interest_without_a_broker() {
        let mut topics = Topics::default();
        topics.subscribe(peer(1), "/a", 8).unwrap();
        topics.remove_peer(peer(1));
        assert!(topics.take_changes().is_empty());
    }

    #[test]
    fn subscribes_once_and_counts_subscribers() {
        let mut topics = tracking();
        assert_eq!(topics.subscribe(peer(1), "/a", 8), Ok(true));
        assert_eq!(topics.subscribe(peer(1), "/a", 8), Ok(false));
        assert_eq!(topics.subscribe(peer(2), "/a", 8), Ok(true));
        assert_eq!(topics.subscribe(peer(2), "/b", 8), Ok(true));
        assert_eq!(topics.count("/a"), 2);
        assert_eq!(topics.count("/b"), 1);
        assert_eq!(topics.count("/c"), 0);
        assert!(topics.is_subscribed(peer(2), "/b"));
        assert!(!topics.is_subscribed(peer(1), "/b"));
        let mut mine: Vec<&str> = topics.topics_of(peer(2)).collect();
        mine.sort_unstable();
        assert_eq!(mine, ["/a", "/b"]);
        assert_eq!(
            topics.take_changes(),
            [Interest::Added("/a".into()), Interest::Added("/b".into())]
        );
    }

    #[test]
    fn records_which_counts_changed() {
        let mut topics = Topics::default();
        topics.subscribe(peer(1), "/a", 8).unwrap();
        topics.subscribe(peer(2), "/a", 8).unwrap();
        topics.subscribe(peer(2), "/b", 8).unwrap();
        let mut changed = topics.take_counted();
        changed.sort_unstable();
        assert_eq!(changed, [Arc::from("/a"), Arc::from("/b")]);
        assert!(topics.take_counted().is_empty());
        topics.subscribe(peer(1), "/a", 8).unwrap(); // already in: no change
        assert!(!topics.has_counted());
        topics.remove_peer(peer(2));
        let mut changed = topics.take_counted();
        changed.sort_unstable();
        assert_eq!(changed, [Arc::from("/a"), Arc::from("/b")]);
    }

    #[test]
    fn a_topic_ends_with_its_last_subscriber() {
        let mut topics = tracking();
        topics.subscribe(peer(1), "/a", 8).unwrap();
        topics.subscribe(peer(2), "/a", 8).unwrap();
        topics.take_changes();
        assert!(topics.unsubscribe(peer(1), "/a"));
        assert!(!topics.unsubscribe(peer(1), "/a"));
        assert!(topics.take_changes().is_empty(), "one subscriber is left");
        assert!(topics.unsubscribe(peer(2), "/a"));
        assert_eq!(topics.take_changes(), [Interest::Removed("/a".into())]);
        assert!(topics.subscribers.is_empty());
        assert!(topics.by_peer.is_empty(), "no per-peer entry left behind");
    }

    #[test]
    fn removing_a_peer_ends_its_subscriptions() {
        let mut topics = tracking();
        topics.subscribe(peer(1), "/a", 8).unwrap();
        topics.subscribe(peer(1), "/b", 8).unwrap();
        topics.subscribe(peer(2), "/b", 8).unwrap();
        topics.take_changes();
        topics.remove_peer(peer(1));
        assert_eq!(topics.take_changes(), [Interest::Removed("/a".into())]);
        assert_eq!(topics.count("/b"), 1);
        assert_eq!(topics.topics_of(peer(1)).count(), 0);
        // A later connection in the same slot is another peer.
        let reused = PeerId {
            key: 2,
            generation: 1,
        };
        assert!(!topics.is_subscribed(reused, "/b"));
    }

    #[test]
    fn a_connection_may_join_only_so_many_topics() {
        let mut topics = Topics::default();
        topics.subscribe(peer(1), "/a", 2).unwrap();
        topics.subscribe(peer(1), "/b", 2).unwrap();
        assert_eq!(
            topics.subscribe(peer(1), "/c", 2),
            Err(TopicError::TooManyTopics { limit: 2 })
        );
        assert_eq!(topics.subscribe(peer(1), "/a", 2), Ok(false), "already in");
        assert_eq!(
            topics.subscribe(peer(2), "/c", 0),
            Err(TopicError::TooManyTopics { limit: 0 })
        );
        assert!(!topics.by_peer.contains_key(&peer(2)));
        assert_eq!(topics.count("/c"), 0);
        assert_eq!(
            topics.subscribe(peer(1), "bad name", 8),
            Err(TopicError::InvalidByte { byte: b' ', at: 3 })
        );
    }
}
