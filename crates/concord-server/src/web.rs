//! The built-in web client: a handful of HTML, CSS and JavaScript-module files
//! embedded in the binary, served at `/` (the page) and `/app/{file}` (its assets).
//!
//! It is a middleware in front of the API rather than a set of routes: these are not
//! API endpoints (`/openapi.json` does not list them, and they are not rate-limited:
//! they are constant bytes from memory). Each answer carries an `ETag` (a hash of the
//! file) with `Cache-Control: no-cache`, so a browser revalidates cheaply and never
//! runs a stale client after an upgrade, and a Content-Security-Policy that allows
//! exactly what the client needs: its own scripts, styles and images, and connections
//! to this origin over HTTP and WebSocket. No inline script or style, no `eval`.

use std::sync::LazyLock;

use axum::{
    body::Body,
    extract::Request,
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};

/// One embedded file.
struct Asset {
    /// Name under `/app/`.
    name: &'static str,
    /// Its content type.
    content_type: &'static str,
    /// Its bytes.
    body: &'static [u8],
}

/// Every file of the client. `index.html` is also the page at `/`.
const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../web/index.html"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../web/app.css"),
    },
    Asset {
        name: "main.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/main.js"),
    },
    Asset {
        name: "api.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/api.js"),
    },
    Asset {
        name: "session.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/session.js"),
    },
    Asset {
        name: "gateway.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/gateway.js"),
    },
    Asset {
        name: "chat.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/chat.js"),
    },
    Asset {
        name: "admin.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/admin.js"),
    },
    Asset {
        name: "dom.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/dom.js"),
    },
    Asset {
        name: "voice.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/voice.js"),
    },
    Asset {
        name: "resample.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/resample.js"),
    },
    Asset {
        name: "capture-worklet.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/capture-worklet.js"),
    },
    Asset {
        name: "playback-worklet.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/playback-worklet.js"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../web/icon.svg"),
    },
];

/// The strong validator of each asset, in the order of [`ASSETS`].
static ETAGS: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            let digest = Sha256::digest(asset.body);
            let tag = format!("\"{}\"", hex::encode(&digest[..12]));
            HeaderValue::from_str(&tag).expect("hex is a valid header value")
        })
        .collect()
});

/// The asset a request path names, if any: `/` and `/index.html` are the page;
/// `/app/{name}` an asset. Not under `/api`, which is the API's alone.
fn lookup(path: &str) -> Option<usize> {
    let name = match path {
        "/" | "/index.html" => "index.html",
        _ => path.strip_prefix("/app/")?,
    };
    ASSETS.iter().position(|asset| asset.name == name)
}

/// Serves the client's files for `GET`/`HEAD` requests naming one; passes every other
/// request on. A `HEAD` or `GET` of `/app/…` naming no file gets 404 here (the API
/// has nothing under `/app`).
pub async fn serve_client(request: Request, next: Next) -> Response {
    let method = request.method();
    if method != Method::GET && method != Method::HEAD {
        return next.run(request).await;
    }
    let path = request.uri().path();
    let Some(index) = lookup(path) else {
        if path.starts_with("/app/") {
            return crate::error::ApiError::not_found("No such file").into_response();
        }
        return next.run(request).await;
    };
    let asset = &ASSETS[index];
    let etag = &ETAGS[index];
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(header::ETAG, etag.clone());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Some(csp) = policy(request.headers().get(header::HOST)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    let fresh = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .any(|t| t.trim() == "*" || t.trim().trim_start_matches("W/") == etag)
        });
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    let body = if request.method() == Method::HEAD {
        Body::empty()
    } else {
        Body::from(asset.body)
    };
    (StatusCode::OK, headers, body).into_response()
}

/// The client's Content-Security-Policy: scripts, styles, images and fetches from this
/// origin only, and the WebSocket to this host (`'self'` does not cover `ws:`/`wss:`
/// in every browser, so the host is named). `None` when the `Host` header is not a
/// plain host\[:port\] (the answer then keeps the API's `default-src 'none'`, under
/// which the client does not run: nothing of a strange header is echoed).
fn policy(host: Option<&HeaderValue>) -> Option<HeaderValue> {
    let host = host?.to_str().ok()?;
    let plain = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if !plain {
        return None;
    }
    let text = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         connect-src 'self' ws://{host} wss://{host}; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'"
    );
    HeaderValue::from_str(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_assets_and_nothing_else() {
        assert_eq!(lookup("/").map(|i| ASSETS[i].name), Some("index.html"));
        assert_eq!(
            lookup("/app/main.js").map(|i| ASSETS[i].name),
            Some("main.js")
        );
        for other in [
            "/app/",
            "/app/../Cargo.toml",
            "/api/",
            "/servers",
            "/app/x.js",
        ] {
            assert_eq!(lookup(other), None, "{other}");
        }
    }

    #[test]
    fn the_policy_names_the_host_only_when_it_is_plain() {
        let csp = policy(Some(&HeaderValue::from_static("127.0.0.1:8080"))).unwrap();
        let csp = csp.to_str().unwrap();
        assert!(csp.contains("connect-src 'self' ws://127.0.0.1:8080 wss://127.0.0.1:8080"));
        assert!(!csp.contains("unsafe"));
        for bad in ["a b", "x;script-src *", "", "host/'"] {
            assert!(
                policy(Some(&HeaderValue::from_str(bad).unwrap())).is_none(),
                "{bad}"
            );
        }
        assert!(policy(None).is_none());
    }

    #[test]
    fn every_module_import_names_an_embedded_file() {
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let text = std::str::from_utf8(asset.body).unwrap();
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let target = line
                    .rsplit("from")
                    .next()
                    .unwrap()
                    .trim()
                    .trim_end_matches(';')
                    .trim_matches(|c| c == '"' || c == '\'');
                let name = target.trim_start_matches("./");
                assert!(
                    ASSETS.iter().any(|a| a.name == name),
                    "{} imports {target}, which is not embedded",
                    asset.name
                );
            }
        }
    }
}
