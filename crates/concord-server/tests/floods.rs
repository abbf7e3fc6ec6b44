//! Connection floods and slow clients (issue 16): deadlines on headers and bodies,
//! caps on connections and gateway sessions, error answers that reach a client still
//! sending its upload, and password hashing on a bounded pool. Every test talks to a
//! real server over real sockets; the waits are short deadlines set in the test
//! configuration, and nothing asserts how long anything took.

use std::net::SocketAddr;

use concord_server::Config;
use concord_testkit::{Closed, TestServer, TestUser, WAIT};
use futures_util::future::join_all;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};
use tokio_tungstenite::tungstenite;

/// Deadlines short enough for a test (one second each).
fn short_deadlines(config: &mut Config) {
    config.limits.header_read_secs = 1;
    config.limits.body_read_secs = 1;
}

/// A raw HTTP exchange's answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }
}

/// Reads an answer until the server closes the connection. `Err` when the
/// connection was reset (the answer lost) or nothing came within [`WAIT`].
async fn read_answer(tcp: &mut TcpStream) -> Result<Answer, String> {
    let mut raw = Vec::new();
    match tokio::time::timeout(WAIT, tcp.read_to_end(&mut raw)).await {
        Err(_) => return Err("no answer, connection still open".into()),
        Ok(Err(err)) => return Err(format!("connection failed before the answer: {err}")),
        Ok(Ok(_)) => {}
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no complete answer: {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line: {head:?}"))?;
    Ok(Answer {
        status,
        head: head.to_owned(),
        body: serde_json::from_str(body).unwrap_or(Value::Null),
    })
}

/// Sends `head` (request line and headers, without the blank line) and the whole of
/// `body`, then reads the answer. The client's send buffer is small, as on a real
/// network where the body is still on its way when the server answers: on loopback
/// the kernel's buffers would otherwise take a whole upload at once.
async fn exchange(addr: SocketAddr, head: &str, body: &[u8]) -> Result<Answer, String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .set_send_buffer_size(16 * 1024)
        .map_err(|e| e.to_string())?;
    let mut tcp = socket.connect(addr).await.map_err(|e| e.to_string())?;
    let request = format!("{head}\r\ncontent-length: {}\r\n\r\n", body.len());
    tcp.write_all(request.as_bytes())
        .await
        .map_err(|e| format!("headers not sent: {e}"))?;
    tcp.write_all(body)
        .await
        .map_err(|e| format!("the body could not be sent whole: {e}"))?;
    read_answer(&mut tcp).await
}

fn assert_json_error(answer: &Answer, status: u16) {
    assert_eq!(answer.status, status, "{answer:?}");
    assert!(
        answer.body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "the JSON error body: {answer:?}"
    );
}

#[tokio::test]
async fn headers_that_never_end_are_cut_off_at_the_deadline() {
    let server = TestServer::start_with(short_deadlines).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    // A slowloris handshake: a request begun and never finished.
    tcp.write_all(b"GET /health HTTP/1.1\r\nhost: concord\r\nx-slow: ")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let read = tokio::time::timeout(WAIT, tcp.read(&mut buf))
        .await
        .expect("the server closes a connection whose headers never end");
    // Closed (EOF) or reset: either way the server let it go.
    if let Ok(n) = read {
        assert_eq!(n, 0, "no answer, only the close: {:?}", &buf[..n]);
    }
}

#[tokio::test]
async fn a_trickled_body_is_answered_408() {
    let server = TestServer::start_with(short_deadlines).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(
        b"POST /auth/login HTTP/1.1\r\nhost: concord\r\ncontent-type: application/json\r\n\
          content-length: 100\r\n\r\n{\"username\":",
    )
    .await
    .unwrap();
    // The other 87 bytes never come.
    let answer = read_answer(&mut tcp).await.expect("an answer");
    assert_json_error(&answer, 408);
}

#[tokio::test]
async fn a_content_length_over_the_limit_is_refused_before_the_body() {
    // The default limit, 2 MiB.
    let server = TestServer::start_with(short_deadlines).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    // Headers only: the answer must come without the body being sent.
    tcp.write_all(
        b"POST /auth/register HTTP/1.1\r\nhost: concord\r\ncontent-type: application/json\r\n\
          content-length: 3000000\r\n\r\n",
    )
    .await
    .unwrap();
    let answer = read_answer(&mut tcp).await.expect("an answer");
    assert_json_error(&answer, 413);
}

/// A kept-alive connection the server has answered on (so it is surely admitted).
async fn kept_alive(addr: SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /health/live HTTP/1.1\r\nhost: concord\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(WAIT, tcp.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    tcp
}

#[tokio::test]
async fn connections_per_address_are_capped_and_given_back() {
    let server = TestServer::start_with(|config| {
        config.limits.connections_per_ip = 3;
    })
    .await;
    // Three kept-alive connections, each known to the server (it answered on it).
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(kept_alive(server.addr).await);
    }
    let refused = exchange(
        server.addr,
        "GET /health/live HTTP/1.1\r\nhost: concord\r\nconnection: close",
        b"",
    )
    .await
    .expect("an answer");
    assert_json_error(&refused, 429);
    assert!(refused.header("retry-after").is_some(), "{refused:?}");
    assert!(
        server
            .state
            .metrics
            .render()
            .contains("concord_connections_refused_total{reason=\"connections_per_ip\"} 1"),
        "{}",
        server.state.metrics.render()
    );

    // One closes: its place comes back (once the server has seen it go).
    drop(open.pop());
    let mut attempts = 0;
    loop {
        let answer = exchange(
            server.addr,
            "GET /health/live HTTP/1.1\r\nhost: concord\r\nconnection: close",
            b"",
        )
        .await
        .expect("an answer");
        if answer.status == 200 {
            break;
        }
        assert_eq!(answer.status, 429, "{answer:?}");
        attempts += 1;
        assert!(
            attempts < 1000,
            "the closed connection's place never came back"
        );
        tokio::task::yield_now().await;
    }
}

/// A reverse proxy carries many clients' connections: it is not held to one
/// address's cap. (Main had no cap at all, so this passes there too: it guards the
/// exemption, not a change.)
#[tokio::test]
async fn a_trusted_proxy_is_not_held_to_the_per_address_cap() {
    let server = TestServer::start_with(|config| {
        config.limits.connections_per_ip = 1;
        config.limits.trusted_proxies = vec![std::net::IpAddr::from([127, 0, 0, 1])];
    })
    .await;
    let _first = kept_alive(server.addr).await;
    let _second = kept_alive(server.addr).await;
}

#[tokio::test]
async fn connections_in_all_are_capped() {
    let server = TestServer::start_with(|config| {
        config.limits.max_connections = Some(2);
    })
    .await;
    let mut open = Vec::new();
    for _ in 0..2 {
        open.push(kept_alive(server.addr).await);
    }
    let refused = exchange(
        server.addr,
        "GET /health/live HTTP/1.1\r\nhost: concord\r\nconnection: close",
        b"",
    )
    .await
    .expect("an answer");
    assert_json_error(&refused, 503);
    assert!(refused.header("retry-after").is_some(), "{refused:?}");
    assert!(
        server
            .state
            .metrics
            .render()
            .contains("concord_connections_refused_total{reason=\"connections_total\"} 1")
    );
}

/// The error of a refused gateway upgrade: its status and JSON body.
fn refused_upgrade(result: Result<concord_testkit::Gateway, tungstenite::Error>) -> (u16, Value) {
    match result {
        Err(tungstenite::Error::Http(response)) => {
            let status = response.status().as_u16();
            let body = response
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            (status, body)
        }
        Err(other) => panic!("refused otherwise than by HTTP: {other}"),
        Ok(_) => panic!("the upgrade was accepted"),
    }
}

#[tokio::test]
async fn gateway_sessions_per_user_are_capped() {
    let server = TestServer::start_with(|config| {
        config.limits.sessions_per_user = 2;
    })
    .await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let (_first, _) = server.connect(&alice.ws_query()).await;
    let (_second, _) = server.connect(&alice.ws_query()).await;

    let (status, body) = refused_upgrade(server.connect_raw(&alice.ws_query()).await);
    assert_eq!(status, 429, "{body}");
    assert!(body["error"].is_string(), "{body}");
    // After the upgrade (v2 IDENTIFY) the refusal is a close that says "retry later".
    let mut v2 = server.connect_raw("v=2").await.expect("upgrade");
    assert_eq!(v2.next_frame().await["op"], "HELLO");
    v2.send(&json!({"op": "IDENTIFY", "d": {"token": alice.token}}))
        .await;
    assert_eq!(v2.closed().await, Closed::Code(4008));
    // Another user is not affected.
    let (_bob, _) = server.connect(&bob.ws_query()).await;
    assert!(
        server
            .state
            .metrics
            .render()
            .contains("concord_connections_refused_total{reason=\"sessions_per_user\"} 2")
    );
}

#[tokio::test]
async fn gateway_sessions_per_address_are_capped_and_given_back() {
    let server = TestServer::start_with(|config| {
        config.limits.sessions_per_ip = 3;
    })
    .await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let (first, _) = server.connect(&alice.ws_query()).await;
    let (_second, _) = server.connect(&alice.ws_query()).await;
    let (_third, _) = server.connect(&bob.ws_query()).await;

    let (status, body) = refused_upgrade(server.connect_raw(&bob.ws_query()).await);
    assert_eq!(status, 429, "{body}");
    assert!(body["error"].is_string(), "{body}");
    // A refused upgrade took no place: REST on other connections goes on.
    assert_eq!(bob.api.get("/users/@me").await.status, 200);

    // A session closes: its place comes back once the server has let its socket go.
    first.close(1000).await;
    let mut attempts = 0;
    loop {
        match server.connect_raw(&bob.ws_query()).await {
            Ok(_) => break,
            Err(err) => {
                let (status, _) = refused_upgrade(Err(err));
                assert_eq!(status, 429);
            }
        }
        attempts += 1;
        assert!(
            attempts < 1000,
            "the closed session's place never came back"
        );
        tokio::task::yield_now().await;
    }
}

/// A multipart body of these parts, then `epilogue` after the closing delimiter
/// (RFC 2046 §5.1.1: text there is to be ignored).
fn multipart(parts: &[(&str, &[u8])], epilogue: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, bytes) in parts {
        body.extend_from_slice(
            format!(
                "--floods\r\ncontent-disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\n\
                 content-type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--floods--\r\n");
    body.extend_from_slice(epilogue);
    body
}

/// An upload's request head for `path` with `user`'s token.
fn upload_head(path: &str, user: Option<&TestUser>) -> String {
    let auth = user.map_or_else(String::new, |u| {
        format!("\r\nauthorization: Bearer {}", u.token)
    });
    format!(
        "POST {path} HTTP/1.1\r\nhost: concord\r\ncontent-type: multipart/form-data; \
         boundary=floods{auth}"
    )
}

/// Big enough that the server answers long before it is all sent.
const LARGE: usize = 1536 * 1024;

#[tokio::test]
async fn an_upload_to_an_unknown_route_reads_its_404() {
    let server = TestServer::start().await;
    let body = multipart(&[("image", &vec![b'x'; LARGE])], b"");
    let answer = exchange(server.addr, &upload_head("/nowhere/uploads", None), &body)
        .await
        .expect("the 404 reaches a client that sends its whole body");
    assert_json_error(&answer, 404);
}

#[tokio::test]
async fn a_body_over_the_limit_sent_whole_reads_its_413() {
    let server = TestServer::start().await;
    let body = vec![b' '; 3 * 1024 * 1024];
    let answer = exchange(
        server.addr,
        "POST /auth/register HTTP/1.1\r\nhost: concord\r\ncontent-type: application/json",
        &body,
    )
    .await
    .expect("the 413 reaches a client that sends its whole body");
    assert_json_error(&answer, 413);
}

/// A server with an emoji route: its owner and the route's path.
async fn emoji_route(server: &TestServer) -> (TestUser, String) {
    let alice = server.user("alice").await;
    let hall = alice.create_server("hall").await;
    (alice, format!("/servers/{hall}/emojis"))
}

#[tokio::test]
async fn an_emoji_image_too_large_reads_its_413() {
    let server = TestServer::start().await;
    let (alice, path) = emoji_route(&server).await;
    // An image over 256 KiB: the handler stops reading at the limit.
    let body = multipart(&[("name", b"big"), ("image", &vec![0xFF; LARGE])], b"");
    let answer = exchange(server.addr, &upload_head(&path, Some(&alice)), &body)
        .await
        .expect("the 413 reaches a client that sends its whole body");
    assert_json_error(&answer, 413);
}

#[tokio::test]
async fn an_emoji_upload_of_the_wrong_type_reads_its_415() {
    let server = TestServer::start().await;
    let (alice, path) = emoji_route(&server).await;
    // Not an image; the form is followed by an epilogue the server has no need to read.
    let body = multipart(
        &[("name", b"text"), ("image", b"plain text, no image")],
        &vec![b'.'; LARGE],
    );
    let answer = exchange(server.addr, &upload_head(&path, Some(&alice)), &body)
        .await
        .expect("the 415 reaches a client that sends its whole body");
    assert_json_error(&answer, 415);
}

#[tokio::test]
async fn password_hashing_past_the_pool_and_its_queue_is_answered_503() {
    let server = TestServer::start_with(|config| {
        // Slow enough hashes that a burst finds the single worker busy.
        config.password.memory_kib = 32 * 1024;
        config.password.iterations = 4;
        config.password.workers = 1;
        config.password.queue = 1;
    })
    .await;
    let alice = server.user("alice").await;
    let logins = (0..12).map(|_| {
        let api = server.api();
        let username = alice.username.clone();
        async move {
            api.post(
                "/auth/login",
                &json!({"username": username, "password": "correct-horse-42"}),
            )
            .await
        }
    });
    let answers = join_all(logins).await;
    let busy: Vec<_> = answers.iter().filter(|r| r.status == 503).collect();
    assert!(
        answers.iter().any(|r| r.status == 200),
        "the pool still logs people in"
    );
    assert!(!busy.is_empty(), "a burst past the queue is refused");
    for res in &busy {
        assert!(res.body["error"].is_string(), "{}", res.text);
        assert!(res.headers.contains_key("retry-after"), "{:?}", res.headers);
    }
    assert!(
        answers.iter().all(|r| r.status == 200 || r.status == 503),
        "{:?}",
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
}
