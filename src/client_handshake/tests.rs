use super::*;

fn response(extra: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n{extra}\r\n"
    )
    .into_bytes()
}

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn check(head: &[u8], offered: &ClientRequest) -> Result<Accepted, ResponseError> {
    check_response(
        head,
        KEY,
        offered,
        &DeflateConfig::default(),
        &Limits::default(),
    )
}

//= https://www.rfc-editor.org/rfc/rfc6455#section-3
//= type=test
//# Fragment identifiers are meaningless in the context of WebSocket URIs
//# and MUST NOT be used on these URIs.
//
//= https://www.rfc-editor.org/rfc/rfc6455#section-3
//= type=test
//# As with any URI scheme, the
//# character "#", when not indicating the start of a fragment, MUST be
//# escaped as %23.
//
//= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
//= type=test
//# The components of the WebSocket URI passed into this algorithm
//# (/host/, /port/, /resource name/, and /secure/ flag) MUST be
//# valid according to the specification of WebSocket URIs specified
//# in Section 3.  If any of the components are invalid, the client
//# MUST _Fail the WebSocket Connection_ and abort these steps.
#[test]
fn parses_urls() {
    let url = WsUrl::parse("ws://example.com").unwrap();
    assert_eq!(
        (
            url.secure,
            url.host.as_str(),
            url.port,
            url.resource.as_str()
        ),
        (false, "example.com", 80, "/")
    );
    assert_eq!(url.authority(), "example.com");
    let url = WsUrl::parse("wss://example.com:8443/a/b?c=d").unwrap();
    assert_eq!((url.port, url.resource.as_str()), (8443, "/a/b?c=d"));
    assert_eq!(url.authority(), "example.com:8443");
    assert_eq!(WsUrl::parse("WSS://h?x").unwrap().resource, "/?x");
    assert_eq!(WsUrl::parse("http://h/"), Err(UrlError::Scheme));
    assert_eq!(WsUrl::parse("ws://h/#frag"), Err(UrlError::Fragment));
    assert_eq!(WsUrl::parse("ws://h/a#b"), Err(UrlError::Fragment));
    assert_eq!(WsUrl::parse("ws://h/a%23b").unwrap().resource, "/a%23b");
    assert_eq!(WsUrl::parse("ws://h:0/"), Err(UrlError::Port));
    assert_eq!(WsUrl::parse("ws://h:x/"), Err(UrlError::Port));
    assert_eq!(WsUrl::parse("ws:///"), Err(UrlError::Host));
    assert_eq!(WsUrl::parse("ws://user@h/"), Err(UrlError::Host));
}

/// §11.1.1 and §11.1.2 ask for a non-ASCII host to be converted to ASCII (IDNA); that is not
/// implemented (an exception in `WsUrl::parse`): such a host is refused, and its A-label form is
/// accepted.
#[test]
fn a_non_ascii_host_is_refused_and_its_a_label_accepted() {
    for url in [
        "ws://b\u{fc}cher.example/",
        "wss://b\u{fc}cher.example:8443/chat",
    ] {
        assert_eq!(WsUrl::parse(url), Err(UrlError::Host), "{url}");
    }
    let url = WsUrl::parse("wss://xn--bcher-kva.example/").unwrap();
    assert_eq!(
        (url.host.as_str(), url.port),
        ("xn--bcher-kva.example", 443)
    );
}

//= https://www.rfc-editor.org/rfc/rfc6455#section-11.1.1
//= type=test
//# Characters in other components that are excluded by the syntax
//# defined above MUST be converted from Unicode to ASCII by first
//# encoding the characters as UTF-8 and then replacing the
//# corresponding bytes using their percent-encoded form as defined in
//# the URI [RFC3986] and Internationalized Resource Identifier (IRI)
//# [RFC3987] specifications.
//
//= https://www.rfc-editor.org/rfc/rfc6455#section-11.1.2
//= type=test
//# Characters in other components that are excluded by the syntax
//# defined above MUST be converted from Unicode to ASCII by first
//# encoding the characters as UTF-8 and then replacing the
//# corresponding bytes using their percent-encoded form as defined in
//# the URI [RFC3986] and IRI [RFC3987] specifications.
#[test]
fn a_resource_is_percent_encoded_where_uri_syntax_excludes_a_character() {
    let resource = |url: &str| WsUrl::parse(url).unwrap().resource;
    assert_eq!(resource("ws://h/a b"), "/a%20b");
    assert_eq!(resource("wss://h/a b?\u{e9}"), "/a%20b?%C3%A9");
    assert_eq!(
        resource("ws://h/caf\u{e9}?q=\u{e9}t\u{e9}"),
        "/caf%C3%A9?q=%C3%A9t%C3%A9"
    );
    assert_eq!(
        resource("ws://h/\"<>[\\]^`{|}\t"),
        "/%22%3C%3E%5B%5C%5D%5E%60%7B%7C%7D%09"
    );
    // Already encoded, and every character RFC 3986 allows, stay as they are.
    assert_eq!(resource("ws://h/a%20b"), "/a%20b");
    let allowed = "/AZaz09-._~!$&'()*+,;=:@/?x=%41";
    assert_eq!(resource(&format!("ws://h{allowed}")), allowed);
}

//= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
//= type=test
//# The handshake MUST be a valid HTTP request as specified by
//# [RFC2616].
//
//= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
//= type=test
//# The method of the request MUST be GET, and the HTTP version MUST
//# be at least 1.1.
//
//= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
//= type=test
//# The request MUST contain an |Upgrade| header field whose value
//# MUST include the "websocket" keyword.
//
//= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
//= type=test
//# The request MUST contain a |Connection| header field whose value
//# MUST include the "Upgrade" token.
//
//= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
//= type=test
//# The request MUST include a header field with the name
//# |Sec-WebSocket-Key|.  The value of this header field MUST be a
//# nonce consisting of a randomly selected 16-byte value that has
//# been base64-encoded (see Section 4 of [RFC4648]).
//
//= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
//= type=test
//# 9.   The request MUST include a header field with the name
//# |Sec-WebSocket-Version|.  The value of this header field MUST be
//# 13.
#[test]
fn the_request_has_every_required_field() {
    let request = ClientRequest {
        host: "server.example.com".into(),
        resource: "/chat".into(),
        origin: Some("http://example.com".into()),
        protocols: vec!["chat".into(), "superchat".into()],
        headers: vec![("Authorization".into(), "Bearer x".into())],
    };
    let mut out = Vec::new();
    write_request(&request, KEY, Some("permessage-deflate"), &mut out);
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        text,
        "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nOrigin: http://example.com\r\n\
         Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\
         Authorization: Bearer x\r\n\r\n"
    );
    // The server side of the crate accepts what the client side writes.
    let request = crate::handshake::parse_request(text.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(
        crate::handshake::validate_upgrade(&request).unwrap().key,
        KEY
    );
}

//= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
//= type=test
//# The "Request-URI" part of the request MUST match the /resource
//# name/ defined in Section 3 (a relative URI) or be an absolute
//# http/https URI that, when parsed, has a /resource name/, /host/,
//# and /port/ that match the corresponding ws/wss URI.
//
//= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
//= type=test
//# The request MUST contain a |Host| header field whose value
//# contains /host/ plus optionally ":" followed by /port/ (when not
//# using the default port).
#[test]
fn a_request_for_a_url_names_its_resource_and_host() {
    for (url, line, host) in [
        (
            "ws://example.com/chat",
            "GET /chat HTTP/1.1\r\n",
            "Host: example.com\r\n",
        ),
        (
            "ws://example.com:80/",
            "GET / HTTP/1.1\r\n",
            "Host: example.com\r\n",
        ),
        (
            "wss://example.com:443?q",
            "GET /?q HTTP/1.1\r\n",
            "Host: example.com\r\n",
        ),
        (
            "ws://example.com:8080/a?b=c",
            "GET /a?b=c HTTP/1.1\r\n",
            "Host: example.com:8080\r\n",
        ),
        (
            "wss://[::1]:80/",
            "GET / HTTP/1.1\r\n",
            "Host: [::1]:80\r\n",
        ),
    ] {
        let mut out = Vec::new();
        write_request(
            &ClientRequest::for_url(&WsUrl::parse(url).unwrap()),
            KEY,
            None,
            &mut out,
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(&format!("{line}{host}")), "{url}: {text}");
    }
}

#[test]
fn a_header_that_would_split_the_request_is_left_out() {
    let request = ClientRequest {
        host: "h".into(),
        resource: "/".into(),
        headers: vec![("X-Bad".into(), "a\r\nHost: evil".into())],
        ..ClientRequest::default()
    };
    let mut out = Vec::new();
    write_request(&request, KEY, None, &mut out);
    assert!(!String::from_utf8(out).unwrap().contains("evil"));
}

//= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
//= type=test
//# The request MUST include a header field with the name
//# |Sec-WebSocket-Key|.  The value of this header field MUST be a
//# nonce consisting of a randomly selected 16-byte value that has
//# been base64-encoded (see Section 4 of [RFC4648]).
#[test]
fn the_key_is_16_bytes_in_base64() {
    assert_eq!(new_key([0; 16]), "AAAAAAAAAAAAAAAAAAAAAA==");
}

#[test]
fn accepts_the_rfc_1_3_response() {
    let accepted = check(&response(""), &ClientRequest::default()).unwrap();
    assert_eq!(
        accepted,
        Accepted {
            protocol: None,
            deflate: None
        }
    );
}

//= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
//= type=test
//# The client MUST validate the server's response as follows:
//
//= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
//= type=test
//# 2.  If the response lacks an |Upgrade| header field or the |Upgrade|
//# header field contains a value that is not an ASCII case-
//# insensitive match for the value "websocket", the client MUST
//# _Fail the WebSocket Connection_.
//
//= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
//= type=test
//# 3.  If the response lacks a |Connection| header field or the
//# |Connection| header field doesn't contain a token that is an
//# ASCII case-insensitive match for the value "Upgrade", the client
//# MUST _Fail the WebSocket Connection_.
//
//= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
//= type=test
//# 4.  If the response lacks a |Sec-WebSocket-Accept| header field or
//# the |Sec-WebSocket-Accept| contains a value other than the
//# base64-encoded SHA-1 of the concatenation of the |Sec-WebSocket-
//# Key| (as a string, not base64-decoded) with the string "258EAFA5-
//# E914-47DA-95CA-C5AB0DC85B11" but ignoring any leading and
//# trailing whitespace, the client MUST _Fail the WebSocket
//# Connection_.
//
//= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
//= type=test
//# 5.  If the response includes a |Sec-WebSocket-Extensions| header
//# field and this header field indicates the use of an extension
//# that was not present in the client's handshake (the server has
//# indicated an extension not requested by the client), the client
//# MUST _Fail the WebSocket Connection_.
//
//= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
//= type=test
//# 6.  If the response includes a |Sec-WebSocket-Protocol| header field
//# and this header field indicates the use of a subprotocol that was
//# not present in the client's handshake (the server has indicated a
//# subprotocol not requested by the client), the client MUST _Fail
//# the WebSocket Connection_.
#[test]
fn each_rule_of_section_4_1_fails_on_its_own() {
    let plain = ClientRequest::default();
    let cases: &[(Vec<u8>, ResponseError)] = &[
        (response("")[..10].to_vec(), ResponseError::Malformed),
        (
            String::from_utf8(response(""))
                .unwrap()
                .replace("Upgrade: websocket\r\n", "")
                .into_bytes(),
            ResponseError::MissingUpgrade,
        ),
        (
            String::from_utf8(response(""))
                .unwrap()
                .replace("Connection: Upgrade\r\n", "Connection: keep-alive\r\n")
                .into_bytes(),
            ResponseError::MissingConnectionUpgrade,
        ),
        (
            String::from_utf8(response(""))
                .unwrap()
                .replace("xOo=", "xOx=")
                .into_bytes(),
            ResponseError::WrongAccept,
        ),
        (
            response("Sec-WebSocket-Extensions: x-unknown\r\n"),
            ResponseError::ExtensionNotOffered,
        ),
        (
            response("Sec-WebSocket-Protocol: chat\r\n"),
            ResponseError::ProtocolNotOffered,
        ),
    ];
    for (head, error) in cases {
        assert_eq!(check(head, &plain).as_ref(), Err(error), "{error:?}");
    }
}

//= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
//= type=test
//# 1.  If the status code received from the server is not 101, the
//# client handles the response per HTTP [RFC2616] procedures.
#[test]
fn a_refusal_keeps_its_status_and_headers() {
    let head =
        b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nContent-Length: 0\r\n\r\n";
    let Err(ResponseError::Refused(refusal)) = check(head, &ClientRequest::default()) else {
        panic!("a refusal")
    };
    assert_eq!(refusal.status, 401);
    assert_eq!(refusal.reason, "Unauthorized");
    assert_eq!(
        refusal.headers[0],
        ("WWW-Authenticate".to_string(), "Bearer".to_string())
    );
}

//= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
//= type=test
//# 6.  If the response includes a |Sec-WebSocket-Protocol| header field
//# and this header field indicates the use of a subprotocol that was
//# not present in the client's handshake (the server has indicated a
//# subprotocol not requested by the client), the client MUST _Fail
//# the WebSocket Connection_.
#[test]
fn a_subprotocol_must_be_one_that_was_offered() {
    let offered = ClientRequest {
        protocols: vec!["chat".into(), "superchat".into()],
        ..ClientRequest::default()
    };
    let accepted = check(&response("Sec-WebSocket-Protocol: superchat\r\n"), &offered).unwrap();
    assert_eq!(accepted.protocol.as_deref(), Some("superchat"));
    assert_eq!(
        check(&response("Sec-WebSocket-Protocol: mqtt\r\n"), &offered),
        Err(ResponseError::ProtocolNotOffered)
    );
}

//= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
//= type=test
//# 5.  If the response includes a |Sec-WebSocket-Extensions| header
//# field and this header field indicates the use of an extension
//# that was not present in the client's handshake (the server has
//# indicated an extension not requested by the client), the client
//# MUST _Fail the WebSocket Connection_.
#[test]
fn permessage_deflate_answers_are_checked() {
    let plain = ClientRequest::default();
    let accepted = |value: &str| {
        check(
            &response(&format!("Sec-WebSocket-Extensions: {value}\r\n")),
            &plain,
        )
        .map(|a| a.deflate.unwrap())
    };
    let negotiated = accepted("permessage-deflate").unwrap();
    assert_eq!(
        (negotiated.our_window_bits, negotiated.peer_resets_context),
        (15, false)
    );
    let negotiated = accepted(
        "permessage-deflate; server_no_context_takeover; client_max_window_bits=10; server_max_window_bits=12",
    )
    .unwrap();
    assert_eq!(
        (negotiated.our_window_bits, negotiated.peer_resets_context),
        (10, true)
    );
    assert_eq!(
        accepted("permessage-deflate; client_max_window_bits=8")
            .unwrap()
            .our_window_bits,
        8
    );
    for bad in [
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; mystery",
        "permessage-deflate; client_no_context_takeover=1",
    ] {
        assert_eq!(accepted(bad), Err(ResponseError::InvalidExtension), "{bad}");
    }
    assert_eq!(
        accepted("permessage-deflate, permessage-deflate"),
        Err(ResponseError::ExtensionNotOffered)
    );
    let disabled = DeflateConfig {
        enabled: false,
        ..DeflateConfig::default()
    };
    assert_eq!(
        check_response(
            &response("Sec-WebSocket-Extensions: permessage-deflate\r\n"),
            KEY,
            &plain,
            &disabled,
            &Limits::default()
        ),
        Err(ResponseError::ExtensionNotOffered),
        "not offered"
    );
}

//= https://www.rfc-editor.org/rfc/rfc6455#section-4.1
//= type=test
//# The elements that comprise this value
//# MUST be non-empty strings with characters in the range U+0021 to
//# U+007E not including separator characters as defined in
//# [RFC2616] and MUST all be unique strings.
#[test]
fn subprotocols_offered_are_unique_tokens() {
    let offering = |protocols: &[&str]| ClientRequest {
        protocols: protocols.iter().map(|p| p.to_string()).collect(),
        ..ClientRequest::default()
    };
    assert_eq!(check_request(&offering(&[])), Ok(()));
    assert_eq!(
        check_request(&offering(&["chat", "v2.json", "a~b"])),
        Ok(())
    );
    for bad in [
        "",
        "a b",
        "a,b",
        "a;b",
        "a/b",
        "caf\u{e9}",
        "a\"",
        "{x}",
        "a\tb",
    ] {
        assert_eq!(
            check_request(&offering(&["chat", bad])),
            Err(RequestError::InvalidProtocol(bad.to_string())),
            "{bad:?}"
        );
    }
    assert_eq!(
        check_request(&offering(&["a", "b", "a"])),
        Err(RequestError::DuplicateProtocol("a".to_string()))
    );
}

//= https://www.rfc-editor.org/rfc/rfc6455#section-3
//= type=test
//# host = <host, defined in [RFC3986], Section 3.2.2>
#[test]
fn an_ipv6_host_keeps_its_brackets_and_its_colons_are_not_a_port() {
    let url = WsUrl::parse("ws://[::1]/chat").unwrap();
    assert_eq!((url.host.as_str(), url.port), ("[::1]", 80));
    assert_eq!(url.authority(), "[::1]");
    let url = WsUrl::parse("wss://[2001:db8::7]:8443/").unwrap();
    assert_eq!((url.host.as_str(), url.port), ("[2001:db8::7]", 8443));
    assert_eq!(url.authority(), "[2001:db8::7]:8443");
}

#[test]
fn a_host_is_a_name_or_something_in_brackets() {
    for good in ["ws://a/", "ws://a-b.c_d~e%41/", "ws://[v]/"] {
        assert!(WsUrl::parse(good).is_ok(), "{good}");
    }
    for bad in [
        "ws://[]/",
        "ws://[/",
        "ws://[abc/",
        "ws://abc]/",
        "ws://a!b/",
        "ws://a b/",
    ] {
        assert_eq!(WsUrl::parse(bad), Err(UrlError::Host), "{bad}");
    }
}

#[test]
fn each_url_error_says_what_is_wrong() {
    assert_eq!(
        UrlError::Scheme.to_string(),
        "the scheme is not ws:// or wss://"
    );
    assert_eq!(
        UrlError::Host.to_string(),
        "the host is missing or malformed"
    );
    assert_eq!(
        UrlError::Port.to_string(),
        "the port is not a number from 1 to 65535"
    );
    assert_eq!(
        UrlError::Fragment.to_string(),
        "a WebSocket URL has no fragment"
    );
}

#[test]
fn a_request_for_a_url_asks_for_its_host_and_resource_only() {
    let url = WsUrl::parse("ws://example.com:8080/chat?room=a").unwrap();
    assert_eq!(
        ClientRequest::for_url(&url),
        ClientRequest {
            host: "example.com:8080".into(),
            resource: "/chat?room=a".into(),
            origin: None,
            protocols: Vec::new(),
            headers: Vec::new(),
        }
    );
}

#[test]
fn each_response_error_names_its_rule_and_says_what_is_wrong() {
    let refused = ResponseError::Refused(Box::new(Refusal {
        status: 404,
        reason: "Not Found".into(),
        headers: Vec::new(),
    }));
    let cases = [
        (
            ResponseError::HeadTooLarge,
            "limit",
            "response head too large",
        ),
        (ResponseError::Malformed, "4.1", "malformed HTTP response"),
        (refused, "4.1", "refused: 404 Not Found"),
        (
            ResponseError::MissingUpgrade,
            "4.1",
            "no Upgrade: websocket in the response",
        ),
        (
            ResponseError::MissingConnectionUpgrade,
            "4.1",
            "no Connection: Upgrade in the response",
        ),
        (
            ResponseError::WrongAccept,
            "4.1",
            "Sec-WebSocket-Accept does not match",
        ),
        (
            ResponseError::ExtensionNotOffered,
            "4.1",
            "an extension that was not offered",
        ),
        (
            ResponseError::InvalidExtension,
            "RFC 7692 7.1",
            "invalid Sec-WebSocket-Extensions",
        ),
        (
            ResponseError::ProtocolNotOffered,
            "4.1",
            "a subprotocol that was not offered",
        ),
    ];
    for (error, section, text) in cases {
        assert_eq!(error.section(), section, "{error:?}");
        assert_eq!(error.to_string(), text, "{error:?}");
    }
}
