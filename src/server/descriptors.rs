//! File descriptors: the process's limit, raised to the most it may have; the connection cap
//! that fits under it; and one spare descriptor, kept so that a client can still be answered
//! (503) when the process runs out (libuv and nginx keep one for the same reason).

use rustix::process::{Resource, getrlimit, setrlimit};
use std::fs::File;
use std::io;

/// Descriptors kept free for the process's own use (log output, the signal thread, a file an
/// application opens) beyond those open when the server starts.
pub const RESERVED_DESCRIPTORS: u64 = 16;

/// Raises the soft limit on open descriptors to the hard limit, and returns the limit in force
/// (`None` when there is none).
pub fn raise_limit() -> Option<u64> {
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => return limit.maximum,
            Err(e) => log::warn!("cannot raise the open-file limit: {e}"),
        }
    }
    limit.current
}

/// How many descriptors the process has open now.
pub fn open_now() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}

/// The most connections that fit under `limit` descriptors when `open` are in use already, and
/// [`RESERVED_DESCRIPTORS`] are kept free.
pub fn connection_cap(wanted: usize, limit: Option<u64>, open: Option<u64>) -> usize {
    match (limit, open) {
        (Some(limit), Some(open)) => {
            let room = limit.saturating_sub(open + RESERVED_DESCRIPTORS);
            wanted.min(room.min(usize::MAX as u64) as usize)
        }
        _ => wanted,
    }
}

/// One descriptor held in reserve.
#[derive(Debug)]
pub struct Spare(Option<File>);

impl Spare {
    /// Takes a descriptor now, while there are some.
    pub fn new() -> Spare {
        Spare(open_spare().ok())
    }

    /// Whether a descriptor is held.
    pub fn is_held(&self) -> bool {
        self.0.is_some()
    }

    /// Gives the descriptor up, so that one `accept` can succeed.
    pub fn release(&mut self) {
        self.0 = None;
    }

    /// Takes a descriptor again (after the accepted socket was closed).
    pub fn restore(&mut self) {
        if self.0.is_none() {
            self.0 = open_spare().ok();
        }
    }
}

fn open_spare() -> io::Result<File> {
    File::open("/dev/null")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_fits_under_the_limit() {
        assert_eq!(connection_cap(10_000, Some(1024), Some(8)), 1024 - 8 - 16);
        assert_eq!(connection_cap(100, Some(1024), Some(8)), 100);
        assert_eq!(connection_cap(100, Some(10), Some(8)), 0);
        assert_eq!(connection_cap(100, None, Some(8)), 100);
    }

    #[test]
    fn the_spare_is_released_and_restored() {
        let mut spare = Spare::new();
        assert!(spare.is_held());
        spare.release();
        assert!(!spare.is_held());
        spare.restore();
        assert!(spare.is_held());
    }
}
