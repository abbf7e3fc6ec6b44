//! The browser `Origin` check: a request that names an origin is served only when that
//! origin is this server's own host or one of `cors_origins`. Bearer tokens are not
//! sent by browsers on their own, but a page elsewhere that got hold of one (or a
//! gateway URL with `?token=`) could otherwise drive the API and the gateway from a
//! victim's browser. Clients that send no `Origin` (bots, the SDK, curl) are
//! unaffected. `Origin: null` (sandboxed frames, `file:` pages) is refused.

use axum::{
    extract::{Request, State},
    http::{HeaderValue, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{error::ApiError, state::AppState};

/// Refuses, with 403 before anything else runs (the WebSocket upgrade included), a
/// request whose `Origin` is neither this host nor configured.
pub async fn check_origin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let host = request.headers().get(header::HOST);
        if !allowed(origin, host, &state.config.cors_origins) {
            return ApiError::forbidden("Origin not allowed").into_response();
        }
    }
    next.run(request).await
}

/// Whether a request from `origin` to `host` may be served, given the configured
/// origins (`"*"`: any).
pub fn allowed(origin: &HeaderValue, host: Option<&HeaderValue>, configured: &[String]) -> bool {
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if origin.eq_ignore_ascii_case("null") {
        return false;
    }
    if configured
        .iter()
        .any(|o| o == "*" || o.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let Some(host) = host.and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return false,
    };
    let normalize = |authority: &str| {
        let lower = authority.trim_end_matches('/').to_ascii_lowercase();
        match lower.strip_suffix(default_port) {
            Some(bare) => bare.to_owned(),
            None => lower,
        }
    };
    normalize(authority) == normalize(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(origin: &str, host: Option<&str>, configured: &[&str]) -> bool {
        let configured: Vec<String> = configured.iter().map(|s| (*s).to_owned()).collect();
        allowed(
            &HeaderValue::from_str(origin).unwrap(),
            host.map(|h| HeaderValue::from_str(h).unwrap()).as_ref(),
            &configured,
        )
    }

    #[test]
    fn the_own_host_passes_whatever_the_case_or_default_port() {
        assert!(ok("http://chat.example.org", Some("chat.example.org"), &[]));
        assert!(ok(
            "http://Chat.Example.org",
            Some("chat.example.org:80"),
            &[]
        ));
        assert!(ok(
            "https://chat.example.org",
            Some("chat.example.org:443"),
            &[]
        ));
        assert!(ok("http://127.0.0.1:8080", Some("127.0.0.1:8080"), &[]));
    }

    #[test]
    fn other_hosts_ports_and_schemes_do_not() {
        assert!(!ok("http://evil.example", Some("chat.example.org"), &[]));
        assert!(!ok("http://127.0.0.1:9999", Some("127.0.0.1:8080"), &[]));
        assert!(!ok(
            "http://chat.example.org.evil",
            Some("chat.example.org"),
            &[]
        ));
        assert!(!ok("ftp://chat.example.org", Some("chat.example.org"), &[]));
        assert!(!ok("http://chat.example.org", None, &[]));
        assert!(!ok("null", Some("chat.example.org"), &[]));
        assert!(!ok("null", Some("chat.example.org"), &["*"]));
    }

    #[test]
    fn configured_origins_pass() {
        let list = ["https://app.example.org"];
        assert!(ok(
            "https://app.example.org",
            Some("api.example.org"),
            &list
        ));
        assert!(!ok(
            "https://other.example.org",
            Some("api.example.org"),
            &list
        ));
        assert!(ok(
            "https://anything.example",
            Some("api.example.org"),
            &["*"]
        ));
    }
}
