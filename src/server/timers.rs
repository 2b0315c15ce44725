//! The deadline of every connection in one heap. A connection has at most one live entry (the
//! one its peer records as `timer_at`); entries that no longer match are stale and skipped.
//!
//! Times are milliseconds since the server started (plus one, so that 0 can mean "none"),
//! rounded up so that a timer never fires before its connection's deadline.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// Milliseconds on the server's clock.
pub(crate) type Millis = u64;

/// The entries (24 bytes each) the heap keeps room for however few it holds.
const KEPT_CAPACITY: usize = 1024;

/// The deadline heap and the server's clock.
#[derive(Debug)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Millis, usize, u32)>>,
    started: Instant,
}

impl Timers {
    pub fn new(started: Instant) -> Self {
        Timers {
            heap: BinaryHeap::new(),
            started,
        }
    }

    /// `at` on the server's clock, rounded up to the next millisecond.
    pub fn millis(&self, at: Instant) -> Millis {
        let since = at.saturating_duration_since(self.started);
        since.as_millis() as Millis + u64::from(!since.subsec_nanos().is_multiple_of(1_000_000)) + 1
    }

    /// The instant of `at` on the server's clock.
    pub fn instant(&self, at: Millis) -> Instant {
        self.started + Duration::from_millis(at.saturating_sub(1))
    }

    /// Adds an entry for the connection in slot `key` of `generation`.
    pub fn push(&mut self, at: Millis, key: usize, generation: u32) {
        self.heap.push(Reverse((at, key, generation)));
    }

    /// The earliest entry, live or stale.
    pub fn peek(&self) -> Option<(Millis, usize, u32)> {
        self.heap.peek().map(|Reverse(entry)| *entry)
    }

    /// Removes the earliest entry. Once a burst of entries has gone, gives back most of the
    /// memory it grew the heap to (halving the capacity when a quarter of it is in use, so that
    /// a heap that grows and shrinks by a little reallocates rarely).
    pub fn pop(&mut self) {
        self.heap.pop();
        let capacity = self.heap.capacity();
        if capacity > KEPT_CAPACITY && self.heap.len() <= capacity / 4 {
            self.heap.shrink_to((capacity / 2).max(KEPT_CAPACITY));
        }
    }

    /// The entries the heap has room for.
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.heap.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_up_so_a_timer_never_fires_early() {
        let start = Instant::now();
        let timers = Timers::new(start);
        assert_eq!(timers.millis(start), 1);
        assert_eq!(timers.millis(start + Duration::from_micros(1)), 2);
        assert_eq!(timers.millis(start + Duration::from_millis(5)), 6);
        assert!(
            timers.instant(timers.millis(start + Duration::from_micros(1500)))
                >= start + Duration::from_micros(1500)
        );
    }

    #[test]
    fn pops_in_deadline_order() {
        let mut timers = Timers::new(Instant::now());
        timers.push(30, 1, 0);
        timers.push(10, 2, 0);
        timers.push(20, 3, 0);
        assert_eq!(timers.peek(), Some((10, 2, 0)));
        timers.pop();
        assert_eq!(timers.peek(), Some((20, 3, 0)));
    }

    #[test]
    fn gives_back_the_room_of_a_burst() {
        let mut timers = Timers::new(Instant::now());
        for key in 0..100_000 {
            timers.push(key as Millis + 1, key, 0);
        }
        assert!(timers.capacity() >= 100_000);
        while timers.peek().is_some() {
            timers.pop();
        }
        assert_eq!(
            timers.capacity(),
            KEPT_CAPACITY,
            "the burst's room was kept"
        );
    }
}
