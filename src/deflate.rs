//! RFC 7692 permessage-deflate: negotiating the extension (§5, §7.1) and compressing and
//! decompressing message payloads (§7.2).
//!
//! <https://www.rfc-editor.org/rfc/rfc7692>
//!
//! Our choices, made for bounded memory:
//! - The server always answers with `server_no_context_takeover` (allowed by §7.1.1.1): every
//!   message we send is compressed on its own, with one compressor per window size shared by the
//!   whole thread. A connection keeps no compressor, and a broadcast is compressed once for every
//!   recipient that negotiated the same window size.
//! - By default the server also answers with `client_no_context_takeover` (allowed by
//!   §7.1.1.2), so incoming messages are decompressed with one shared inflater too and an idle
//!   connection keeps no compression state at all. With
//!   [`DeflateConfig::client_context_takeover`] set, a client that did not offer
//!   `client_no_context_takeover` may keep its context: its connection then allocates an inflater
//!   (about 40 KiB with a 32 KiB window) when its first compressed message arrives, and keeps it.
//! - A compressed message is inflated as its frames arrive, a bounded amount of output at a time
//!   ([`Inflation`]), into a buffer capped by the message size limit: a small message that
//!   inflates past the limit fails with 1009 before the memory is spent, and one that inflates to
//!   megabytes cannot hold the thread.

use crate::client_handshake::ResponseError;
use crate::error::{HandshakeError, ProtocolError};

const MALFORMED: HandshakeError = HandshakeError::MalformedExtensions;
use crate::handshake::Request;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The extension's name in `Sec-WebSocket-Extensions`.
pub const EXTENSION_NAME: &str = "permessage-deflate";

/// RFC 7692 §7.2.1: the four bytes a sync flush ends with, removed from every compressed message
/// and appended again before decompressing.
pub const DEFLATE_TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

/// The largest LZ77 window (2^15 bytes) and the default for both directions (§7.1.2).
pub const MAX_WINDOW_BITS: u8 = 15;

/// Server settings for permessage-deflate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateConfig {
    /// Accept the extension when a client offers it.
    pub enabled: bool,
    /// Messages shorter than this many bytes are sent uncompressed (RSV1 clear), which the
    /// extension allows per message (§6).
    pub threshold: usize,
    /// zlib compression level, 0 (none) to 9 (best).
    pub level: u32,
    /// Let clients that want it keep their compression context between messages, at the cost of
    /// an inflater per such connection once it sends a compressed message.
    pub client_context_takeover: bool,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            enabled: true,
            threshold: 64,
            level: 6,
            client_context_takeover: false,
        }
    }
}

/// The parameters both ends agreed on, in role-neutral terms: the window this end compresses
/// with, and whether the peer compresses each message on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The window this end compresses with, in bits: `server_max_window_bits` for a server,
    /// `client_max_window_bits` for a client. 8 means this end sends uncompressed messages
    /// only: zlib cannot produce a raw stream with a 256-byte window, and compressing is
    /// optional per message (§6).
    pub our_window_bits: u8,
    /// The peer compresses each message on its own (it agreed to `*_no_context_takeover`), so
    /// its messages inflate with a fresh inflater each: the shared one.
    pub peer_resets_context: bool,
}

impl Negotiated {
    /// The `Sec-WebSocket-Extensions` value of a server's 101 response. The server always
    /// compresses each message on its own (`server_no_context_takeover`).
    pub fn server_response(&self) -> String {
        let mut value = format!("{EXTENSION_NAME}; server_no_context_takeover");
        if self.peer_resets_context {
            value.push_str("; client_no_context_takeover");
        }
        if self.our_window_bits != MAX_WINDOW_BITS {
            value.push_str(&format!(
                "; server_max_window_bits={}",
                self.our_window_bits
            ));
        }
        value
    }
}

/// One extension in a `Sec-WebSocket-Extensions` list, with its parameters (values unquoted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionOffer {
    /// The extension token.
    pub name: String,
    /// Each parameter and its value, if it has one, in order.
    pub params: Vec<(String, Option<String>)>,
}

/// RFC 7230 §3.2.6 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Parses `Sec-WebSocket-Extensions` values (RFC 6455 §9.1) into offers, in order across all
/// values. A value that does not match the ABNF is an error: RFC 6455 §9.1 "If a value is
/// received ... that does not conform to the ABNF below, the recipient of such malformed data
/// MUST immediately _Fail the WebSocket Connection_."
//= https://www.rfc-editor.org/rfc/rfc6455#section-5.2
//= type=exception
//= reason=The rule binds whoever specifies an extension; RFC 7692 does so for
//= reason=permessage-deflate, the only extension implemented here.
//# Any extension MUST specify the length of the
//# "Extension data", or how that length may be calculated, and how
//# the extension use MUST be negotiated during the opening handshake.
pub fn parse_extensions<'a>(
    values: impl Iterator<Item = &'a [u8]>,
) -> Result<Vec<ExtensionOffer>, HandshakeError> {
    //= https://www.rfc-editor.org/rfc/rfc6455#section-9.1
    //# If a value is received by either the client or
    //# the server during negotiation that does not conform to the ABNF
    //# below, the recipient of such malformed data MUST immediately _Fail
    //# the WebSocket Connection_.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-9.1
    //# Sec-WebSocket-Extensions = extension-list
    //# extension-list = 1#extension
    //# extension = extension-token *( ";" extension-param )
    //# extension-token = registered-token
    //# registered-token = token
    //# extension-param = token [ "=" (token | quoted-string) ]
    //# ;When using the quoted-string syntax variant, the value
    //# ;after quoted-string unescaping MUST conform to the
    //# ;'token' ABNF.
    let mut offers = Vec::new();
    for value in values {
        let mut p = Parser {
            bytes: value,
            pos: 0,
        };
        loop {
            p.skip_ows();
            if p.eat(b',') {
                continue; // an empty list element (RFC 7230 §7)
            }
            if p.at_end() {
                break;
            }
            let name = p.token()?;
            let mut params = Vec::new();
            loop {
                p.skip_ows();
                if !p.eat(b';') {
                    break;
                }
                p.skip_ows();
                let param = p.token()?;
                p.skip_ows();
                let value = if p.eat(b'=') {
                    p.skip_ows();
                    Some(if p.peek() == Some(b'"') {
                        p.quoted_token()?
                    } else {
                        p.token()?
                    })
                } else {
                    None
                };
                params.push((param, value));
            }
            offers.push(ExtensionOffer { name, params });
            p.skip_ows();
            if !p.at_end() && !p.eat(b',') {
                return Err(MALFORMED);
            }
        }
    }
    Ok(offers)
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }
    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }
    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.pos += hit as usize;
        hit
    }
    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }
    fn token(&mut self) -> Result<String, HandshakeError> {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(MALFORMED);
        }
        Ok(String::from_utf8_lossy(&self.bytes[start..self.pos]).into_owned())
    }
    /// RFC 6455 §9.1: "When using the quoted-string syntax variant, the value after
    /// quoted-string unescaping MUST conform to the 'token' ABNF."
    fn quoted_token(&mut self) -> Result<String, HandshakeError> {
        //= https://www.rfc-editor.org/rfc/rfc6455#section-4.3
        //# extension-param = token [ "=" (token | quoted-string) ]
        //# ; When using the quoted-string syntax variant, the value
        //# ; after quoted-string unescaping MUST conform to the
        //# ; 'token' ABNF.
        self.pos += 1; // the opening quote
        let mut value = Vec::new();
        loop {
            match self.peek() {
                None => return Err(MALFORMED),
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    self.pos += 1;
                    value.push(self.peek().ok_or(MALFORMED)?);
                    self.pos += 1;
                }
                Some(b) => {
                    value.push(b);
                    self.pos += 1;
                }
            }
        }
        if value.is_empty() || !value.iter().all(|&b| is_tchar(b)) {
            return Err(MALFORMED);
        }
        Ok(String::from_utf8_lossy(&value).into_owned())
    }
}

/// A window size value (RFC 7692 §7.1.2.1: "a decimal integer value without leading zeros
/// between 8 to 15, inclusive").
fn window_bits(value: &str) -> Option<u8> {
    if value.starts_with('0') {
        return None;
    }
    value.parse().ok().filter(|bits| (8..=15).contains(bits))
}

/// Checks one permessage-deflate offer (RFC 7692 §7.1): `None` if it must be declined.
fn accept_offer(offer: &ExtensionOffer, config: &DeflateConfig) -> Option<Negotiated> {
    //= https://www.rfc-editor.org/rfc/rfc6455#section-9
    //# If extension parameters are included in negotiations
    //# between the client and the server, those parameters MUST be chosen in
    //# accordance with the specification of the extension to which the
    //# parameters apply.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-9.1
    //# The parameters supplied with any given extension MUST
    //# be defined for that extension.
    let mut seen = Vec::new();
    let mut our_window_bits = MAX_WINDOW_BITS;
    let mut peer_resets_context = !config.client_context_takeover;
    for (name, value) in &offer.params {
        // RFC 7692 §7: a server MUST decline an offer that "has multiple extension parameters
        // with the same name", an unknown parameter, or an invalid value.
        if seen.contains(&name.as_str()) {
            return None;
        }
        seen.push(name.as_str());
        match (name.as_str(), value.as_deref()) {
            ("server_no_context_takeover", None) => {}
            ("client_no_context_takeover", None) => peer_resets_context = true,
            ("server_max_window_bits", Some(value)) => {
                our_window_bits = window_bits(value)?;
                // Our limit: zlib cannot produce a raw deflate stream with a 256-byte window, so
                // an offer that insists on 8 is declined (§7.1.2.1 lets the server decline).
                if our_window_bits < 9 {
                    return None;
                }
            }
            ("client_max_window_bits", None) => {}
            ("client_max_window_bits", Some(value)) => {
                // We inflate with the largest window, which reads any smaller one.
                window_bits(value)?;
            }
            _ => return None,
        }
    }
    Some(Negotiated {
        our_window_bits,
        peer_resets_context,
    })
}

/// Picks the first acceptable permessage-deflate offer of a request, or none (RFC 7692 §5: the
/// server "accepts" one offer, else declines them all by not answering the extension). A
/// malformed header is an error.
pub fn negotiate(
    request: &Request<'_>,
    config: &DeflateConfig,
) -> Result<Option<Negotiated>, HandshakeError> {
    if !config.enabled {
        return Ok(None);
    }
    let offers = parse_extensions(request.header_values("Sec-WebSocket-Extensions"))?;
    //= https://www.rfc-editor.org/rfc/rfc6455#section-4.2.2
    //# If the server supports
    //# multiple extensions, then the value MUST be derived from the
    //# client's handshake, specifically by selecting one or more of
    //# the values from the |Sec-WebSocket-Extensions| field.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-4.2.2
    //# Extensions not listed by the client MUST NOT be
    //# listed.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-9
    //# A server MUST NOT respond with any extension not requested
    //# by the client.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-9.1
    //= type=implication
    //= reason=The only extension either side names is permessage-deflate, registered by RFC 7692.
    //# Any extension-token used MUST be a registered token (see
    //# Section 11.4).
    Ok(offers
        .iter()
        .filter(|offer| offer.name.eq_ignore_ascii_case(EXTENSION_NAME))
        .find_map(|offer| accept_offer(offer, config)))
}

/// The offer a client makes when permessage-deflate is enabled: the extension with
/// `client_max_window_bits`, which tells the server it may limit the window the client
/// compresses with (browsers offer the same). The client always compresses each message on its
/// own, whatever the server answers.
pub fn client_offer(config: &DeflateConfig) -> Option<&'static str> {
    config
        .enabled
        .then_some("permessage-deflate; client_max_window_bits")
}

/// Checks the server's `Sec-WebSocket-Extensions` answer to [`client_offer`] (RFC 7692 §5,
/// §7.1): `None` when the server declined, the agreed parameters when it accepted.
pub fn check_server_response<'a>(
    values: impl Iterator<Item = &'a [u8]>,
    config: &DeflateConfig,
) -> Result<Option<Negotiated>, ResponseError> {
    let extensions = parse_extensions(values).map_err(|_| ResponseError::InvalidExtension)?;
    let Some(accepted) = extensions.first() else {
        return Ok(None);
    };
    if !config.enabled
        || extensions.len() > 1
        || !accepted.name.eq_ignore_ascii_case(EXTENSION_NAME)
    {
        return Err(ResponseError::ExtensionNotOffered);
    }
    let mut seen = Vec::new();
    let mut negotiated = Negotiated {
        our_window_bits: MAX_WINDOW_BITS,
        peer_resets_context: false,
    };
    // RFC 7692 §7.1: the client fails the connection if the response "contains an extension
    // parameter not defined for use in a response", "an extension parameter with an invalid
    // value", or "multiple extension parameters with the same name".
    for (name, value) in &accepted.params {
        if seen.contains(&name.as_str()) {
            return Err(ResponseError::InvalidExtension);
        }
        seen.push(name.as_str());
        match (name.as_str(), value.as_deref()) {
            ("server_no_context_takeover", None) => negotiated.peer_resets_context = true,
            // We compress every message on its own anyway.
            ("client_no_context_takeover", None) => {}
            // We inflate with the largest window, which reads any smaller one.
            ("server_max_window_bits", Some(value)) if window_bits(value).is_some() => {}
            // Offered (client_offer always offers it): the window we compress with. With 8,
            // which zlib cannot produce, we send uncompressed messages only.
            ("client_max_window_bits", Some(value)) => {
                negotiated.our_window_bits =
                    window_bits(value).ok_or(ResponseError::InvalidExtension)?;
            }
            _ => return Err(ResponseError::InvalidExtension),
        }
    }
    Ok(Some(negotiated))
}

/// The compression state of one connection that negotiated permessage-deflate.
#[derive(Debug)]
pub struct Deflate {
    params: Negotiated,
    threshold: u32,
    level: u8,
    /// The client's context, kept between messages (only with client context takeover);
    /// allocated when the first compressed message arrives.
    inflater: Option<Box<Decompress>>,
}

impl Deflate {
    /// The state for a connection that negotiated `params` under `config`.
    pub fn new(params: Negotiated, config: &DeflateConfig) -> Self {
        Deflate {
            params,
            threshold: config.threshold.min(u32::MAX as usize) as u32,
            level: config.level.min(9) as u8,
            inflater: None,
        }
    }

    /// The negotiated parameters.
    pub fn params(&self) -> Negotiated {
        self.params
    }

    /// Whether a payload of `len` bytes is worth compressing (and this end may compress).
    pub fn should_compress(&self, len: usize) -> bool {
        len >= self.threshold as usize && self.params.our_window_bits >= 9
    }

    /// Compresses a whole message payload (§7.2.1) with `shared`'s compressor for our window and
    /// appends it to `out`.
    pub fn compress(&self, payload: &[u8], out: &mut Vec<u8>, shared: &mut SharedDeflate) {
        shared.compress(payload, self.params.our_window_bits, self.level as u32, out);
    }

    /// Decompresses a whole message payload (§7.2.2), failing with
    /// [`ProtocolError::MessageTooBig`] as soon as the output would pass `limit`. Without client
    /// context takeover the inflater is `shared`'s; with it, this connection's own.
    pub fn decompress(
        &mut self,
        compressed: &[u8],
        limit: u64,
        shared: &mut SharedDeflate,
    ) -> Result<Vec<u8>, ProtocolError> {
        let mut inflation = self.start_inflation(shared);
        inflation.push(compressed);
        inflation.end_input();
        let mut out = Vec::with_capacity((compressed.len() * 2 + 64).min(limit as usize));
        let result = self.inflate_step(&mut inflation, &mut out, limit, usize::MAX);
        self.end_inflation(inflation, shared);
        result.map(|_| out)
    }

    /// Starts inflating a message piece by piece (see [`Inflation`]). Without context takeover
    /// the message takes `shared`'s inflater for as long as it is inflated (the slot gets a new
    /// one if another message needs it meanwhile); with it, the connection's own is used.
    pub fn start_inflation(&mut self, shared: &mut SharedDeflate) -> Inflation {
        let inflater = self.params.peer_resets_context.then(|| {
            let mut inflater = shared.inflater.take().unwrap_or_else(new_inflater);
            inflater.reset(false);
            inflater
        });
        Inflation {
            inflater,
            input: Vec::new(),
            ended: false,
            output_pending: false,
        }
    }

    /// Inflates what it can of the compressed bytes `inflation` holds into `out`, producing at
    /// most `max_out` bytes in this call and never more than `limit` in all. Returns whether
    /// work is left (output pending, or input not inflated yet).
    pub fn inflate_step(
        &mut self,
        inflation: &mut Inflation,
        out: &mut Vec<u8>,
        limit: u64,
        max_out: usize,
    ) -> Result<bool, ProtocolError> {
        let inflater = match &mut inflation.inflater {
            Some(inflater) => inflater,
            None => self.inflater.get_or_insert_with(new_inflater),
        };
        let limit = limit.min(usize::MAX as u64 - 1) as usize;
        let (used, more) = inflate_some(inflater, &inflation.input, out, limit, max_out)?;
        inflation.input.drain(..used);
        inflation.output_pending = more;
        Ok(inflation.has_work())
    }

    /// Ends an inflation: the shared inflater goes back to its slot.
    pub fn end_inflation(&mut self, inflation: Inflation, shared: &mut SharedDeflate) {
        if let Some(inflater) = inflation.inflater
            && shared.inflater.is_none()
        {
            shared.inflater = Some(inflater);
        }
    }
}

/// A compressed message being inflated as its frames arrive (RFC 7692 §7.2.2), a bounded amount
/// of output at a time, so that a message that inflates to megabytes is spread over several
/// calls (and the IO shell can serve other connections between them).
#[derive(Debug)]
pub struct Inflation {
    /// This message's inflater, taken from the shared slot; `None` when the connection keeps its
    /// own (context takeover).
    inflater: Option<Box<Decompress>>,
    /// Compressed bytes received and not inflated yet.
    input: Vec<u8>,
    /// The final frame arrived; its `00 00 FF FF` tail is in `input`.
    ended: bool,
    /// The last step stopped at its output limit: more output may come without more input.
    output_pending: bool,
}

impl Inflation {
    /// Adds compressed payload bytes.
    pub fn push(&mut self, compressed: &[u8]) {
        debug_assert!(!self.ended, "input after the final frame");
        self.input.extend_from_slice(compressed);
    }

    /// The final frame arrived: appends the tail that the sender removed (§7.2.2).
    pub fn end_input(&mut self) {
        self.input.extend_from_slice(&DEFLATE_TAIL);
        self.ended = true;
    }

    /// Whether inflating can go on without more input.
    pub fn has_work(&self) -> bool {
        self.output_pending || !self.input.is_empty()
    }

    /// Whether the whole message is inflated.
    pub fn is_done(&self) -> bool {
        self.ended && !self.has_work()
    }

    /// Compressed bytes held, not inflated yet.
    pub fn held(&self) -> usize {
        self.input.len()
    }
}

fn new_inflater() -> Box<Decompress> {
    Box::new(Decompress::new_with_window_bits(false, MAX_WINDOW_BITS))
}

/// Inflates from `input` into `out`, stopping once `out` has grown by `max_out` bytes, and
/// failing as soon as it would pass `limit`. Returns how much input it used and whether output
/// may still be pending for that input.
fn inflate_some(
    inflater: &mut Decompress,
    input: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
    max_out: usize,
) -> Result<(usize, bool), ProtocolError> {
    let too_big = |len: usize| ProtocolError::MessageTooBig {
        len: len as u64,
        limit: limit as u64,
    };
    let stop_at = out.len().saturating_add(max_out).min(limit + 1);
    let mut pos = 0;
    loop {
        if out.len() >= stop_at {
            if out.len() > limit {
                return Err(too_big(out.len()));
            }
            return Ok((pos, true));
        }
        if out.len() == out.capacity() {
            out.reserve_exact(INFLATE_STEP.min(stop_at - out.len()));
        }
        let (before_in, before_out) = (inflater.total_in(), out.len());
        let status = inflater
            .decompress_vec(&input[pos..], out, FlushDecompress::Sync)
            .map_err(|_| ProtocolError::InvalidCompressedData)?;
        pos += (inflater.total_in() - before_in) as usize;
        if out.len() > limit {
            return Err(too_big(out.len()));
        }
        if status == Status::StreamEnd {
            // A final block ends the stream: start afresh for the next message, and ignore
            // whatever follows it in this one.
            inflater.reset(false);
            return Ok((input.len(), false));
        }
        let room_left = out.len() < out.capacity();
        if pos == input.len() && room_left {
            return Ok((pos, false));
        }
        if pos < input.len()
            && room_left
            && out.len() == before_out
            && inflater.total_in() == before_in
        {
            return Err(ProtocolError::InvalidCompressedData);
        }
    }
}

/// The zlib state that connections without context takeover share: one compressor per window
/// size (about 270 KiB each) and one inflater (about 40 KiB), each allocated on first use.
///
/// A message needs one only while it is being compressed or decompressed, so an IO shell keeps
/// one per thread and lends it to each call that may compress or inflate; a connection itself
/// holds no compression state unless its client keeps its context.
#[derive(Default)]
pub struct SharedDeflate {
    /// Indexed by window bits − 9, each with the level it was made for.
    compressors: [Option<(u32, Compress)>; 7],
    /// Boxed, so that a message being inflated across calls can take it and give it back.
    inflater: Option<Box<Decompress>>,
}

impl std::fmt::Debug for SharedDeflate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let windows: Vec<u8> = (9..=MAX_WINDOW_BITS)
            .filter(|bits| self.compressors[(bits - 9) as usize].is_some())
            .collect();
        f.debug_struct("SharedDeflate")
            .field("compressor_windows", &windows)
            .field("inflater", &self.inflater.is_some())
            .finish()
    }
}

impl SharedDeflate {
    /// No compressor or inflater allocated yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Compresses `payload` as one message with a `window_bits` window and no context, and
    /// appends the result without its `00 00 FF FF` tail (RFC 7692 §7.2.1) to `out`.
    pub fn compress(&mut self, payload: &[u8], window_bits: u8, level: u32, out: &mut Vec<u8>) {
        let window_bits = window_bits.clamp(9, MAX_WINDOW_BITS);
        let slot = &mut self.compressors[(window_bits - 9) as usize];
        if slot.as_ref().is_none_or(|(made_for, _)| *made_for != level) {
            *slot = Some((
                level,
                Compress::new_with_window_bits(Compression::new(level), false, window_bits),
            ));
        }
        let (_, compressor) = slot.as_mut().expect("just made");
        compressor.reset();
        let start = out.len();
        let mut consumed = 0;
        loop {
            out.reserve(payload.len() - consumed + 64);
            let before = compressor.total_in();
            compressor
                .compress_vec(&payload[consumed..], out, FlushCompress::Sync)
                .expect("compressing into a vector with spare room cannot fail");
            consumed += (compressor.total_in() - before) as usize;
            // The sync flush is complete once all input is in and the output did not fill up.
            if consumed == payload.len() && out.len() < out.capacity() {
                break;
            }
        }
        debug_assert!(out[start..].ends_with(&DEFLATE_TAIL));
        if out[start..].ends_with(&DEFLATE_TAIL) {
            out.truncate(out.len() - DEFLATE_TAIL.len());
        }
    }
}

/// The most bytes DEFLATE can turn `len` bytes into, whatever the peer's compressor settings:
/// zlib's `deflateBound` when it does not know them (`len + len/8 + len/256 + len/512 + 4`, for
/// fixed-code blocks of 9-bit literals, which a small window or `memLevel` can force), plus room
/// for the sync flush. Only zlib's default settings (a 32 KiB window and `memLevel` 8) keep to
/// its tight bound of 5 133 bytes over 16 MiB; a smaller window or `memLevel` adds more to data
/// it cannot compress (Python's websockets, with a 4 KiB window and `memLevel` 5, adds about
/// 41 KB to 16 MiB of random bytes). 16 MiB may take 2 195 469 bytes more (13.1 %).
pub fn compressed_bound(len: u64) -> u64 {
    len.saturating_add((len >> 3) + (len >> 8) + (len >> 9) + 13)
}

/// How much the output of an inflate grows at a time, so that a bomb is caught while the buffer
/// is still small.
const INFLATE_STEP: usize = 64 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compressed_bound_holds_for_incompressible_data() {
        let mut state = 88172645463325252u64;
        let data: Vec<u8> = (0..200_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        for window_bits in 9..=MAX_WINDOW_BITS {
            for level in [1, 9] {
                for len in [0, 1, 1000, 65_536, 200_000] {
                    if len > 65_536 && (window_bits, level) != (15, 9) {
                        continue; // slow in a debug build, and the same story
                    }
                    let mut out = Vec::new();
                    SharedDeflate::new().compress(&data[..len], window_bits, level, &mut out);
                    assert!(
                        out.len() as u64 <= compressed_bound(len as u64),
                        "{len} bytes, window {window_bits}, level {level}: {}",
                        out.len()
                    );
                }
            }
        }
        assert_eq!(compressed_bound(16 << 20), (16 << 20) + 2_195_469);
    }

    #[test]
    fn a_small_window_expands_data_past_zlibs_default_bound() {
        // Found by the interop test: Python's websockets (a 4 KiB window, memLevel 5) sent the
        // echo of 16 MiB of random bytes 41 KB over 16 MiB, and our client failed the connection
        // with 1009 for a message of exactly its limit. zlib's tight bound holds for its default
        // settings only; with a 512-byte window the output passes it.
        let mut state = 88172645463325252u64;
        let data: Vec<u8> = (0..256 << 10)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let default_settings_bound = |len: u64| len + (len >> 12) + (len >> 14) + (len >> 25) + 13;
        let mut out = Vec::new();
        SharedDeflate::new().compress(&data, 9, 6, &mut out);
        assert!(out.len() as u64 > default_settings_bound(data.len() as u64));
        assert!(out.len() as u64 <= compressed_bound(data.len() as u64));
    }
    use crate::limits::Limits;

    fn request(extensions: &[&str]) -> Vec<u8> {
        let mut head = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        for value in extensions {
            head.extend_from_slice(format!("Sec-WebSocket-Extensions: {value}\r\n").as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        head
    }

    fn negotiate_with(
        extensions: &[&str],
        config: DeflateConfig,
    ) -> Result<Option<String>, HandshakeError> {
        let head = request(extensions);
        let request = crate::handshake::parse_request(&head, &Limits::default()).unwrap();
        negotiate(&request, &config).map(|n| n.map(|n| n.server_response()))
    }

    fn negotiate_default(extensions: &[&str]) -> Result<Option<String>, HandshakeError> {
        negotiate_with(extensions, DeflateConfig::default())
    }

    const BASE: &str = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

    #[test]
    fn accepts_a_plain_offer() {
        assert_eq!(
            negotiate_default(&["permessage-deflate"]),
            Ok(Some(BASE.into()))
        );
        assert_eq!(negotiate_default(&[]), Ok(None));
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-4.3
    //= type=test
    //# extension-param = token [ "=" (token | quoted-string) ]
    //# ; When using the quoted-string syntax variant, the value
    //# ; after quoted-string unescaping MUST conform to the
    //# ; 'token' ABNF.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-9
    //= type=test
    //# If extension parameters are included in negotiations
    //# between the client and the server, those parameters MUST be chosen in
    //# accordance with the specification of the extension to which the
    //# parameters apply.
    #[test]
    fn each_parameter() {
        assert_eq!(
            negotiate_default(&["permessage-deflate; server_no_context_takeover"]),
            Ok(Some(BASE.into()))
        );
        assert_eq!(
            negotiate_default(&["permessage-deflate; client_no_context_takeover"]),
            Ok(Some(BASE.into()))
        );
        assert_eq!(
            negotiate_default(&["permessage-deflate; server_max_window_bits=10"]),
            Ok(Some(format!("{BASE}; server_max_window_bits=10")))
        );
        assert_eq!(
            negotiate_default(&["permessage-deflate; client_max_window_bits"]),
            Ok(Some(BASE.into()))
        );
        assert_eq!(
            negotiate_default(&["permessage-deflate; client_max_window_bits=8"]),
            Ok(Some(BASE.into()))
        );
        assert_eq!(
            negotiate_default(&["permessage-deflate; server_max_window_bits=\"12\""]),
            Ok(Some(format!("{BASE}; server_max_window_bits=12")))
        );
    }

    #[test]
    fn client_context_takeover_when_configured() {
        let config = DeflateConfig {
            client_context_takeover: true,
            ..DeflateConfig::default()
        };
        assert_eq!(
            negotiate_with(&["permessage-deflate; client_max_window_bits"], config),
            Ok(Some(
                "permessage-deflate; server_no_context_takeover".into()
            ))
        );
        assert_eq!(
            negotiate_with(&["permessage-deflate; client_no_context_takeover"], config),
            Ok(Some(BASE.into()))
        );
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-9.1
    //= type=test
    //# The parameters supplied with any given extension MUST
    //# be defined for that extension.
    #[test]
    fn declines_bad_offers_and_takes_the_next() {
        for bad in [
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=08",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=8",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; unknown_parameter",
            "x-webkit-deflate-frame",
        ] {
            assert_eq!(negotiate_default(&[bad]), Ok(None), "{bad}");
            let two = format!("{bad}, permessage-deflate; client_max_window_bits");
            assert_eq!(negotiate_default(&[&two]), Ok(Some(BASE.into())), "{two}");
        }
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-4.2.2
    //= type=test
    //# If the server supports
    //# multiple extensions, then the value MUST be derived from the
    //# client's handshake, specifically by selecting one or more of
    //# the values from the |Sec-WebSocket-Extensions| field.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-4.2.2
    //= type=test
    //# Extensions not listed by the client MUST NOT be
    //# listed.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-9
    //= type=test
    //# A server MUST NOT respond with any extension not requested
    //# by the client.
    #[test]
    fn several_headers_and_offers() {
        assert_eq!(
            negotiate_default(&[
                "foo; bar=\"baz\"",
                "permessage-deflate; server_max_window_bits=9, permessage-deflate"
            ]),
            Ok(Some(format!("{BASE}; server_max_window_bits=9")))
        );
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-9.1
    //= type=test
    //# If a value is received by either the client or
    //# the server during negotiation that does not conform to the ABNF
    //# below, the recipient of such malformed data MUST immediately _Fail
    //# the WebSocket Connection_.
    //
    //= https://www.rfc-editor.org/rfc/rfc6455#section-9.1
    //= type=test
    //# Sec-WebSocket-Extensions = extension-list
    //# extension-list = 1#extension
    //# extension = extension-token *( ";" extension-param )
    //# extension-token = registered-token
    //# registered-token = token
    //# extension-param = token [ "=" (token | quoted-string) ]
    //# ;When using the quoted-string syntax variant, the value
    //# ;after quoted-string unescaping MUST conform to the
    //# ;'token' ABNF.
    #[test]
    fn malformed_headers_are_errors() {
        for bad in [
            "permessage-deflate;",
            "; x",
            "permessage-deflate; a=\"b c\"",
            "permessage-deflate; a=\"unterminated",
            "a b",
            "permessage-deflate; =1",
        ] {
            assert_eq!(negotiate_default(&[bad]), Err(MALFORMED), "{bad}");
        }
    }

    #[test]
    fn disabled_declines_everything() {
        let config = DeflateConfig {
            enabled: false,
            ..DeflateConfig::default()
        };
        assert_eq!(negotiate_with(&["permessage-deflate"], config), Ok(None));
    }

    fn shared_state() -> Deflate {
        Deflate::new(
            Negotiated {
                our_window_bits: 15,
                peer_resets_context: true,
            },
            &DeflateConfig::default(),
        )
    }

    #[test]
    fn round_trips_and_strips_the_tail() {
        let mut state = shared_state();
        for payload in [
            &b""[..],
            b"Hello",
            &vec![b'a'; 100_000],
            &(0..=255u8).cycle().take(70_000).collect::<Vec<_>>(),
        ] {
            let mut compressed = Vec::new();
            state.compress(payload, &mut compressed, &mut SharedDeflate::new());
            assert!(!compressed.ends_with(&DEFLATE_TAIL) || payload.is_empty());
            assert_eq!(
                state
                    .decompress(&compressed, 1 << 20, &mut SharedDeflate::new())
                    .unwrap(),
                payload
            );
        }
    }

    #[test]
    fn rfc_7692_7_2_3_1_hello() {
        // "Hello" compressed without context: 0xf2 0x48 0xcd 0xc9 0xc9 0x07 0x00.
        let mut state = shared_state();
        let compressed = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(
            state
                .decompress(&compressed, 100, &mut SharedDeflate::new())
                .unwrap(),
            b"Hello"
        );
    }

    #[test]
    fn rfc_7692_7_2_3_3_stored_block() {
        let mut state = shared_state();
        let compressed = [
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ];
        assert_eq!(
            state
                .decompress(&compressed, 100, &mut SharedDeflate::new())
                .unwrap(),
            b"Hello"
        );
    }

    #[test]
    fn a_bomb_is_refused_at_the_limit() {
        let mut state = shared_state();
        let mut compressed = Vec::new();
        state.compress(
            &vec![0u8; 10 << 20],
            &mut compressed,
            &mut SharedDeflate::new(),
        );
        assert!(compressed.len() < 20_000);
        assert_eq!(
            state.decompress(&compressed, 1 << 20, &mut SharedDeflate::new()),
            Err(ProtocolError::MessageTooBig {
                len: (1 << 20) + 1,
                limit: 1 << 20
            })
        );
    }

    #[test]
    fn garbage_is_invalid() {
        let mut state = shared_state();
        assert_eq!(
            state.decompress(&[0xff, 0xff, 0xff, 0xff], 100, &mut SharedDeflate::new()),
            Err(ProtocolError::InvalidCompressedData)
        );
    }

    #[test]
    fn context_takeover_keeps_an_inflater() {
        let mut state = Deflate::new(
            Negotiated {
                our_window_bits: 15,
                peer_resets_context: false,
            },
            &DeflateConfig {
                client_context_takeover: true,
                ..DeflateConfig::default()
            },
        );
        assert!(state.inflater.is_none());
        // Two messages from one compressor with context: the second refers back to the first.
        let mut compressor = Compress::new_with_window_bits(Compression::default(), false, 15);
        let mut messages = Vec::new();
        for text in [
            &b"the same words again and again"[..],
            b"the same words again and again",
        ] {
            let mut out = Vec::with_capacity(200);
            compressor
                .compress_vec(text, &mut out, FlushCompress::Sync)
                .unwrap();
            out.truncate(out.len() - 4);
            messages.push(out);
        }
        assert!(
            messages[1].len() < messages[0].len(),
            "the second message uses the context"
        );
        assert_eq!(
            state
                .decompress(&messages[0], 100, &mut SharedDeflate::new())
                .unwrap(),
            b"the same words again and again"
        );
        assert!(state.inflater.is_some());
        assert_eq!(
            state
                .decompress(&messages[1], 100, &mut SharedDeflate::new())
                .unwrap(),
            b"the same words again and again"
        );
    }

    fn params_of(value: &str) -> Result<Vec<(String, Option<String>)>, HandshakeError> {
        let mut offers = parse_extensions([value.as_bytes()].into_iter())?;
        assert_eq!(offers.len(), 1, "{value}");
        Ok(offers.remove(0).params)
    }

    //= https://www.rfc-editor.org/rfc/rfc6455#section-9.1
    //= type=test
    //# extension-param = token [ "=" (token | quoted-string) ]
    //#     ;When using the quoted-string syntax variant, the value
    //#     ;after quoted-string unescaping MUST conform to the
    //#     ;'token' ABNF.
    #[test]
    fn a_quoted_value_is_unescaped_then_must_be_a_token() {
        assert_eq!(
            params_of(r#"x; a="b\c"; d="\1\2""#),
            Ok(vec![
                ("a".into(), Some("bc".into())),
                ("d".into(), Some("12".into()))
            ])
        );
        assert_eq!(
            negotiate_default(&[r#"permessage-deflate; server_max_window_bits="1\2""#]),
            Ok(Some(format!("{BASE}; server_max_window_bits=12")))
        );
        for bad in [
            r#"x; a="b\"#,
            r#"x; a="\ ""#,
            r#"x; a="""#,
            r#"x; a="b\"c""#,
        ] {
            assert_eq!(params_of(bad), Err(MALFORMED), "{bad}");
        }
    }

    #[test]
    fn compresses_from_the_threshold_on_and_never_with_a_window_of_8() {
        let config = DeflateConfig {
            threshold: 100,
            ..DeflateConfig::default()
        };
        let with = |our_window_bits| {
            Deflate::new(
                Negotiated {
                    our_window_bits,
                    peer_resets_context: true,
                },
                &config,
            )
        };
        assert!(!with(15).should_compress(99));
        assert!(with(15).should_compress(100));
        assert!(with(9).should_compress(100));
        // RFC 7692 §7.1.2.2: a client may be told to use a 256-byte window, which zlib cannot
        // produce; that end then sends every message uncompressed (§6 allows it per message).
        assert!(!with(8).should_compress(100));
        assert!(!with(8).should_compress(1 << 20));
    }

    #[test]
    fn the_largest_limit_means_no_limit() {
        let mut state = shared_state();
        let mut compressed = Vec::new();
        state.compress(b"Hello", &mut compressed, &mut SharedDeflate::new());
        assert_eq!(
            state
                .decompress(&compressed, u64::MAX, &mut SharedDeflate::new())
                .unwrap(),
            b"Hello"
        );
    }

    #[test]
    fn a_message_gives_the_shared_inflater_back() {
        let mut state = shared_state();
        let mut shared = SharedDeflate::new();
        let mut compressed = Vec::new();
        state.compress(b"Hello", &mut compressed, &mut shared);
        assert!(shared.inflater.is_none());
        state.decompress(&compressed, 100, &mut shared).unwrap();
        let first = &**shared.inflater.as_ref().expect("given back") as *const Decompress;
        state.decompress(&compressed, 100, &mut shared).unwrap();
        let second = &**shared.inflater.as_ref().expect("given back") as *const Decompress;
        assert_eq!(first, second, "the same inflater, not a new one");
    }

    #[test]
    fn a_message_of_exactly_the_limit_is_inflated() {
        let mut state = shared_state();
        let mut shared = SharedDeflate::new();
        let mut compressed = Vec::new();
        state.compress(b"Hello", &mut compressed, &mut shared);
        assert_eq!(
            state.decompress(&compressed, 5, &mut shared).unwrap(),
            b"Hello"
        );
        assert_eq!(
            state.decompress(&compressed, 4, &mut shared),
            Err(ProtocolError::MessageTooBig { len: 5, limit: 4 })
        );
        // A step at a time, the first step ending at the limit.
        let mut inflation = state.start_inflation(&mut shared);
        inflation.push(&compressed);
        inflation.end_input();
        let mut out = Vec::new();
        assert!(state.inflate_step(&mut inflation, &mut out, 5, 5).unwrap());
        assert_eq!(out, b"Hello");
        while state.inflate_step(&mut inflation, &mut out, 5, 5).unwrap() {}
        assert!(inflation.is_done());
        assert_eq!(out, b"Hello");
        state.end_inflation(inflation, &mut shared);
    }

    /// A message cut anywhere, as frames cut it, into an output buffer of any starting size:
    /// once a step says no work is left, nothing more comes out until more input arrives.
    #[test]
    fn no_work_left_means_no_output_until_more_input() {
        let payload: Vec<u8> = (0..40_000u32)
            .map(|i| {
                if i % 5_000 < 4_000 {
                    b'a'
                } else {
                    (i % 251) as u8
                }
            })
            .collect();
        let mut compressed = Vec::new();
        SharedDeflate::new().compress(&payload, 15, 6, &mut compressed);
        let mut state = shared_state();
        let mut shared = SharedDeflate::new();
        for capacity in [0, 1_000, 4_096] {
            for cut in 1..compressed.len() {
                let mut inflation = state.start_inflation(&mut shared);
                let mut out = Vec::with_capacity(capacity);
                inflation.push(&compressed[..cut]);
                while state
                    .inflate_step(&mut inflation, &mut out, 1 << 20, usize::MAX)
                    .unwrap()
                {}
                let so_far = out.len();
                assert!(
                    !state
                        .inflate_step(&mut inflation, &mut out, 1 << 20, usize::MAX)
                        .unwrap()
                );
                assert_eq!(out.len(), so_far, "cut at {cut}, capacity {capacity}");
                inflation.push(&compressed[cut..]);
                inflation.end_input();
                while state
                    .inflate_step(&mut inflation, &mut out, 1 << 20, usize::MAX)
                    .unwrap()
                {}
                assert!(inflation.is_done());
                assert!(out == payload, "cut at {cut}, capacity {capacity}");
                state.end_inflation(inflation, &mut shared);
            }
        }
    }

    #[test]
    fn the_output_grows_64_kib_at_a_time() {
        let mut state = shared_state();
        let mut shared = SharedDeflate::new();
        let mut compressed = Vec::new();
        state.compress(&vec![b'a'; 300_000], &mut compressed, &mut shared);
        let mut inflation = state.start_inflation(&mut shared);
        inflation.push(&compressed);
        inflation.end_input();
        let mut out = Vec::new();
        while state
            .inflate_step(&mut inflation, &mut out, 1 << 20, usize::MAX)
            .unwrap()
        {}
        assert_eq!(out.len(), 300_000);
        assert_eq!(out.capacity(), 5 * 64 * 1024);
    }

    #[test]
    fn each_window_and_level_has_its_own_compressor() {
        // 1000 varied bytes three times over: a 512-byte window cannot see the repeats.
        let block: Vec<u8> = (0..1000u32)
            .map(|i| (i * 7 % 256) as u8 ^ (i / 3) as u8)
            .collect();
        let payload = block.repeat(3);
        let fresh = |window_bits, level| {
            let mut out = Vec::new();
            SharedDeflate::new().compress(&payload, window_bits, level, &mut out);
            out
        };
        assert_ne!(fresh(9, 6), fresh(15, 6));
        assert_ne!(fresh(15, 1), fresh(15, 9));
        let mut shared = SharedDeflate::new();
        for (window_bits, level) in [(9, 6), (15, 6), (15, 1), (15, 9), (9, 6)] {
            let mut out = Vec::new();
            shared.compress(&payload, window_bits, level, &mut out);
            assert_eq!(out, fresh(window_bits, level), "{window_bits} {level}");
        }
        assert_eq!(
            format!("{shared:?}"),
            "SharedDeflate { compressor_windows: [9, 15], inflater: false }"
        );
        let mut state = shared_state();
        let mut compressed = Vec::new();
        state.compress(b"Hello", &mut compressed, &mut shared);
        state.decompress(&compressed, 100, &mut shared).unwrap();
        assert_eq!(
            format!("{shared:?}"),
            "SharedDeflate { compressor_windows: [9, 15], inflater: true }"
        );
    }

    #[test]
    fn a_step_inflates_at_most_its_share_even_one_byte() {
        let payload: Vec<u8> = b"Hello, hello, hello! ".repeat(100);
        let mut state = shared_state();
        let mut shared = SharedDeflate::new();
        let mut compressed = Vec::new();
        state.compress(&payload, &mut compressed, &mut shared);
        for max_out in [1, 7, 100] {
            let mut inflation = state.start_inflation(&mut shared);
            inflation.push(&compressed);
            inflation.end_input();
            let mut out = Vec::new();
            loop {
                let before = out.len();
                let more = state
                    .inflate_step(&mut inflation, &mut out, 1 << 20, max_out)
                    .unwrap();
                assert!(out.len() - before <= max_out);
                if !more {
                    break;
                }
            }
            assert!(inflation.is_done());
            assert!(out == payload, "{max_out} bytes a step");
            state.end_inflation(inflation, &mut shared);
        }
    }
}
