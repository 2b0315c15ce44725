//! Whole messages taken from one input in one call: the receive side's fast path for a peer that
//! pipelines many small messages, which would otherwise cost a call down the connection's layers
//! (and a result back up) per frame.
//!
//! [`Connection::receive_batch`](crate::connection::Connection::receive_batch) takes, from the
//! front of its input, the complete frames that each carry one whole uncompressed message, and
//! stops before the first frame that is anything else: a control frame, a fragment, a compressed
//! message, a frame not yet complete, or one that breaks a rule. That frame is left as it came,
//! for [`Connection::receive`](crate::connection::Connection::receive), which handles it as
//! usual. So a batch has no side effect but the unmasking of the frames it took: a Ping's Pong
//! is queued, and a failure's Close, only after the application had the messages before them,
//! and the order of what is sent back is the order of what came.

use crate::message::{Message, MessageKind};
use std::borrow::Cow;

/// The most messages one batch holds: input beyond them waits for the next call. (Each costs
/// twelve bytes of the batch, which its owner keeps from one call to the next.)
pub const BATCH_MAX: usize = 32;

/// One message of a batch: its kind, and where its payload is in the input.
#[derive(Debug, Clone, Copy)]
struct Taken {
    kind: MessageKind,
    start: u32,
    end: u32,
}

const NONE_TAKEN: Taken = Taken {
    kind: MessageKind::Binary,
    start: 0,
    end: 0,
};

/// The whole messages taken from the front of one input (see the [module](self) notes). Their
/// payloads stay where they arrived, unmasked, and text is valid UTF-8: the batch holds where
/// they are, and [`message`](Self::message) reads them from that same input.
///
/// The caller owns the batch and hands it to every call, which empties it first: so a call that
/// takes nothing (mid-message, or a control frame first) costs no more than its checks, and a
/// batch is not built and copied on every call.
#[derive(Debug)]
pub struct Batch {
    consumed: usize,
    len: usize,
    taken: [Taken; BATCH_MAX],
}

impl Default for Batch {
    fn default() -> Self {
        Self::new()
    }
}

impl Batch {
    /// A batch that took nothing (yet).
    pub fn new() -> Self {
        Batch {
            consumed: 0,
            len: 0,
            taken: [NONE_TAKEN; BATCH_MAX],
        }
    }

    /// Whether another message fits.
    #[inline(always)]
    pub(crate) fn is_full(&self) -> bool {
        self.len == BATCH_MAX
    }

    /// Adds the message of `kind` whose payload is `payload` in the input, and counts the input
    /// up to the payload's end (the end of its frame) as consumed. The input's length must fit
    /// in 32 bits.
    #[inline(always)]
    pub(crate) fn push(&mut self, kind: MessageKind, payload: std::ops::Range<usize>) {
        debug_assert!(!self.is_full() && payload.end <= u32::MAX as usize);
        self.taken[self.len] = Taken {
            kind,
            start: payload.start as u32,
            end: payload.end as u32,
        };
        self.len += 1;
        self.consumed = payload.end;
    }

    /// Empties it, for the next call to fill.
    #[inline(always)]
    pub(crate) fn clear(&mut self) {
        self.len = 0;
        self.consumed = 0;
    }

    /// How many bytes from the front of the input the batch's frames used. Give the rest to
    /// the next call.
    pub fn consumed(&self) -> usize {
        self.consumed
    }

    /// How many messages it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it took nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Its `index`th message, read from `input`: the input the batch was taken from.
    ///
    /// # Panics
    /// If `index` is not below [`len`](Self::len), or `input` is shorter than what the batch
    /// took.
    #[inline(always)]
    pub fn message<'a>(&self, input: &'a [u8], index: usize) -> Message<'a> {
        let taken = self.taken[..self.len][index];
        let payload = &input[taken.start as usize..taken.end as usize];
        Message::new(taken.kind, Cow::Borrowed(payload))
    }
}
