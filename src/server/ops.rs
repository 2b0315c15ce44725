//! The shell's own HTTP routes, for operators, answered before the application's
//! [`on_http`](super::Handler::on_http) whatever the handler:
//!
//! - `GET /metrics`: the counters in the Prometheus text exposition format 0.0.4;
//! - `GET /healthz`: `200` while the loop runs, `503` once it is shutting down (so that a load
//!   balancer stops sending clients before the connections are closed).
//!
//! They are served on the WebSocket port, or, when [`Config::metrics_addr`](super::Config) is
//! set, only on that second listener (which then serves nothing else).

use super::stats::{EXPOSITION_CONTENT_TYPE, Stats};
use crate::handshake::Request;
use crate::http::Response;

/// The route that serves the counters ([`Stats`]) in the Prometheus text exposition format
/// 0.0.4. The server answers it itself, before the handler's `on_http`: on the WebSocket port,
/// or only on [`Config::metrics_addr`](super::Config::metrics_addr) when that is set.
pub const METRICS_PATH: &str = "/metrics";
/// The health route: `200 ok` while the loop runs, `503` once it is shutting down. Served like
/// [`METRICS_PATH`].
pub const HEALTH_PATH: &str = "/healthz";

/// The answer to `request` if it is for one of the routes, `None` otherwise.
pub(crate) fn answer(
    request: &Request<'_>,
    stats: &Stats,
    shutting_down: bool,
) -> Option<Response> {
    let path = request.path.split('?').next().unwrap_or_default();
    if path != METRICS_PATH && path != HEALTH_PATH {
        return None;
    }
    let head_only = request.method == "HEAD";
    if request.method != "GET" && !head_only {
        return Some(Response::text(405, "method not allowed\n").header("Allow", "GET, HEAD"));
    }
    let response = if path == METRICS_PATH {
        let mut body = String::with_capacity(4096);
        stats.write_exposition(&mut body);
        Response::new(200).with_body(EXPOSITION_CONTENT_TYPE, body.into_bytes())
    } else if shutting_down {
        Response::text(503, "shutting down\n")
    } else {
        Response::text(200, "ok\n")
    };
    let response = response.header("Cache-Control", "no-store");
    Some(if head_only {
        response.without_body()
    } else {
        response
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(method: &'a str, path: &'a str) -> Request<'a> {
        Request {
            method,
            path,
            minor_version: 1,
            headers: Vec::new(),
        }
    }

    #[test]
    fn healthz_is_200_until_the_shutdown_then_503() {
        let stats = Stats::default();
        let running = answer(&request("GET", "/healthz"), &stats, false).unwrap();
        assert_eq!((running.status(), running.body()), (200, &b"ok\n"[..]));
        let stopping = answer(&request("GET", "/healthz"), &stats, true).unwrap();
        assert_eq!(stopping.status(), 503);
    }

    #[test]
    fn metrics_is_the_exposition_format() {
        let stats = Stats {
            accepted: 7,
            ..Stats::default()
        };
        let response = answer(&request("GET", "/metrics?x=1"), &stats, true).unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.header_value("Content-Type"),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        let body = std::str::from_utf8(response.body()).unwrap();
        assert!(
            body.contains("\nrfc6455_connections_accepted_total 7\n"),
            "{body}"
        );
    }

    #[test]
    fn other_paths_are_left_to_the_application_and_other_methods_get_405() {
        let stats = Stats::default();
        assert!(answer(&request("GET", "/"), &stats, false).is_none());
        assert!(answer(&request("GET", "/metrics/x"), &stats, false).is_none());
        let post = answer(&request("POST", "/metrics"), &stats, false).unwrap();
        assert_eq!(post.status(), 405);
        assert_eq!(post.header_value("Allow"), Some("GET, HEAD"));
        let head = answer(&request("HEAD", "/healthz"), &stats, false).unwrap();
        let mut out = Vec::new();
        head.write_to(&mut out);
        assert!(out.ends_with(b"Content-Length: 3\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\n\r\n"));
    }
}
