//! HTTP/1.1 responses: the one writer every response of this crate goes through (the `101` that
//! accepts an upgrade, the errors that refuse one, and plain HTTP answers).
//!
//! Every response other than `101` carries `Connection: close`: after it, the server closes the
//! connection (a browser opens a new one for the WebSocket anyway), so no request ever waits
//! behind another on one connection.

use std::borrow::Cow;

/// An HTTP response to write: a status, header fields and a body.
///
/// ```
/// use rfc6455::http::Response;
/// let mut out = Vec::new();
/// Response::text(404, "not found\n").write_to(&mut out);
/// assert_eq!(
///     out,
///     b"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 10\r\n\
///       Content-Type: text/plain; charset=utf-8\r\n\r\nnot found\n"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    headers: Vec<(Cow<'static, str>, Cow<'static, str>)>,
    body: Cow<'static, [u8]>,
    /// The answer to a `HEAD` request (or a `304`): the headers describe a body that is not sent.
    omit_body: bool,
}

impl Response {
    /// A response with `status`, no header fields and an empty body.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Cow::Borrowed(&[]),
            omit_body: false,
        }
    }

    /// A response with a short plain-text body.
    pub fn text(status: u16, body: impl Into<Cow<'static, str>>) -> Self {
        let body = match body.into() {
            Cow::Borrowed(text) => Cow::Borrowed(text.as_bytes()),
            Cow::Owned(text) => Cow::Owned(text.into_bytes()),
        };
        Response::new(status).with_body("text/plain; charset=utf-8", body)
    }

    /// Adds a header field. A name that is not an HTTP token, or a value holding CR, LF or NUL,
    /// would let the response be split or forged, so such a field is left out (and a debug build
    /// panics, as it is a bug in the caller).
    pub fn header(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) -> Self {
        let (name, value) = (name.into(), value.into());
        let valid = is_token(&name) && !value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0));
        debug_assert!(valid, "invalid header field {name:?}: {value:?}");
        if valid {
            self.headers.push((name, value));
        }
        self
    }

    /// Sets the body and its `Content-Type`.
    pub fn with_body(
        self,
        content_type: impl Into<Cow<'static, str>>,
        body: impl Into<Cow<'static, [u8]>>,
    ) -> Self {
        let mut response = self.header("Content-Type", content_type);
        response.body = body.into();
        response
    }

    /// Keeps the headers (with the body's `Content-Length`) and leaves the body out: the answer
    /// to a `HEAD` request.
    pub fn without_body(mut self) -> Self {
        self.omit_body = true;
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The body (even when it is not sent).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The value of the first header field named `name` (case-insensitive).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| &**v)
    }

    /// Appends the response's bytes to `out`.
    ///
    /// A `101` gets exactly its header fields. Every other status also gets `Connection: close`
    /// and, except `204` and `304`, a `Content-Length`; RFC 9110 §8.6: "A server MUST NOT send
    /// a Content-Length header field in any response with a status code of 1xx (Informational)
    /// or 204 (No Content)."
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let status = self.status;
        out.reserve(128 + self.body.len());
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(status.to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(reason_phrase(status).as_bytes());
        out.extend_from_slice(b"\r\n");
        if status != 101 {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        let informational = (100..200).contains(&status);
        if !informational && status != 204 && status != 304 {
            push_field(out, "Content-Length", &self.body.len().to_string());
        }
        for (name, value) in &self.headers {
            push_field(out, name, value);
        }
        out.extend_from_slice(b"\r\n");
        if !self.omit_body && !informational && status != 204 && status != 304 {
            out.extend_from_slice(&self.body);
        }
    }
}

fn push_field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// RFC 9110 §5.6.2 `token`: one or more `tchar`.
pub(crate) fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The reason phrase for a status code (RFC 9110 §15), "Unknown" for codes it does not name.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(response: &Response) -> String {
        let mut out = Vec::new();
        response.write_to(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn switching_protocols_has_no_length_and_keeps_the_connection() {
        let response = Response::new(101).header("Upgrade", "websocket");
        assert_eq!(
            written(&response),
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
        );
    }

    #[test]
    fn head_keeps_the_length_and_drops_the_body() {
        let response = Response::text(200, "hello").without_body();
        assert_eq!(
            written(&response),
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n"
        );
    }

    #[test]
    fn not_modified_has_no_body_and_no_length() {
        let response = Response::text(304, "hello");
        assert_eq!(
            written(&response),
            "HTTP/1.1 304 Not Modified\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        );
    }

    #[test]
    #[cfg(not(debug_assertions))]
    fn drops_a_field_that_would_split_the_response() {
        let response = Response::new(200).header("X-Bad", "a\r\nSet-Cookie: x");
        assert!(!written(&response).contains("Set-Cookie"));
    }

    #[test]
    #[should_panic(expected = "invalid header field")]
    #[cfg(debug_assertions)]
    fn a_field_that_would_split_the_response_is_a_bug() {
        let _ = Response::new(200).header("X-Bad", "a\r\nSet-Cookie: x");
    }

    #[test]
    fn an_error_response_closes_the_connection_and_carries_its_body() {
        let response = Response::text(404, "not found\n");
        assert_eq!(
            written(&response),
            "HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 10\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\nnot found\n"
        );
        assert_eq!(
            written(&Response::new(200)),
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn no_content_has_no_length_and_no_body() {
        // RFC 9110 §8.6: "A server MUST NOT send a Content-Length header field in any response
        // with a status code of 1xx (Informational) or 204 (No Content)."
        let response = Response::text(204, "hello");
        assert_eq!(
            written(&response),
            "HTTP/1.1 204 No Content\r\nConnection: close\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n"
        );
    }

    #[test]
    fn an_informational_response_has_no_length_and_no_body() {
        let response = Response::text(100, "hello");
        assert_eq!(
            written(&response),
            "HTTP/1.1 100 Unknown\r\nConnection: close\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n"
        );
    }

    #[test]
    fn reads_back_status_body_and_fields() {
        let response = Response::text(404, String::from("nope")).header("X-Reason", "gone");
        assert_eq!(response.status(), 404);
        assert_eq!(response.body(), b"nope");
        assert_eq!(response.header_value("x-reason"), Some("gone"));
        assert_eq!(
            response.header_value("CONTENT-TYPE"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(response.header_value("Set-Cookie"), None);
        let head = response.clone().without_body();
        assert_eq!(head.body(), b"nope", "kept, though not sent");
        assert!(written(&head).ends_with("\r\n\r\n"));
    }

    #[test]
    fn every_named_status_has_its_rfc_9110_reason_phrase() {
        for (status, phrase) in [
            (101, "Switching Protocols"),
            (200, "OK"),
            (204, "No Content"),
            (301, "Moved Permanently"),
            (304, "Not Modified"),
            (400, "Bad Request"),
            (401, "Unauthorized"),
            (403, "Forbidden"),
            (404, "Not Found"),
            (405, "Method Not Allowed"),
            (408, "Request Timeout"),
            (426, "Upgrade Required"),
            (429, "Too Many Requests"),
            (431, "Request Header Fields Too Large"),
            (500, "Internal Server Error"),
            (503, "Service Unavailable"),
            (418, "Unknown"),
        ] {
            assert_eq!(reason_phrase(status), phrase, "{status}");
        }
    }

    #[test]
    fn a_field_name_is_an_http_token() {
        // RFC 9110 §5.6.2: token = 1*tchar, tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" /
        // "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
        assert!(is_token("Sec-WebSocket-Accept"));
        assert!(is_token("x9!#$%&'*+-.^_`|~"));
        for name in ["", "X Bad", "X:Bad", "X\"Bad\"", "Ünicode", "X\r\n"] {
            assert!(!is_token(name), "{name:?}");
        }
    }

    #[test]
    #[should_panic(expected = "invalid header field")]
    #[cfg(debug_assertions)]
    fn a_field_name_that_is_not_a_token_is_a_bug() {
        let _ = Response::new(200).header("X Bad", "value");
    }

    #[test]
    #[cfg(not(debug_assertions))]
    fn drops_a_field_whose_name_is_not_a_token() {
        let response = Response::new(200).header("X Bad", "value");
        assert!(!written(&response).contains("X Bad"));
    }
}
