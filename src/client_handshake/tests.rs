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
    assert_eq!(WsUrl::parse("ws://h:0/"), Err(UrlError::Port));
    assert_eq!(WsUrl::parse("ws://h:x/"), Err(UrlError::Port));
    assert_eq!(WsUrl::parse("ws:///"), Err(UrlError::Host));
    assert_eq!(WsUrl::parse("ws://user@h/"), Err(UrlError::Host));
}

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
