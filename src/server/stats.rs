//! The counters the server keeps, and the one writer that prints them: as the Prometheus text
//! exposition format (version 0.0.4) for `GET /metrics`, and as `name value` lines for the log
//! at shutdown. Both come from one table ([`Stats::families`]), so a counter added there appears
//! in both under the same name.
//!
//! Names follow Prometheus' conventions: a `rfc6455_` prefix, base units (`_bytes`), `_total`
//! for counters. Labels are bounded: an HTTP status or a close code, never anything about a
//! client.

use std::fmt::{self, Write};

/// Counters the server keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// WebSocket connections open now (a gauge): from the upgrade until the connection is gone.
    pub open: u64,
    /// TCP connections accepted.
    pub accepted: u64,
    /// Connections refused at accept because `max_connections` was reached.
    pub refused_over_capacity: u64,
    /// Upgrades completed.
    pub opened: u64,
    /// Plain HTTP requests answered.
    pub http_responses: u64,
    /// Connections dropped, for any reason.
    pub closed: u64,
    /// Upgrade requests refused, by HTTP status (by the rules, or by the application).
    pub handshake_rejections: Vec<(u16, u64)>,
    /// Messages received.
    pub messages_in: u64,
    /// Messages queued for sending (a broadcast counts once per recipient).
    pub messages_out: u64,
    /// Bytes read from sockets.
    pub bytes_in: u64,
    /// Bytes written to sockets.
    pub bytes_out: u64,
    /// Close frames sent, by code (1005 for a close without a code).
    pub close_codes_sent: Vec<(u16, u64)>,
    /// Close frames received, by code (1005 for a close without a code).
    pub close_codes_received: Vec<(u16, u64)>,
    /// Connections disconnected as slow consumers: their queued output stayed over the
    /// high-water mark for the slow-consumer timeout, or passed the hard limit.
    pub slow_consumer_disconnects: u64,
    /// Connections ended by a deadline (handshake, keepalive, close).
    pub timeouts: u64,
    /// Connections closed because the server's memory budget was passed.
    pub memory_budget_closes: u64,
    /// Bytes held for clients, counted against the memory budget (a gauge, as of the end of the
    /// last turn of the loop).
    pub memory_held: u64,
    /// The Redis broker's counters, when there is one.
    #[cfg(feature = "redis")]
    pub redis: Option<super::RedisStats>,
    /// TLS handshakes completed.
    pub tls_handshakes: u64,
    /// TLS handshakes that failed: rustls refused what the client sent (a plain-text request
    /// on the TLS port, no common version or cipher suite, a broken record).
    pub tls_handshake_failures: u64,
    /// TLS handshakes not complete at the handshake deadline (also counted in `timeouts`): a
    /// client that stalled, or a plain client that sent nothing.
    pub tls_handshake_timeouts: u64,
}

/// Adds one to the count for `key`.
pub(crate) fn bump(counts: &mut Vec<(u16, u64)>, key: u16) {
    match counts.iter_mut().find(|(k, _)| *k == key) {
        Some((_, n)) => *n += 1,
        None => counts.push((key, 1)),
    }
}

/// A Prometheus metric type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

/// A family's samples: one value, or one per label value.
#[derive(Debug, Clone, Copy)]
enum Samples<'a> {
    One(u64),
    By {
        label: &'static str,
        counts: &'a [(u16, u64)],
    },
}

/// One metric family: its name (without the `rfc6455_` prefix), help text, type and samples.
#[derive(Debug, Clone, Copy)]
struct Family<'a> {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    samples: Samples<'a>,
}

/// The Content-Type of the Prometheus text exposition format that
/// [`Stats::write_exposition`] writes.
pub const EXPOSITION_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

impl Stats {
    /// Every counter, once: the table both writers print.
    fn families(&self) -> [Family<'_>; 20] {
        use Kind::{Counter, Gauge};
        use Samples::{By, One};
        let family = |name, help, kind, samples| Family {
            name,
            help,
            kind,
            samples,
        };
        [
            family(
                "connections_open",
                "WebSocket connections open now (from the upgrade until the connection is gone).",
                Gauge,
                One(self.open),
            ),
            family(
                "connections_accepted_total",
                "TCP connections accepted.",
                Counter,
                One(self.accepted),
            ),
            family(
                "connections_refused_over_capacity_total",
                "TCP connections answered 503 because the connection cap was reached.",
                Counter,
                One(self.refused_over_capacity),
            ),
            family(
                "connections_closed_total",
                "TCP connections closed, for any reason.",
                Counter,
                One(self.closed),
            ),
            family(
                "upgrades_total",
                "WebSocket upgrades completed (101 sent).",
                Counter,
                One(self.opened),
            ),
            family(
                "upgrades_refused_total",
                "WebSocket upgrade requests refused, by HTTP status.",
                Counter,
                By {
                    label: "status",
                    counts: &self.handshake_rejections,
                },
            ),
            family(
                "http_responses_total",
                "Plain HTTP requests answered.",
                Counter,
                One(self.http_responses),
            ),
            family(
                "messages_received_total",
                "WebSocket messages received.",
                Counter,
                One(self.messages_in),
            ),
            family(
                "messages_sent_total",
                "WebSocket messages queued for sending (a broadcast counts once per recipient).",
                Counter,
                One(self.messages_out),
            ),
            family(
                "received_bytes_total",
                "Bytes read from sockets.",
                Counter,
                One(self.bytes_in),
            ),
            family(
                "sent_bytes_total",
                "Bytes written to sockets.",
                Counter,
                One(self.bytes_out),
            ),
            family(
                "close_frames_sent_total",
                "Close frames sent, by close code (1005 for a close without a code).",
                Counter,
                By {
                    label: "code",
                    counts: &self.close_codes_sent,
                },
            ),
            family(
                "close_frames_received_total",
                "Close frames received, by close code (1005 for a close without a code).",
                Counter,
                By {
                    label: "code",
                    counts: &self.close_codes_received,
                },
            ),
            family(
                "slow_consumer_disconnects_total",
                "Connections disconnected as slow consumers (queued output over the limits).",
                Counter,
                One(self.slow_consumer_disconnects),
            ),
            family(
                "timeouts_total",
                "Connections ended by a deadline (handshake, keepalive, close).",
                Counter,
                One(self.timeouts),
            ),
            family(
                "memory_held_bytes",
                "Bytes held for clients, counted against the memory budget.",
                Gauge,
                One(self.memory_held),
            ),
            family(
                "memory_budget_closes_total",
                "Connections closed because the server's memory budget was passed.",
                Counter,
                One(self.memory_budget_closes),
            ),
            family(
                "tls_handshakes_total",
                "TLS handshakes completed.",
                Counter,
                One(self.tls_handshakes),
            ),
            family(
                "tls_handshake_failures_total",
                "TLS handshakes that failed (what the client sent was not an acceptable TLS handshake).",
                Counter,
                One(self.tls_handshake_failures),
            ),
            family(
                "tls_handshake_timeouts_total",
                "TLS handshakes not complete at the handshake deadline (also in timeouts_total).",
                Counter,
                One(self.tls_handshake_timeouts),
            ),
        ]
    }

    /// The one writer: every sample as a `name value` line (labels sorted by value), each
    /// family preceded by its `# HELP` and `# TYPE` lines when `metadata` is set.
    fn write(&self, out: &mut impl Write, metadata: bool) -> fmt::Result {
        #[cfg(feature = "redis")]
        let redis = self.redis.as_ref().map(super::redis::families);
        #[cfg(feature = "redis")]
        let redis = redis.iter().flatten().map(|&(name, help, gauge, value)| {
            let kind = if gauge { Kind::Gauge } else { Kind::Counter };
            Family {
                name,
                help,
                kind,
                samples: Samples::One(value),
            }
        });
        #[cfg(not(feature = "redis"))]
        let redis = std::iter::empty();
        for family in self.families().into_iter().chain(redis) {
            let name = family.name;
            if metadata {
                let kind = match family.kind {
                    Kind::Counter => "counter",
                    Kind::Gauge => "gauge",
                };
                writeln!(out, "# HELP rfc6455_{name} {}", family.help)?;
                writeln!(out, "# TYPE rfc6455_{name} {kind}")?;
            }
            match family.samples {
                Samples::One(value) => writeln!(out, "rfc6455_{name} {value}")?,
                Samples::By { label, counts } => {
                    let mut counts = counts.to_vec();
                    counts.sort_unstable();
                    for (key, value) in counts {
                        writeln!(out, "rfc6455_{name}{{{label}=\"{key}\"}} {value}")?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Appends the counters in the Prometheus text exposition format, version 0.0.4 (served
    /// with [`EXPOSITION_CONTENT_TYPE`]).
    pub fn write_exposition(&self, out: &mut String) {
        self.write(out, true)
            .expect("writing to a String cannot fail");
    }
}

impl fmt::Display for Stats {
    /// One `name value` line per sample, with the names `/metrics` uses; counts by code or
    /// status carry their label.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_one_line_per_counter_and_code() {
        let mut stats = Stats {
            accepted: 3,
            ..Stats::default()
        };
        bump(&mut stats.close_codes_sent, 1001);
        bump(&mut stats.close_codes_sent, 1000);
        bump(&mut stats.close_codes_sent, 1001);
        let text = stats.to_string();
        assert!(text.contains("rfc6455_connections_accepted_total 3\n"));
        assert!(text.contains(
            "rfc6455_close_frames_sent_total{code=\"1000\"} 1\nrfc6455_close_frames_sent_total{code=\"1001\"} 2\n"
        ));
        assert!(!text.contains('#'));
    }

    /// The exposition format's grammar, as Prometheus' text parser reads it: `# HELP` and
    /// `# TYPE` once per family, before its samples; every sample of a declared family; names
    /// and label names matching `[a-zA-Z_:][a-zA-Z0-9_:]*`; counters ending in `_total`; the
    /// body ending with a newline.
    #[test]
    fn the_exposition_declares_every_family_before_its_samples() {
        let mut stats = Stats {
            open: 2,
            bytes_in: 1234,
            ..Stats::default()
        };
        bump(&mut stats.handshake_rejections, 403);
        bump(&mut stats.close_codes_received, 1000);
        let mut text = String::new();
        stats.write_exposition(&mut text);
        assert!(text.ends_with('\n'));
        let valid_name = |name: &str| {
            name.bytes().enumerate().all(|(i, b)| {
                b.is_ascii_alphabetic() || b == b'_' || b == b':' || (i > 0 && b.is_ascii_digit())
            })
        };
        let mut declared: Vec<(String, String)> = Vec::new();
        let mut helped: Vec<String> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap();
                assert!(!help.is_empty());
                assert!(!helped.contains(&name.to_owned()), "{name} helped twice");
                helped.push(name.to_owned());
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(helped.last().is_some_and(|h| h == name), "{line}");
                assert!(valid_name(name), "{name}");
                assert!(name.starts_with("rfc6455_"), "{name}");
                match kind {
                    "counter" => assert!(name.ends_with("_total"), "{name}"),
                    "gauge" => assert!(!name.ends_with("_total"), "{name}"),
                    _ => panic!("{line}"),
                }
                declared.push((name.to_owned(), kind.to_owned()));
            } else {
                let (series, value) = line.rsplit_once(' ').unwrap();
                value.parse::<u64>().unwrap();
                let name = series.split('{').next().unwrap();
                assert_eq!(
                    declared.last().map(|(n, _)| n.as_str()),
                    Some(name),
                    "{line}"
                );
                let labels = &series[name.len()..];
                if !labels.is_empty() {
                    let label = labels.trim_start_matches('{').trim_end_matches('}');
                    let (label, value) = label.split_once('=').unwrap();
                    assert!(["status", "code"].contains(&label), "{line}");
                    value.trim_matches('"').parse::<u16>().unwrap();
                }
            }
        }
        assert_eq!(declared.len(), stats.families().len());
        assert!(
            text.contains("# TYPE rfc6455_connections_open gauge\nrfc6455_connections_open 2\n")
        );
        assert!(text.contains("rfc6455_received_bytes_total 1234\n"));
        assert!(text.contains("rfc6455_upgrades_refused_total{status=\"403\"} 1\n"));
        assert!(text.contains("rfc6455_close_frames_received_total{code=\"1000\"} 1\n"));
        // The log's lines are the exposition's samples, without the metadata.
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(stats.to_string().lines().collect::<Vec<_>>(), samples);
    }

    /// With a Redis broker, its twelve families follow the server's, each with its name, type
    /// and value (the README's table of metrics names them).
    #[cfg(feature = "redis")]
    #[test]
    fn the_exposition_has_the_redis_families_when_there_is_a_broker() {
        let stats = Stats::default();
        let mut text = String::new();
        stats.write_exposition(&mut text);
        assert!(!text.contains("redis"), "no broker, no Redis families");
        let redis = crate::server::RedisStats {
            subscriber_up: 1,
            publisher_up: 0,
            connects: 3,
            link_failures: 4,
            published: 5,
            received: 6,
            local_only: 7,
            dropped: 8,
            unconfirmed: 9,
            errors: 10,
            channels: 11,
            queued_bytes: 12,
        };
        let stats = Stats {
            redis: Some(redis),
            ..Stats::default()
        };
        let mut text = String::new();
        stats.write_exposition(&mut text);
        let families = [
            ("redis_subscriber_up", "gauge", 1),
            ("redis_publisher_up", "gauge", 0),
            ("redis_connects_total", "counter", 3),
            ("redis_link_failures_total", "counter", 4),
            ("redis_published_total", "counter", 5),
            ("redis_received_total", "counter", 6),
            ("redis_local_only_total", "counter", 7),
            ("redis_dropped_total", "counter", 8),
            ("redis_unconfirmed_total", "counter", 9),
            ("redis_errors_total", "counter", 10),
            ("redis_channels", "gauge", 11),
            ("redis_queued_bytes", "gauge", 12),
        ];
        for (name, kind, value) in families {
            let family = format!("# TYPE rfc6455_{name} {kind}\nrfc6455_{name} {value}\n");
            assert!(text.contains(&family), "{family}in\n{text}");
        }
        assert_eq!(
            text.matches("# HELP rfc6455_redis_").count(),
            families.len()
        );
    }
}
