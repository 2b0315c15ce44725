//! Every resource limit the crate enforces, named, documented and with its default in one place.
//!
//! The RFC leaves all of these open; each is our choice, made so that one peer cannot make the
//! process spend unbounded memory or CPU. The README's "Limits and defaults" table mirrors this file.

/// Limits applied by the protocol core to one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest payload accepted in a single frame, in bytes. A frame header that declares more is
    /// failed with close code 1009 before any of its payload is read.
    pub max_frame_size: u64,
    /// Largest message accepted, in bytes, summed over all of its fragments. Exceeding it fails
    /// the connection with 1009 as soon as a frame header makes the total known.
    pub max_message_size: u64,
    /// Most frames one message may be split into. Exceeding it fails the connection with 1008,
    /// so that a flood of tiny (or empty) continuation frames cannot pin the CPU.
    pub max_fragments: u32,
    /// Largest HTTP upgrade request head, in bytes; a longer head is answered with 431.
    pub max_head_size: usize,
    /// Most header fields in the upgrade request; more is answered with 431.
    pub max_headers: usize,
}

/// Default for [`Limits::max_frame_size`]: 16 MiB. Exactly 16 MiB is allowed, because
/// Autobahn|Testsuite's 9.x cases send 16 MiB messages.
pub const DEFAULT_MAX_FRAME_SIZE: u64 = 16 * 1024 * 1024;
/// Default for [`Limits::max_message_size`]: 16 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 16 * 1024 * 1024;
/// Default for [`Limits::max_fragments`]: 131 072 frames per message. Autobahn|Testsuite's cases
/// 9.3.1 and 9.4.1 send a 4 MiB message in 64-byte fragments: 65 536 full ones and an empty final
/// one. A fragment costs the receiver no memory (it streams into the one message buffer), so this
/// cap only bounds the per-frame work one message can demand.
pub const DEFAULT_MAX_FRAGMENTS: u32 = 128 * 1024;
/// Default for [`Limits::max_head_size`]: 8 KiB.
pub const DEFAULT_MAX_HEAD_SIZE: usize = 8 * 1024;
/// Default for [`Limits::max_headers`]: 64 header fields.
pub const DEFAULT_MAX_HEADERS: usize = 64;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_fragments: DEFAULT_MAX_FRAGMENTS,
            max_head_size: DEFAULT_MAX_HEAD_SIZE,
            max_headers: DEFAULT_MAX_HEADERS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_values() {
        // The README's "Limits and defaults" table promises these. Autobahn|Testsuite's 9.x cases
        // need a 16 MiB frame and message; 9.3.1 and 9.4.1 need 65 537 fragments.
        assert_eq!(
            Limits::default(),
            Limits {
                max_frame_size: 16 << 20,
                max_message_size: 16 << 20,
                max_fragments: 131_072,
                max_head_size: 8192,
                max_headers: 64,
            }
        );
    }
}
