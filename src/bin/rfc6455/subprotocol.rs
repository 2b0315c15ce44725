//! `--subprotocol`: the subprotocols the server speaks, and the choice from a client's offer
//! (RFC 6455 §4.2.2 item 5.4), made once here for both modes' `Handler::on_upgrade`.

use rfc6455::Request;
use rfc6455::server::Upgrade;

/// The subprotocols listed with `--subprotocol`, in the order given.
#[derive(Debug, Clone, Default)]
pub struct Subprotocols(Vec<String>);

impl Subprotocols {
    /// The list from the command line. Each name must be an HTTP token (RFC 9110 §5.6.2), as
    /// `Sec-WebSocket-Protocol` values are, or `*`.
    pub fn new(names: &[String]) -> Result<Self, String> {
        for name in names {
            let token = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !token {
                return Err(format!("--subprotocol: {name:?} is not a token"));
            }
        }
        Ok(Subprotocols(names.to_vec()))
    }

    /// The first subprotocol in the client's offer (its order of preference) that is listed; if
    /// `*` is listed, the client's first. `None` when nothing matches: the connection then
    /// opens without a subprotocol, and a client that needs one closes it (§4.1).
    pub fn choose<'a>(&self, mut offered: impl Iterator<Item = &'a str>) -> Option<&'a str> {
        if self.0.iter().any(|name| name == "*") {
            return offered.next();
        }
        offered.find(|offer| self.0.iter().any(|name| name == offer))
    }

    /// The answer to an upgrade request: accept it, with the chosen subprotocol if any.
    pub fn answer(&self, request: &Request<'_>) -> Upgrade {
        match self.choose(request.protocols()) {
            Some(protocol) => Upgrade::accept_with(protocol),
            None => Upgrade::accept(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choose<'a>(listed: &[&str], offered: &[&'a str]) -> Option<&'a str> {
        let listed: Vec<String> = listed.iter().map(|s| s.to_string()).collect();
        Subprotocols::new(&listed)
            .unwrap()
            .choose(offered.iter().copied())
    }

    #[test]
    fn chooses_the_clients_first_listed_offer() {
        assert_eq!(choose(&["chat"], &["superchat", "chat"]), Some("chat"));
        assert_eq!(
            choose(&["chat", "superchat"], &["superchat", "chat"]),
            Some("superchat")
        );
        assert_eq!(
            choose(&["chat"], &["Chat"]),
            None,
            "names are compared exactly"
        );
        assert_eq!(choose(&["chat"], &[]), None);
        assert_eq!(choose(&[], &["chat"]), None);
    }

    #[test]
    fn a_star_accepts_the_clients_first() {
        assert_eq!(choose(&["*"], &["superchat", "chat"]), Some("superchat"));
        assert_eq!(
            choose(&["chat", "*"], &["superchat", "chat"]),
            Some("superchat")
        );
        assert_eq!(choose(&["*"], &[]), None);
    }

    #[test]
    fn refuses_a_name_that_is_not_a_token() {
        for bad in ["", "a b", "a,b", "chat\r\n"] {
            assert!(Subprotocols::new(&[bad.to_owned()]).is_err(), "{bad:?}");
        }
    }
}
