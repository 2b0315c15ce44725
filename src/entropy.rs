//! Where a client's randomness comes from: the `Sec-WebSocket-Key` nonce of its opening request
//! and the masking key of every frame it sends.
//!
//! RFC 6455 §5.3: "The masking key needs to be unpredictable; thus, the masking key MUST be
//! derived from a strong source of entropy". The core draws no random number itself: the caller
//! gives the connection an [`Entropy`], the operating system's in production ([`OsEntropy`],
//! which both shells use), a fixed sequence in tests, so that a client's output is reproducible.

/// A source of random bytes.
//= https://www.rfc-editor.org/rfc/rfc6455#section-5.3
//# The masking key needs to
//# be unpredictable; thus, the masking key MUST be derived from a strong
//# source of entropy, and the masking key for a given frame MUST NOT
//# make it simple for a server/proxy to predict the masking key for a
//# subsequent frame.
pub trait Entropy {
    /// Fills `bytes` with random bytes.
    fn fill(&mut self, bytes: &mut [u8]);
}

impl<E: Entropy + ?Sized> Entropy for Box<E> {
    fn fill(&mut self, bytes: &mut [u8]) {
        (**self).fill(bytes)
    }
}

/// The operating system's random source (through the `getrandom` crate): what both shells give
/// their client connections. Built with the `client` or `server` feature.
#[cfg(any(feature = "client", feature = "server"))]
#[derive(Debug, Clone, Copy, Default)]
pub struct OsEntropy;

#[cfg(any(feature = "client", feature = "server"))]
impl Entropy for OsEntropy {
    fn fill(&mut self, bytes: &mut [u8]) {
        getrandom::fill(bytes).expect("the operating system's random source failed");
    }
}

/// A predictable sequence (each byte one more than the last, from a seed), for tests only: a
/// client using it is reproducible, and its masking keys are anything but unpredictable.
#[derive(Debug, Clone)]
pub struct Sequence(pub u8);

impl Entropy for Sequence {
    fn fill(&mut self, bytes: &mut [u8]) {
        for byte in bytes {
            *byte = self.0;
            self.0 = self.0.wrapping_add(1);
        }
    }
}
