//! RFC 6455 §5.6 and §8.1: incremental UTF-8 validation of text that arrives in pieces.
//!
//! <https://www.rfc-editor.org/rfc/rfc6455#section-8.1>
//!
//! A text message may arrive split across fragments, and one fragment across many reads; a code
//! point may be cut anywhere. The validator runs `std::str::from_utf8` over each piece and carries
//! an incomplete trailing sequence (at most 3 bytes) into the next. Because `from_utf8` rejects a
//! sequence at the first byte that cannot continue it (an overlong lead, a surrogate, a code
//! point above U+10FFFF), invalid text is reported at the piece that contains the bad byte, not at
//! the end of the message: the "fail fast" behaviour Autobahn|Testsuite checks in case 6.4.

/// Invalid UTF-8 was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

/// Validates a byte stream as UTF-8 piece by piece.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Utf8Validator {
    /// The bytes of a code point cut off at the end of the last piece.
    carry: [u8; 4],
    carry_len: u8,
}

/// The length of the UTF-8 sequence that starts with `lead`, for a lead byte `from_utf8` accepted
/// as the start of a valid but incomplete sequence.
fn sequence_len(lead: u8) -> usize {
    match lead {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

impl Utf8Validator {
    /// A validator at the start of a text.
    pub fn new() -> Self {
        Self::default()
    }

    /// Validates the next piece of the text. Fails at the first byte that no continuation could
    /// make valid; an incomplete code point at the end of `piece` is carried to the next call.
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.6
    //# Note that a
    //# particular text frame might include a partial UTF-8 sequence;
    //# however, the whole message MUST contain valid UTF-8.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-8.1
    //# When an endpoint is to interpret a byte stream as UTF-8 but finds
    //# that the byte stream is not, in fact, a valid UTF-8 stream, that
    //# endpoint MUST _Fail the WebSocket Connection_.
    pub fn feed(&mut self, mut piece: &[u8]) -> Result<(), InvalidUtf8> {
        if self.carry_len > 0 {
            let have = self.carry_len as usize;
            let need = sequence_len(self.carry[0]) - have;
            let take = need.min(piece.len());
            self.carry[have..have + take].copy_from_slice(&piece[..take]);
            let filled = have + take;
            match std::str::from_utf8(&self.carry[..filled]) {
                Ok(_) => self.carry_len = 0,
                Err(e) if e.error_len().is_some() => return Err(InvalidUtf8),
                Err(_) => {
                    // Still incomplete: the piece was shorter than the rest of the code point.
                    self.carry_len = filled as u8;
                    return Ok(());
                }
            }
            piece = &piece[take..];
        }
        match std::str::from_utf8(piece) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(InvalidUtf8),
            Err(e) => {
                let tail = &piece[e.valid_up_to()..];
                self.carry[..tail.len()].copy_from_slice(tail);
                self.carry_len = tail.len() as u8;
                Ok(())
            }
        }
    }

    /// Ends the text: fails if it stops in the middle of a code point. Resets the validator.
    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.6
    //# Note that a
    //# particular text frame might include a partial UTF-8 sequence;
    //# however, the whole message MUST contain valid UTF-8.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let complete = self.carry_len == 0;
        *self = Self::default();
        if complete { Ok(()) } else { Err(InvalidUtf8) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` split at `cuts` and reports at which piece it failed (or `Ok` at the end).
    fn validate_in_pieces(input: &[u8], cuts: &[usize]) -> Result<(), usize> {
        let mut v = Utf8Validator::new();
        let mut start = 0;
        for (i, &cut) in cuts.iter().chain(std::iter::once(&input.len())).enumerate() {
            v.feed(&input[start..cut]).map_err(|_| i)?;
            start = cut;
        }
        v.finish().map_err(|_| usize::MAX)
    }

    /// Autobahn-style samples: valid text, and each kind of invalid sequence.
    const SAMPLES: &[&[u8]] = &[
        b"",
        b"Hello-\xC2\xB5@\xC3\x9F\xC3\xB6\xC3\xA4\xC3\xBC\xC3\xA0\xC3\xA1-UTF-8!!",
        "κόσμε".as_bytes(),
        // Autobahn's "κόσμε": its ό is U+1F79, three bytes followed by a two-byte lead.
        b"\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5",
        b"\xF0\x90\x80\x80", // U+10000
        b"\xF4\x8F\xBF\xBF", // U+10FFFF, the highest code point
        b"\xEF\xBF\xBF",     // U+FFFF
        b"\xF4\x90\x80\x80", // above U+10FFFF
        b"\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80\x65\x64\x69\x74\x65\x64",
        b"\xED\xA0\x80",         // a surrogate
        b"\xED\xBF\xBF",         // a surrogate
        b"\xC0\xAF",             // overlong '/'
        b"\xE0\x80\xAF",         // overlong '/'
        b"\xF0\x80\x80\xAF",     // overlong '/'
        b"\xF8\x88\x80\x80\x80", // five-byte form
        b"\x80",                 // lone continuation
        b"\xC2",                 // truncated at the end
        b"\xE2\x82",             // truncated at the end
        b"\xF0\x9F\x98",         // truncated at the end
        b"a\xC2b",               // lead followed by ASCII
        b"\xFE\xFF",
    ];

    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.6
    //= type=test
    //# Note that a
    //# particular text frame might include a partial UTF-8 sequence;
    //# however, the whole message MUST contain valid UTF-8.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-8.1
    //= type=test
    //# When an endpoint is to interpret a byte stream as UTF-8 but finds
    //# that the byte stream is not, in fact, a valid UTF-8 stream, that
    //# endpoint MUST _Fail the WebSocket Connection_.
    #[test]
    fn agrees_with_std_at_every_split_point() {
        for &sample in SAMPLES {
            let expected = std::str::from_utf8(sample).is_ok();
            for a in 0..=sample.len() {
                for b in a..=sample.len() {
                    let got = validate_in_pieces(sample, &[a, b]).is_ok();
                    assert_eq!(got, expected, "{sample:x?} cut at {a},{b}");
                }
            }
        }
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.6
    //= type=test
    //# Note that a
    //# particular text frame might include a partial UTF-8 sequence;
    //# however, the whole message MUST contain valid UTF-8.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-8.1
    //= type=test
    //# When an endpoint is to interpret a byte stream as UTF-8 but finds
    //# that the byte stream is not, in fact, a valid UTF-8 stream, that
    //# endpoint MUST _Fail the WebSocket Connection_.
    #[test]
    fn agrees_with_std_byte_by_byte() {
        for &sample in SAMPLES {
            let cuts: Vec<usize> = (1..sample.len()).collect();
            assert_eq!(
                validate_in_pieces(sample, &cuts).is_ok(),
                std::str::from_utf8(sample).is_ok()
            );
        }
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-8.1
    //= type=test
    //# When an endpoint is to interpret a byte stream as UTF-8 but finds
    //# that the byte stream is not, in fact, a valid UTF-8 stream, that
    //# endpoint MUST _Fail the WebSocket Connection_.
    #[test]
    fn fails_at_the_piece_holding_the_first_bad_byte() {
        // "κόσμε" then a surrogate lead pair, then more text: fed byte by byte, the failure comes
        // at the second byte of the surrogate (index 12), not at the end.
        let input = b"\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80\x65\x64";
        let cuts: Vec<usize> = (1..input.len()).collect();
        assert_eq!(validate_in_pieces(input, &cuts), Err(12));
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-8.1
    //= type=test
    //# When an endpoint is to interpret a byte stream as UTF-8 but finds
    //# that the byte stream is not, in fact, a valid UTF-8 stream, that
    //# endpoint MUST _Fail the WebSocket Connection_.
    #[test]
    fn above_max_code_point_fails_at_its_second_byte() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xF4"), Ok(()));
        assert_eq!(v.feed(b"\x90"), Err(InvalidUtf8));
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-5.6
    //= type=test
    //# Note that a
    //# particular text frame might include a partial UTF-8 sequence;
    //# however, the whole message MUST contain valid UTF-8.
    #[test]
    fn completes_a_cut_three_byte_code_point_with_only_its_own_bytes() {
        // "€µ": the carried lead E2 needs two more bytes; taking a third would swallow the lead of
        // "µ" and leave it looking unfinished.
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xE2"), Ok(()));
        assert_eq!(v.feed(b"\x82\xAC\xC2\xB5"), Ok(()));
        assert_eq!(v.finish(), Ok(()));
    }

    #[test]
    fn finish_rejects_truncated_code_point() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xE2\x82"), Ok(()));
        assert_eq!(v.finish(), Err(InvalidUtf8));
        assert_eq!(v.finish(), Ok(()), "finish resets");
    }
}
