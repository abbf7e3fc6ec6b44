//! The JSON bodies of the REST routes, through the real router, store and handlers (in
//! process, on a temporary SQLite database): every route of `/openapi.json` that takes
//! a body gets the fuzzer's bytes as its body, with a valid token and ids that exist.
//! Whatever the body, the answer is a 2xx or a 4xx with the JSON error body of rest.md,
//! never a 5xx or a panic.
//!
//! The first input byte picks the route; the rest is the body. `/auth/logout` is left
//! out: a body without a token logs the fuzzer's own user out and would turn every
//! later input into a 401.

#![no_main]

use std::{net::SocketAddr, sync::OnceLock};

use axum::{
    Router,
    body::Body,
    extract::ConnectInfo,
    http::{Request, header},
};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use tower::ServiceExt;

struct Rig {
    runtime: tokio::runtime::Runtime,
    router: Router,
    token: String,
    /// (method, concrete path) of every route that takes a body.
    routes: Vec<(String, String)>,
}

static RIG: OnceLock<Rig> = OnceLock::new();

async fn call(
    router: &Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> (u16, Vec<u8>) {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let mut request = request.body(Body::from(body)).expect("request");
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .expect("body");
    (status, bytes.to_vec())
}

async fn json_call(
    router: &Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> Value {
    let (status, bytes) = call(router, method, path, token, body.to_string().into_bytes()).await;
    assert!(
        status < 300,
        "set-up {method} {path}: {status} {}",
        String::from_utf8_lossy(&bytes)
    );
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

fn rig() -> &'static Rig {
    RIG.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let dir = std::env::temp_dir().join(format!("concord-fuzz-rest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (router, token, routes) = runtime.block_on(async {
            let config = concord_testkit::test_config(dir);
            let store = concord_server::open_store(&config).await.expect("store");
            let state = concord_server::build_state(config, store)
                .await
                .expect("state");
            let router = concord_server::router(state);
            let auth = json_call(
                &router,
                "POST",
                "/auth/register",
                None,
                json!({"username": "fuzzer", "password": "correct-horse-42"}),
            )
            .await;
            let token = auth["access_token"].as_str().expect("token").to_owned();
            let user = auth["user"]["id"].as_str().expect("user id").to_owned();
            let server = json_call(
                &router,
                "POST",
                "/servers",
                Some(&token),
                json!({"name": "fuzz"}),
            )
            .await;
            let server_id = server["id"].as_str().expect("server id").to_owned();
            let channel = json_call(
                &router,
                "POST",
                &format!("/servers/{server_id}/channels"),
                Some(&token),
                json!({"name": "general", "type": "text"}),
            )
            .await;
            let channel_id = channel["id"].as_str().expect("channel id").to_owned();
            let message = json_call(
                &router,
                "POST",
                &format!("/channels/{channel_id}/messages"),
                Some(&token),
                json!({"content": "seed"}),
            )
            .await;
            let message_id = message["id"].as_str().expect("message id").to_owned();
            let role = json_call(
                &router,
                "POST",
                &format!("/servers/{server_id}/roles"),
                Some(&token),
                json!({"name": "fuzzers"}),
            )
            .await;
            let role_id = role["id"].as_str().unwrap_or(&server_id).to_owned();

            let (_, spec) = call(&router, "GET", "/openapi.json", None, Vec::new()).await;
            let spec: Value = serde_json::from_slice(&spec).expect("openapi.json");
            let mut routes = Vec::new();
            for (path, item) in spec["paths"].as_object().expect("paths") {
                if path == "/auth/logout" {
                    continue;
                }
                for (method, operation) in item.as_object().expect("path item") {
                    if operation.get("requestBody").is_none() {
                        continue;
                    }
                    let concrete = fill(
                        path,
                        &[
                            ("server", &server_id),
                            ("channel", &channel_id),
                            ("message", &message_id),
                            ("role", &role_id),
                            ("user", &user),
                        ],
                    );
                    routes.push((method.to_uppercase(), concrete));
                }
            }
            routes.sort();
            (router, token, routes)
        });
        assert!(!routes.is_empty(), "no route takes a body?");
        Rig {
            runtime,
            router,
            token,
            routes,
        }
    })
}

/// Replaces each `{…}` of `path` with the id whose kind its name mentions (the
/// server's when none does).
fn fill(path: &str, ids: &[(&str, &String)]) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c);
        let name = &rest[open + 1..close];
        let id = ids
            .iter()
            .find(|(kind, _)| name.contains(kind))
            .map_or(ids[0].1, |(_, id)| id);
        // Path segments that are not ids (an emoji name, a status) get the id too;
        // they are answered 404 or 400, which is fine.
        out.push_str(id);
        rest = rest.get(close + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let rig = rig();
    let (method, path) = &rig.routes[usize::from(pick) % rig.routes.len()];
    let (status, bytes) = rig.runtime.block_on(call(
        &rig.router,
        method,
        path,
        Some(&rig.token),
        body.to_vec(),
    ));
    if std::env::var_os("CONCORD_FUZZ_VERBOSE").is_some() {
        eprintln!("{status} {method} {path}");
    }
    assert!(
        status < 500,
        "{method} {path} answered {status}: {}\nbody: {:?}",
        String::from_utf8_lossy(&bytes),
        String::from_utf8_lossy(body)
    );
    if status >= 400 {
        let error: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "{method} {path} {status} without a JSON body: {:?}",
                String::from_utf8_lossy(&bytes)
            )
        });
        assert!(
            error["error"].is_string(),
            "{method} {path} {status}: {error}"
        );
    }
});
