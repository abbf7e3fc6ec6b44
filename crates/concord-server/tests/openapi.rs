//! `GET /openapi.json` against a real server: the document is OpenAPI 3.1, what it
//! documents is exactly what is routed, and real answers match its schemas.

use std::collections::{BTreeMap, BTreeSet};

use concord_server::error::UNROUTED;
use concord_testkit::{Response, TestServer, TestUser, sorted_keys};
use serde_json::{Value, json};

/// The methods a path item may have that axum routes (HEAD follows GET in axum).
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

async fn document(server: &TestServer, path: &str) -> Value {
    let res = server.api().get(path).await;
    assert_eq!(res.status, 200, "{path}: {}", res.text);
    assert_eq!(
        res.headers["content-type"], "application/json",
        "{path}: content type"
    );
    assert!(res.body.is_object(), "{path} is not a JSON object");
    res.body
}

/// Every (path, method) the document has, in order.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            if METHODS.contains(&method.as_str()) {
                out.push((path.clone(), method.clone(), operation.clone()));
            }
        }
    }
    out
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_an_operation_on_every_path() {
    let server = TestServer::start().await;
    let doc = document(&server, "/openapi.json").await;
    // Served as built, and the same under /api.
    assert_eq!(doc, document(&server, "/api/openapi.json").await);
    let built = serde_json::to_value(concord_server::routes::openapi::document()).unwrap();
    assert_eq!(doc, built);

    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "version {}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "Concord");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        doc["info"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("/api")),
        "the description says the API is also under /api"
    );

    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() > 25, "only {} paths", paths.len());
    for (path, item) in paths {
        let methods: Vec<&String> = item
            .as_object()
            .expect("path item")
            .keys()
            .filter(|k| METHODS.contains(&k.as_str()))
            .collect();
        assert!(!methods.is_empty(), "{path} has no operation");
    }

    let tags: BTreeSet<&str> = doc["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| t["name"].as_str().expect("tag name"))
        .collect();
    let mut ids = BTreeSet::new();
    for (path, method, operation) in operations(&doc) {
        let tag = operation["tags"][0].as_str().unwrap_or_default();
        assert!(
            tags.contains(tag),
            "{method} {path}: tag {tag:?} not declared"
        );
        let id = operation["operationId"].as_str().expect("operationId");
        assert!(ids.insert(id.to_owned()), "operationId {id} twice");
        let responses = operation["responses"].as_object().expect("responses");
        assert!(
            responses
                .keys()
                .any(|s| s.starts_with('1') || s.starts_with('2')),
            "{method} {path}: no success answer"
        );
        // Every documented error uses the one error body, except the gateway's
        // handshake refusals, which are plain text, and the health probes' 503, which
        // is the health body itself.
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                let content = response["content"].as_object().expect("error content");
                if path != "/ws" && !path.starts_with("/health") {
                    assert_eq!(
                        content["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }

    // Every reference points at a component.
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for reference in refs {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {reference}"));
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling $ref {reference}"
        );
    }
    server.shutdown().await;
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => collect_refs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn credentials_are_documented_where_the_principal_is_taken() {
    let server = TestServer::start().await;
    let doc = document(&server, "/openapi.json").await;
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    let public: BTreeSet<&str> = [
        "/auth/register",
        "/auth/login",
        "/auth/refresh",
        "/auth/reset-password",
        "/instance/registration-mode",
        "/health",
        "/health/live",
        "/health/ready",
        "/openapi.json",
        "/ws",
        "/metrics",
        // Custom emoji images are served to anyone (`rest.md` §2.1).
        "/emojis/{emoji_id}",
    ]
    .into();
    for (path, method, operation) in operations(&doc) {
        let schemes: BTreeSet<String> = operation["security"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| r.as_object().expect("requirement").keys().cloned())
            .collect();
        for scheme in &schemes {
            assert!(
                doc["components"]["securitySchemes"][scheme].is_object(),
                "{method} {path}: undeclared security scheme {scheme:?}"
            );
        }
        if public.contains(path.as_str()) {
            assert!(
                !schemes.contains("bearer") && !schemes.contains("bot_token"),
                "{method} {path} is public"
            );
            continue;
        }
        if path == "/bots/connect" {
            assert_eq!(schemes, BTreeSet::from(["bot_token".to_owned()]));
        } else {
            assert!(schemes.contains("bearer"), "{method} {path}: {schemes:?}");
        }
        // Without credentials the extractor refuses, as documented.
        assert!(operation["responses"]["401"].is_object(), "{method} {path}");
        // With its required query parameters, which some routes read before the
        // credentials (`rest-extras.md`, "Reading").
        let url = format!("{}{}", concrete(&path), required_query(&operation));
        let res = request(&server.api(), &method, &url, None).await;
        assert_eq!(res.status, 401, "{method} {path} without credentials");
    }
    server.shutdown().await;
}

/// `path` with every `{param}` replaced by a fresh UUID (nothing has that id).
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').expect("closing brace") + start;
        out.push_str(&rest[..start]);
        out.push_str(&uuid::Uuid::new_v4().to_string());
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// `?name=value&…` with a plausible value for each required query parameter of
/// `operation` (empty when it has none).
fn required_query(operation: &Value) -> String {
    let pairs: Vec<String> = operation["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["in"] == "query" && p["required"] == true)
        .map(|p| {
            let schema = &p["schema"];
            let value = if schema["format"] == "uuid" {
                uuid::Uuid::new_v4().to_string()
            } else if schema["type"] == "integer" {
                "1".to_owned()
            } else {
                "probe".to_owned()
            };
            format!("{}={value}", p["name"].as_str().expect("parameter name"))
        })
        .collect();
    if pairs.is_empty() {
        String::new()
    } else {
        format!("?{}", pairs.join("&"))
    }
}

async fn request(
    api: &concord_testkit::Api,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Response {
    let method = method.to_ascii_uppercase();
    match body {
        Some(body) => api.raw(&method, path, Some("application/json"), body).await,
        None => api.raw(&method, path, None, "").await,
    }
}

#[tokio::test]
async fn what_is_documented_is_routed_and_nothing_more_on_those_paths() {
    let server = TestServer::start().await;
    let user = server.user("prober").await;
    let doc = document(&server, "/openapi.json").await;

    // A control: the fallback is recognisable, and a handler's own 404 is not it.
    let unrouted = user.api.get("/no/such/route").await;
    assert_eq!(unrouted.status, 404);
    assert_eq!(unrouted.body, json!({"error": "Not found"}));
    assert_eq!(unrouted.headers[UNROUTED], "1");
    let missing = user.api.get(&concrete("/servers/{id}")).await;
    assert_eq!(missing.status, 404, "{}", missing.text);
    assert!(missing.headers.get(UNROUTED).is_none());

    let mut documented: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, method, operation) in operations(&doc) {
        documented
            .entry(path.clone())
            .or_default()
            .insert(method.clone());
        let body = operation["requestBody"].is_object().then_some("{}");
        for prefix in ["", "/api"] {
            let url = format!("{prefix}{}{}", concrete(&path), required_query(&operation));
            let res = request(&user.api, &method, &url, body).await;
            assert_ne!(res.status, 405, "{method} {url}: {}", res.text);
            assert!(
                res.headers.get(UNROUTED).is_none(),
                "{method} {url} fell through to the fallback"
            );
            let status = res.status.to_string();
            assert!(
                operation["responses"][&status].is_object(),
                "{method} {url} answered {status}, which is not documented: {}",
                res.text
            );
        }
    }

    // On a documented path, a method that is not documented is not routed either.
    for (path, methods) in &documented {
        for method in METHODS.iter().filter(|m| !methods.contains(**m)) {
            let url = concrete(path);
            let res = request(&user.api, method, &url, None).await;
            assert_eq!(res.status, 405, "{method} {url} is routed: {}", res.text);
        }
    }
    server.shutdown().await;
}

/// Every route is registered through utoipa-axum's `routes!` (which takes the path and
/// methods from the handler's annotation), never with a bare axum `route`: a route added
/// that way would be served without being documented, and the probes above cannot find
/// a path they are not told about.
#[test]
fn no_route_is_registered_outside_the_openapi_router() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut dirs = vec![src];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    assert!(files.len() > 20, "only {} source files found", files.len());
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read source");
        for (line, code) in bare_routes(&text) {
            found.push(format!("{}:{line}: {code}", file.display()));
        }
    }
    assert!(
        found.is_empty(),
        "routes registered outside utoipa-axum's OpenApiRouter::routes:\n{}",
        found.join("\n")
    );
}

/// The lines of `text` (1-based, trimmed) that register a route with axum directly.
fn bare_routes(text: &str) -> Vec<(usize, String)> {
    const FORBIDDEN: [&str; 7] = [
        ".route(",
        ".route_service(",
        ".nest_service(",
        "routing::get",
        "routing::post",
        "routing::{",
        "MethodRouter",
    ];
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let code = line.split("//").next().unwrap_or_default();
            FORBIDDEN.iter().any(|pattern| code.contains(pattern))
        })
        .map(|(n, line)| (n + 1, line.trim().to_owned()))
        .collect()
}

#[test]
fn the_route_guard_sees_a_bare_route() {
    let sample = "use axum::routing::{get, post};\n\
                  // .route(\"/in/a/comment\", get(x))\n\
                  Router::new()\n    .route(\"/x\", get(handler))\n";
    let lines: Vec<usize> = bare_routes(sample).into_iter().map(|(n, _)| n).collect();
    assert_eq!(lines, [1, 4]);
    assert!(bare_routes("OpenApiRouter::new().routes(routes!(handler))").is_empty());
}

/// Checks `value` against `schema` (the subset of JSON Schema the document uses),
/// resolving `$ref`s in `doc`. Strict on objects: a key the schema does not list is an
/// error, so the document cannot lag behind what the server sends.
fn validate(doc: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        return validate(doc, &doc["components"]["schemas"][name], value, at, errors);
    }
    if let Some(all) = schema["allOf"].as_array() {
        let mut known = BTreeSet::new();
        for part in all {
            known.extend(property_names(doc, part));
            validate_shape(doc, part, value, at, errors);
        }
        check_unknown_keys(value, &known, at, errors);
        return;
    }
    if let Some(one) = schema["oneOf"].as_array() {
        let matching = one
            .iter()
            .filter(|s| {
                let mut errs = Vec::new();
                validate(doc, s, value, at, &mut errs);
                errs.is_empty()
            })
            .count();
        if matching != 1 {
            errors.push(format!("{at}: {matching} oneOf branches match {value}"));
        }
        return;
    }
    validate_shape(doc, schema, value, at, errors);
    if schema["properties"].is_object() {
        check_unknown_keys(value, &property_names(doc, schema), at, errors);
    }
}

fn property_names(doc: &Value, schema: &Value) -> BTreeSet<String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        return property_names(doc, &doc["components"]["schemas"][name]);
    }
    let mut names: BTreeSet<String> = schema["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        names.extend(property_names(doc, part));
    }
    names
}

fn check_unknown_keys(value: &Value, known: &BTreeSet<String>, at: &str, errors: &mut Vec<String>) {
    for key in value.as_object().into_iter().flat_map(|o| o.keys()) {
        if !known.contains(key) {
            errors.push(format!("{at}: undocumented key {key:?}"));
        }
    }
}

/// Type, format, enum, required and the listed properties; not unknown keys.
fn validate_shape(doc: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    if schema["$ref"].is_string() || schema["allOf"].is_array() || schema["oneOf"].is_array() {
        let mut nested = Vec::new();
        validate(doc, schema, value, at, &mut nested);
        // Unknown keys are judged by the caller, against all the parts together.
        errors.extend(
            nested
                .into_iter()
                .filter(|e| !e.contains("undocumented key")),
        );
        return;
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let actual = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let type_ok = types.is_empty()
        || types.contains(&actual)
        || (actual == "integer" && types.contains(&"number"));
    if !type_ok {
        errors.push(format!("{at}: {actual} where {types:?} is documented"));
        return;
    }
    if let (Some(format), Some(text)) = (schema["format"].as_str(), value.as_str()) {
        let ok = match format {
            "uuid" => uuid::Uuid::parse_str(text).is_ok(),
            "date-time" => chrono::DateTime::parse_from_rfc3339(text).is_ok(),
            _ => true,
        };
        if !ok {
            errors.push(format!("{at}: {text:?} is not a {format}"));
        }
    }
    if let Some(options) = schema["enum"].as_array()
        && !options.contains(value)
    {
        errors.push(format!("{at}: {value} is not one of {options:?}"));
    }
    if let Value::Object(object) = value {
        for name in schema["required"].as_array().into_iter().flatten() {
            let name = name.as_str().expect("required name");
            if !object.contains_key(name) {
                errors.push(format!("{at}: required key {name:?} missing"));
            }
        }
        for (name, property) in schema["properties"].as_object().into_iter().flatten() {
            if let Some(inner) = object.get(name) {
                validate(doc, property, inner, &format!("{at}.{name}"), errors);
            }
        }
    }
    if let (Value::Array(items), Some(item)) = (value, schema.get("items")) {
        for (i, inner) in items.iter().enumerate() {
            validate(doc, item, inner, &format!("{at}[{i}]"), errors);
        }
    }
}

/// The answer `res` to `method path` is documented with its status and matches the
/// documented schema.
#[track_caller]
fn assert_conforms(doc: &Value, method: &str, path: &str, res: &Response) {
    let operation = &doc["paths"][path][method];
    assert!(operation.is_object(), "{method} {path} is not documented");
    let response = &operation["responses"][res.status.to_string()];
    assert!(
        response.is_object(),
        "{method} {path}: {} is not documented",
        res.status
    );
    let schema = &response["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path} {}: no JSON schema",
        res.status
    );
    let mut errors = Vec::new();
    validate(doc, schema, &res.body, "$", &mut errors);
    assert!(
        errors.is_empty(),
        "{method} {path} {}: {}\n{}",
        res.status,
        errors.join("\n"),
        res.text
    );
}

#[tokio::test]
async fn real_answers_match_their_schemas() {
    let server = TestServer::start().await;
    let doc = document(&server, "/openapi.json").await;

    let registered = server
        .api()
        .post(
            "/auth/register",
            &json!({"username": "schema_alice", "password": "correct-horse-42"}),
        )
        .await;
    assert_conforms(&doc, "post", "/auth/register", &registered);
    let alice = TestUser::from_auth(&server, &registered.body);
    let bob = server.user("schema_bob").await;

    assert_conforms(
        &doc,
        "get",
        "/users/@me",
        &alice.api.get("/users/@me").await,
    );
    let profile = alice.api.get(&format!("/users/{}", bob.id)).await;
    assert_conforms(&doc, "get", "/users/{user_id}", &profile);

    // `ServerDto` is `Server` flattened plus `member_count` (allOf).
    let created = alice
        .api
        .post("/servers", &json!({"name": "Schemas", "is_public": true}))
        .await;
    assert_conforms(&doc, "post", "/servers", &created);
    let server_id = created.body["id"].as_str().unwrap().to_owned();
    assert_conforms(&doc, "get", "/servers", &alice.api.get("/servers").await);
    let joined = bob
        .api
        .post_empty(&format!("/servers/{server_id}/join"))
        .await;
    assert_conforms(&doc, "post", "/servers/{id}/join", &joined);
    let members = alice
        .api
        .get(&format!("/servers/{server_id}/members"))
        .await;
    assert_conforms(&doc, "get", "/servers/{id}/members", &members);

    // `Channel` renames `kind` to `type`.
    let channel = alice
        .api
        .post(
            &format!("/servers/{server_id}/channels"),
            &json!({"name": "general", "type": "text"}),
        )
        .await;
    assert_conforms(&doc, "post", "/servers/{id}/channels", &channel);
    let channel_id = channel.body["id"].as_str().unwrap().to_owned();

    // `Message`: 17 keys, most of them null.
    let message = alice
        .api
        .post(
            &format!("/channels/{channel_id}/messages"),
            &json!({"content": "hello @schema_bob"}),
        )
        .await;
    assert_conforms(&doc, "post", "/channels/{channel_id}/messages", &message);
    let page = bob
        .api
        .get(&format!("/channels/{channel_id}/messages?limit=5"))
        .await;
    assert_conforms(&doc, "get", "/channels/{channel_id}/messages", &page);

    // `IceServer` leaves out (rather than nulls) the TURN fields.
    let ice = alice.api.get("/ice-servers").await;
    assert_conforms(&doc, "get", "/ice-servers", &ice);

    let dm = alice
        .api
        .post("/dm-channels", &json!({"user_id": bob.id}))
        .await;
    assert_conforms(&doc, "post", "/dm-channels", &dm);
    let bots = alice.api.post("/bots", &json!({"name": "Helper"})).await;
    assert_conforms(&doc, "post", "/bots", &bots);

    let health = server.api().get("/health").await;
    assert_conforms(&doc, "get", "/health", &health);
    let ready = server.api().get("/health/ready").await;
    assert_conforms(&doc, "get", "/health/ready", &ready);

    // Errors: the shared body.
    let unknown = alice.api.get(&concrete("/servers/{id}")).await;
    assert_conforms(&doc, "get", "/servers/{id}", &unknown);
    let invalid = alice
        .api
        .raw(
            "POST",
            "/servers",
            Some("application/json"),
            "{\"name\": 5}",
        )
        .await;
    assert_eq!(invalid.status, 422, "{}", invalid.text);
    assert_conforms(&doc, "post", "/servers", &invalid);

    // A positive control: the validator does refuse what the schema does not allow.
    let mut wrong = created.clone();
    wrong.body["member_count"] = json!("one");
    wrong.body["surprise"] = json!(true);
    wrong.body.as_object_mut().unwrap().remove("owner_id");
    let mut errors = Vec::new();
    let schema = &doc["paths"]["/servers"]["post"]["responses"]["201"]["content"]["application/json"]
        ["schema"];
    validate(&doc, schema, &wrong.body, "$", &mut errors);
    let text = errors.join("\n");
    assert!(text.contains("member_count"), "{text}");
    assert!(text.contains("surprise"), "{text}");
    assert!(text.contains("owner_id"), "{text}");

    server.shutdown().await;
}

/// Found by scripts/schemathesis.sh: a JSON array was taken for an object body (serde
/// reads a struct from the array of its fields), so `PATCH /users/@me` with
/// `[null, null]` answered 200 and `POST /servers` with `["name"]` created a server.
#[tokio::test]
async fn request_bodies_must_be_json_objects() {
    let server = TestServer::start().await;
    let alice = server.user("arrays").await;
    let cases = [
        ("PATCH", "/users/@me", "[null, null]"),
        ("PATCH", "/users/@me", r#"["https://example.com/a.png"]"#),
        ("POST", "/servers", r#"["From an array"]"#),
        (
            "POST",
            "/auth/register",
            r#"["arrays2", null, "correct-horse-42"]"#,
        ),
        ("POST", "/servers", "null"),
        ("POST", "/servers", "\"name\""),
    ];
    for (method, path, body) in cases {
        let res = alice
            .api
            .raw(method, path, Some("application/json"), body)
            .await;
        assert_eq!(res.status, 422, "{method} {path} {body}: {}", res.text);
        assert_eq!(sorted_keys(&res.body), ["error"], "{}", res.text);
    }
    // Nothing was created or changed.
    assert_eq!(alice.api.get("/servers").await.body, json!([]));
    let me = alice.api.get("/users/@me").await;
    assert_eq!(me.body["avatar_url"], Value::Null);
    let login = server
        .api()
        .post(
            "/auth/login",
            &json!({"username": "arrays2", "password": "correct-horse-42"}),
        )
        .await;
    assert_eq!(login.status, 401, "{}", login.text);
    // The object forms still work.
    let patched = alice
        .api
        .raw("PATCH", "/users/@me", Some("application/json"), "{}")
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    let created = alice
        .api
        .post("/servers", &json!({"name": "From an object"}))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    server.shutdown().await;
}

// ---- content: threads, reactions, pins, polls, scheduled events (issue 12) ----

/// The content routes' answers, with a poll, an event, reactions and pins filled in,
/// match their documented schemas.
#[tokio::test]
async fn content_answers_match_their_schemas() {
    let server = TestServer::start().await;
    let doc = document(&server, "/openapi.json").await;
    let alice = server.user("content_alice").await;
    let sid = alice.create_server("Content").await;
    let channel = alice.create_channel(&sid, "general", "text").await;

    let poll = alice
        .api
        .post(
            &format!("/channels/{channel}/polls"),
            &json!({"question": "Q?", "options": ["a", "b"]}),
        )
        .await;
    assert_conforms(&doc, "post", "/channels/{channel_id}/polls", &poll);
    let poll_id = poll.body["poll"]["id"].as_str().unwrap().to_owned();
    let option = poll.body["poll"]["options"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let message = poll.body["id"].as_str().unwrap().to_owned();
    let voted = alice
        .api
        .post(
            &format!("/polls/{poll_id}/vote"),
            &json!({"option_id": option}),
        )
        .await;
    assert_conforms(&doc, "post", "/polls/{poll_id}/vote", &voted);
    let got = alice.api.get(&format!("/polls/{poll_id}")).await;
    assert_conforms(&doc, "get", "/polls/{poll_id}", &got);

    let event = alice
        .api
        .post(
            &format!("/channels/{channel}/events"),
            &json!({"name": "E", "description": "d", "starts_at": "2099-01-01T00:00:00Z"}),
        )
        .await;
    assert_conforms(&doc, "post", "/channels/{channel_id}/events", &event);
    let events = alice.api.get(&format!("/servers/{sid}/events")).await;
    assert_conforms(&doc, "get", "/servers/{id}/events", &events);

    let thread = format!("/channels/{channel}/messages/{message}/thread");
    let reply = alice.api.post(&thread, &json!({"content": "re"})).await;
    assert_conforms(
        &doc,
        "post",
        "/channels/{channel_id}/messages/{message_id}/thread",
        &reply,
    );
    let replies = alice.api.get(&thread).await;
    assert_conforms(
        &doc,
        "get",
        "/channels/{channel_id}/messages/{message_id}/thread",
        &replies,
    );

    // Message search: two hits of the thread reply's word, one per page.
    alice
        .api
        .post(&thread, &json!({"content": "re again"}))
        .await;
    let found = alice
        .api
        .get(&format!("/servers/{sid}/search?q=re&limit=1"))
        .await;
    assert_eq!(found.body["has_more"], true, "{}", found.text);
    assert_conforms(&doc, "get", "/servers/{id}/search", &found);

    let reacted = alice
        .api
        .put(&format!(
            "/channels/{channel}/messages/{message}/reactions/ok"
        ))
        .await;
    assert_eq!(reacted.status, 204, "{}", reacted.text);
    let reactions = alice
        .api
        .get(&format!("/channels/{channel}/messages/{message}/reactions"))
        .await;
    assert_conforms(
        &doc,
        "get",
        "/channels/{channel_id}/messages/{message_id}/reactions",
        &reactions,
    );
    let pinned = alice
        .api
        .post_empty(&format!("/channels/{channel}/messages/{message}/pin"))
        .await;
    assert_eq!(pinned.status, 204, "{}", pinned.text);
    let pins = alice
        .api
        .get(&format!("/channels/{channel}/pinned-messages"))
        .await;
    assert_conforms(&doc, "get", "/channels/{channel_id}/pinned-messages", &pins);
    let page = alice
        .api
        .get(&format!("/channels/{channel}/messages"))
        .await;
    assert_conforms(&doc, "get", "/channels/{channel_id}/messages", &page);

    let refused = alice
        .api
        .post(
            &format!("/polls/{poll_id}/vote"),
            &json!({"option_id": message}),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_conforms(&doc, "post", "/polls/{poll_id}/vote", &refused);
    server.shutdown().await;
}

/// Automod (issue 18 part C): the settings, words and log answers, and its refusals,
/// match their documented schemas.
#[tokio::test]
async fn automod_answers_match_their_schemas() {
    let server = TestServer::start().await;
    let doc = document(&server, "/openapi.json").await;
    let alice = server.user("automod_alice").await;
    let bob = server.user("automod_bob").await;
    let hall = str_of_id(
        &alice
            .api
            .post("/servers", &json!({"name": "Automod", "is_public": true}))
            .await,
    );
    let joined = bob.api.post_empty(&format!("/servers/{hall}/join")).await;
    assert_eq!(joined.status, 201, "{}", joined.text);
    let channel = str_of_id(
        &alice
            .api
            .post(
                &format!("/servers/{hall}/channels"),
                &json!({"name": "general", "type": "text"}),
            )
            .await,
    );
    let config = format!("/servers/{hall}/automod");
    let words = format!("{config}/words");
    let logs = format!("{config}/logs");

    let missing = alice.api.get(&config).await;
    assert_eq!(missing.status, 404, "{}", missing.text);
    assert_conforms(&doc, "get", "/servers/{id}/automod", &missing);
    let patched = alice
        .api
        .patch(
            &config,
            &json!({"enabled": true, "word_filter_enabled": true}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_conforms(&doc, "patch", "/servers/{id}/automod", &patched);
    assert_conforms(
        &doc,
        "get",
        "/servers/{id}/automod",
        &alice.api.get(&config).await,
    );
    let refused = alice.api.patch(&config, &json!({"spam_action": "x"})).await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_conforms(&doc, "patch", "/servers/{id}/automod", &refused);

    let added = alice.api.post(&words, &json!({"word": "darn"})).await;
    assert_eq!(added.status, 201, "{}", added.text);
    assert_conforms(&doc, "post", "/servers/{id}/automod/words", &added);
    assert_conforms(
        &doc,
        "get",
        "/servers/{id}/automod/words",
        &alice.api.get(&words).await,
    );
    let forbidden = bob.api.get(&words).await;
    assert_eq!(forbidden.status, 403, "{}", forbidden.text);
    assert_conforms(&doc, "get", "/servers/{id}/automod/words", &forbidden);

    let blocked = bob
        .api
        .post(
            &format!("/channels/{channel}/messages"),
            &json!({"content": "darn"}),
        )
        .await;
    assert_eq!(blocked.status, 403, "{}", blocked.text);
    assert_conforms(&doc, "post", "/channels/{channel_id}/messages", &blocked);
    let log = alice.api.get(&logs).await;
    assert_eq!(log.body.as_array().map(Vec::len), Some(1), "{}", log.text);
    assert_conforms(&doc, "get", "/servers/{id}/automod/logs", &log);
    server.shutdown().await;
}

fn str_of_id(res: &Response) -> String {
    assert_eq!(res.status, 201, "{}", res.text);
    res.body["id"].as_str().expect("id").to_owned()
}
