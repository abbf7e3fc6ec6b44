//! Clients that break the WebSocket protocol get the close frame RFC 6455 §7.4.1 asks
//! for, not a dropped connection: 1007 for text that is not UTF-8 (whole or across
//! fragments), 1002 for reserved bits, an unmasked frame, an oversized control frame,
//! a reserved opcode or a stray continuation. Each close is counted in `/metrics`.
//!
//! The frames are written byte by byte over a raw TCP connection (a WebSocket client
//! library refuses to send them). The positive control: the same hand-made framing,
//! used correctly, gets a HEARTBEAT_ACK.

use concord_testkit::{TestServer, TestUser};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// A client-side frame: the first byte (FIN, RSV, opcode) as given, the payload
/// masked when `masked` (clients must mask).
fn frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![first];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(mask_bit | u8::try_from(n).unwrap()),
        n => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&u16::try_from(n).unwrap().to_be_bytes());
        }
    }
    if masked {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// Upgrades a raw connection to `/ws?{query}` and returns it after the 101.
async fn upgrade(server: &TestServer, query: &str) -> TcpStream {
    let addr = server.url("").trim_start_matches("http://").to_string();
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "GET /ws?{query} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await.unwrap());
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
}

/// What the server said next: a data frame's opcode and payload, or the end.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    Frame(u8, Vec<u8>),
    /// A close frame with this code.
    Close(u16),
    /// The connection ended without a close frame (what a client sees as 1006).
    Dropped,
}

async fn next(stream: &mut TcpStream) -> Next {
    let mut head = [0u8; 2];
    if stream.read_exact(&mut head).await.is_err() {
        return Next::Dropped;
    }
    let opcode = head[0] & 0x0f;
    let len = match head[1] & 0x7f {
        126 => usize::from(stream.read_u16().await.unwrap()),
        127 => usize::try_from(stream.read_u64().await.unwrap()).unwrap(),
        n => usize::from(n),
    };
    let mut payload = vec![0u8; len];
    if stream.read_exact(&mut payload).await.is_err() {
        return Next::Dropped;
    }
    if opcode == 0x8 {
        assert!(payload.len() >= 2, "close frame without a code");
        return Next::Close(u16::from_be_bytes([payload[0], payload[1]]));
    }
    Next::Frame(opcode, payload)
}

/// Reads past data frames (READY, HELLO…) to the close, or the end.
async fn close_code(stream: &mut TcpStream) -> Next {
    loop {
        match next(stream).await {
            Next::Frame(..) => {}
            end => return end,
        }
    }
}

/// Reads past READY on a fresh v1 connection of `user`.
async fn identified(server: &TestServer, user: &TestUser) -> TcpStream {
    let mut stream = upgrade(server, &user.ws_query()).await;
    let Next::Frame(1, ready) = next(&mut stream).await else {
        panic!("READY expected");
    };
    assert!(String::from_utf8(ready).unwrap().contains("\"READY\""));
    stream
}

#[tokio::test]
async fn protocol_violations_close_with_the_rfc_codes_and_are_counted() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;

    // Positive control: the hand-made framing, used correctly, is understood.
    let mut stream = identified(&server, &alice).await;
    let heartbeat = frame(0x81, br#"{"op":"HEARTBEAT"}"#, true);
    stream.write_all(&heartbeat).await.unwrap();
    assert_eq!(
        next(&mut stream).await,
        Next::Frame(1, br#"{"op":"HEARTBEAT_ACK"}"#.to_vec())
    );
    // So is a text message in two fragments with a character split between them.
    let mut split = frame(0x01, b"{\"op\":\"HEARTBEAT\",\"d\":\"\xe2\x82", true);
    split.extend(frame(0x80, b"\xac\"}", true));
    stream.write_all(&split).await.unwrap();
    assert_eq!(
        next(&mut stream).await,
        Next::Frame(1, br#"{"op":"HEARTBEAT_ACK"}"#.to_vec())
    );

    let cases: [(&str, Vec<u8>, u16); 7] = [
        (
            "text that is not UTF-8",
            frame(0x81, b"\xff\xfe{}", true),
            1007,
        ),
        (
            "UTF-8 broken across fragments",
            [frame(0x01, b"\xe2\x82", true), frame(0x80, b"(", true)].concat(),
            1007,
        ),
        ("RSV1 set, no extension", frame(0xc1, b"{}", true), 1002),
        ("an unmasked client frame", frame(0x81, b"{}", false), 1002),
        ("a ping of 126 bytes", frame(0x89, &[0u8; 126], true), 1002),
        ("reserved opcode 3", frame(0x83, b"x", true), 1002),
        ("a continuation of nothing", frame(0x80, b"x", true), 1002),
    ];
    for (what, bytes, code) in &cases {
        let mut stream = identified(&server, &alice).await;
        stream.write_all(bytes).await.unwrap();
        assert_eq!(close_code(&mut stream).await, Next::Close(*code), "{what}");
    }

    // v2, before IDENTIFY: the same answer.
    let mut stream = upgrade(&server, "v=2").await;
    let Next::Frame(1, hello) = next(&mut stream).await else {
        panic!("HELLO expected");
    };
    assert!(String::from_utf8(hello).unwrap().contains("\"HELLO\""));
    stream
        .write_all(&frame(0x81, b"\xc3\x28", true))
        .await
        .unwrap();
    assert_eq!(close_code(&mut stream).await, Next::Close(1007));

    let metrics = server.api().get("/metrics").await;
    assert_eq!(metrics.status, 200, "{}", metrics.text);
    for line in [
        "concord_gateway_protocol_closes_total{code=\"1002\"} 5",
        "concord_gateway_protocol_closes_total{code=\"1007\"} 3",
        "concord_gateway_protocol_closes_total{code=\"1009\"} 0",
    ] {
        assert!(
            metrics.text.lines().any(|l| l == line),
            "{line} in:\n{}",
            metrics.text
        );
    }
}
