//! The real writer: pre-encoded frames written with vectored writes over an in-memory
//! duplex, read back by a real WebSocket client. Batches larger than one vectored
//! write, mixes of single frames, shared batches and shared batches less a run of
//! their frames, and frame sizes across the 7/16/64-bit length encodings all arrive
//! whole and in order; what the codec holds (a ping's pong, a close) goes out before
//! them.

use std::sync::Arc;

use concord_gateway::{FrameBatch, Frames, GatewaySocket, Payload, WsSocket};
use futures_util::{SinkExt, StreamExt};
use tokio::io::DuplexStream;
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{Message, protocol::Role},
};

/// The server's socket and a real client over an in-memory duplex of `capacity` bytes.
async fn pair(capacity: usize) -> (WsSocket<DuplexStream>, WebSocketStream<DuplexStream>) {
    let (server_io, client_io) = tokio::io::duplex(capacity);
    let server = WebSocketStream::from_raw_socket(server_io, Role::Server, None).await;
    let client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
    (WsSocket::new(server), client)
}

#[tokio::test]
async fn batches_arrive_whole_and_in_order() {
    let (mut server, mut client) = pair(1 << 20).await;

    let sizes = [1usize, 125, 126, 300, 65_535, 65_536, 70_000];
    let mut expected = Vec::new();
    let mut batch = Vec::new();
    for round in 0..12 {
        // A shared batch of several frames, then single frames of every size class.
        let shared: Vec<Payload> = (0..3)
            .map(|i| Payload::text(&format!("shared {round}.{i}")))
            .collect();
        expected.extend(shared.iter().map(|p| p.as_str().to_string()));
        let shared = Arc::new(FrameBatch::new(shared));
        batch.push(Frames::Many(Arc::clone(&shared)));
        // The same batch without its middle frame.
        let except = Frames::except(&shared, 1..2);
        expected.extend(except.iter().map(|p| p.as_str().to_string()));
        batch.push(except);
        let size = sizes[round % sizes.len()];
        let single = Payload::text(&"x".repeat(size));
        expected.push(single.as_str().to_string());
        batch.push(Frames::One(single));
    }
    assert!(
        expected.len() > 40,
        "more frames than one vectored write takes"
    );

    let total = expected.len();
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        while got.len() < total {
            match client.next().await {
                Some(Ok(Message::Text(text))) => got.push(text.to_string()),
                other => panic!("unexpected {other:?}"),
            }
        }
        got
    });
    server.write_frames(&batch).await.unwrap();
    // A single frame takes the short path.
    let last = Payload::text("last");
    server.write_frames(&[Frames::One(last)]).await.unwrap();
    let got = reader.await.unwrap();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn a_single_frame_batch_and_an_empty_batch() {
    let (mut server, mut client) = pair(4096).await;
    server.write_frames(&[]).await.unwrap();
    server
        .write_frames(&[Frames::One(Payload::text("only"))])
        .await
        .unwrap();
    match client.next().await {
        Some(Ok(Message::Text(text))) => assert_eq!(text.as_str(), "only"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn what_the_codec_holds_goes_out_before_the_frames() {
    let (mut server, mut client) = pair(1 << 16).await;
    // A clean codec: frames go straight out.
    server
        .write_frames(&[Frames::One(Payload::text("first"))])
        .await
        .unwrap();
    // The client pings; reading it queues the pong inside the codec, unsent.
    client
        .send(Message::Ping(b"p1".to_vec().into()))
        .await
        .unwrap();
    match server.next().await {
        Some(Ok(Message::Ping(data))) => assert_eq!(&data[..], b"p1"),
        other => panic!("unexpected {other:?}"),
    }
    let batch = [
        Frames::One(Payload::text("second")),
        Frames::One(Payload::text("third")),
    ];
    server.write_frames(&batch).await.unwrap();
    // Again, with a single frame (the short path).
    client
        .send(Message::Ping(b"p2".to_vec().into()))
        .await
        .unwrap();
    assert!(matches!(server.next().await, Some(Ok(Message::Ping(_)))));
    server
        .write_frames(&[Frames::One(Payload::text("fourth"))])
        .await
        .unwrap();
    // A close sent through the codec, then nothing more is read.
    server.send(Message::Close(None)).await.unwrap();

    let mut got = Vec::new();
    while let Some(message) = client.next().await {
        match message.unwrap() {
            Message::Text(text) => got.push(text.to_string()),
            Message::Pong(data) => got.push(format!("pong {}", String::from_utf8_lossy(&data))),
            Message::Close(_) => {
                got.push("close".to_string());
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        got,
        [
            "first", "pong p1", "second", "third", "pong p2", "fourth", "close"
        ]
    );
}
