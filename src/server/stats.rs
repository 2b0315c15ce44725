//! The counters the server keeps, logged at shutdown as `name value` lines.

use std::fmt;

/// Counters the server keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
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
    /// Broadcast recipients disconnected for exceeding the outbound high-water mark.
    pub slow_consumer_disconnects: u64,
    /// Connections ended by a deadline (handshake, keepalive, close).
    pub timeouts: u64,
    /// Connections closed because the server's memory budget was passed.
    pub memory_budget_closes: u64,
}

/// Adds one to the count for `key`.
pub(crate) fn bump(counts: &mut Vec<(u16, u64)>, key: u16) {
    match counts.iter_mut().find(|(k, _)| *k == key) {
        Some((_, n)) => *n += 1,
        None => counts.push((key, 1)),
    }
}

impl fmt::Display for Stats {
    /// One `name value` line per counter, with a label for the counts by code or status.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in [
            ("connections_accepted_total", self.accepted),
            (
                "connections_refused_over_capacity_total",
                self.refused_over_capacity,
            ),
            ("upgrades_total", self.opened),
            ("http_responses_total", self.http_responses),
            ("connections_closed_total", self.closed),
            ("messages_received_total", self.messages_in),
            ("messages_sent_total", self.messages_out),
            ("received_bytes_total", self.bytes_in),
            ("sent_bytes_total", self.bytes_out),
            (
                "slow_consumer_disconnects_total",
                self.slow_consumer_disconnects,
            ),
            ("timeouts_total", self.timeouts),
            ("memory_budget_closes_total", self.memory_budget_closes),
        ] {
            writeln!(f, "rfc6455_{name} {value}")?;
        }
        for (name, label, counts) in [
            (
                "upgrades_refused_total",
                "status",
                &self.handshake_rejections,
            ),
            ("close_frames_sent_total", "code", &self.close_codes_sent),
            (
                "close_frames_received_total",
                "code",
                &self.close_codes_received,
            ),
        ] {
            let mut counts = counts.clone();
            counts.sort_unstable();
            for (key, value) in counts {
                writeln!(f, "rfc6455_{name}{{{label}=\"{key}\"}} {value}")?;
            }
        }
        Ok(())
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
    }
}
