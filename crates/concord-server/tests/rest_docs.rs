//! `docs/rest.md` against the live `GET /openapi.json`: every route the server
//! documents there is on the reference page, and the page names no route the server
//! does not serve.
//!
//! A route on the page is a code span holding a method and a path, e.g.
//! `` `GET /servers/{id}` ``, written with the same `{param}` names as the OpenAPI
//! document.

use std::collections::BTreeSet;

use concord_testkit::TestServer;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// Every `METHOD /path` code span of `text`.
fn documented(text: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (at, span) in text.split('`').enumerate() {
        // Odd pieces are inside backticks.
        if at % 2 == 0 {
            continue;
        }
        let Some((method, path)) = span.split_once(' ') else {
            continue;
        };
        if METHODS.contains(&method) && path.starts_with('/') && !path.contains(' ') {
            out.insert((method.to_owned(), path.to_owned()));
        }
    }
    out
}

#[test]
fn code_spans_are_read_as_routes() {
    let found = documented(
        "| `GET /servers/{id}` | x | `POST /auth/login` and `Authorization: Bearer x`, \
         `GET` alone, `DELETE /a b`",
    );
    let want: BTreeSet<(String, String)> = [("GET", "/servers/{id}"), ("POST", "/auth/login")]
        .into_iter()
        .map(|(m, p)| (m.to_owned(), p.to_owned()))
        .collect();
    assert_eq!(found, want);
}

#[tokio::test]
async fn docs_rest_md_matches_the_served_openapi_document() {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/rest.md"))
        .expect("docs/rest.md");
    let on_page = documented(&page);

    let server = TestServer::start().await;
    let res = server.api().get("/openapi.json").await;
    assert_eq!(res.status, 200, "{}", res.text);
    let mut served = BTreeSet::new();
    for (path, item) in res.body["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            let method = method.to_ascii_uppercase();
            if METHODS.contains(&method.as_str()) {
                served.insert((method, path.clone()));
            }
        }
    }
    assert!(
        served.len() > 50,
        "a suspiciously short document: {served:?}"
    );

    let missing: Vec<_> = served.difference(&on_page).collect();
    assert!(
        missing.is_empty(),
        "served but not in docs/rest.md: {missing:?}"
    );
    let unknown: Vec<_> = on_page.difference(&served).collect();
    assert!(
        unknown.is_empty(),
        "in docs/rest.md but not served (check the method and the {{param}} names): {unknown:?}"
    );
    server.shutdown().await;
}
