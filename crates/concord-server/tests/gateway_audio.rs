//! Audio over the gateway end to end (`docs/protocol-v2.md` §15), over real sockets with
//! a plain WebSocket client: a pushed file is relayed whole and in order, clear and
//! leave end a stream, audio reaches only subscribed sessions in the channel, bad
//! chunks are answered, and a compressed connection tells chunks from events by their
//! first byte.

use std::time::Duration;

use concord_client::{Compression, raw::Decoder};
use concord_protocol::{AUDIO_MAGIC, RelayedHeader, UplinkHeader};
use concord_testkit::{TestServer, TestUser};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

const WAIT: Duration = Duration::from_secs(10);

/// What a client read.
#[derive(Debug)]
enum In {
    Event(Value),
    Chunk(RelayedHeader, Vec<u8>),
}

/// A v2 client reading events and audio off one socket.
struct Peer {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    decoder: Decoder,
}

impl Peer {
    async fn connect(server: &TestServer, user: &TestUser, compress: Option<Compression>) -> Self {
        let query = match compress {
            None => String::new(),
            Some(Compression::ZlibStream) => "&compress=zlib-stream".into(),
            Some(Compression::ZstdStream) => "&compress=zstd-stream".into(),
        };
        // Through the next node: run as a cluster (scripts/cluster-suite.sh), speakers
        // and listeners are on different nodes.
        let url = format!("ws://{}/ws?v=2{query}", server.next_addr());
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("upgrade");
        let mut peer = Self {
            ws,
            decoder: Decoder::new(compress, 64 << 20),
        };
        let hello = peer.event().await;
        assert_eq!(hello["op"], "HELLO");
        peer.send(json!({"op": "IDENTIFY", "d": {"token": user.token}}))
            .await;
        let ready = peer.event().await;
        assert_eq!(ready["t"], "READY");
        peer
    }

    async fn send(&mut self, value: Value) {
        self.ws
            .send(Message::Text(value.to_string().into()))
            .await
            .unwrap();
    }

    async fn send_chunk(&mut self, sequence: u32, payload: &[u8]) {
        let frame = UplinkHeader {
            sequence,
            timestamp: sequence * 20,
        }
        .frame(payload);
        self.ws.send(Message::Binary(frame.into())).await.unwrap();
    }

    async fn next(&mut self) -> In {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("timed out waiting for a frame")
                .expect("connection ended")
                .expect("read");
            match message {
                Message::Text(text) => return In::Event(serde_json::from_str(&text).unwrap()),
                Message::Binary(data) if data.first() == Some(&AUDIO_MAGIC) => {
                    let (header, payload) = RelayedHeader::parse(&data).expect("relayed chunk");
                    return In::Chunk(header, payload.to_vec());
                }
                Message::Binary(data) => {
                    let json = self.decoder.binary(&data).expect("a piece of the stream");
                    return In::Event(serde_json::from_slice(json).unwrap());
                }
                Message::Close(frame) => panic!("closed: {frame:?}"),
                _ => {}
            }
        }
    }

    /// The next frame, which must be an event.
    async fn event(&mut self) -> Value {
        match self.next().await {
            In::Event(value) => value,
            In::Chunk(header, _) => panic!("expected an event, got chunk {header:?}"),
        }
    }

    /// The next DISPATCH `t` (or ERROR when `t` is "ERROR"), skipping presence and
    /// voice-state noise; a chunk on the way fails the test.
    async fn expect(&mut self, t: &str) -> Value {
        loop {
            let frame = self.event().await;
            if t == "ERROR" && frame["op"] == "ERROR" {
                return frame["d"].clone();
            }
            if frame["t"] == t {
                return frame["d"].clone();
            }
            let noise = ["PRESENCE_UPDATE", "VOICE_STATE_UPDATE", "MESSAGE_CREATE"];
            assert!(
                noise.iter().any(|n| frame["t"] == *n),
                "expected {t}, got {frame}"
            );
        }
    }

    /// The next chunk, skipping events.
    async fn chunk(&mut self) -> RelayedHeader {
        loop {
            if let In::Chunk(header, _) = self.next().await {
                return header;
            }
        }
    }

    /// Reads until `t` arrives; returns the chunks that came before it.
    async fn chunks_until(&mut self, t: &str) -> (Vec<(RelayedHeader, Vec<u8>)>, Value) {
        let mut chunks = Vec::new();
        loop {
            match self.next().await {
                In::Chunk(header, payload) => chunks.push((header, payload)),
                In::Event(frame) if frame["t"] == t => return (chunks, frame["d"].clone()),
                In::Event(_) => {}
            }
        }
    }
}

/// A 440 Hz tone at 48 kHz, one 20 ms chunk (960 samples) as PCM s16le.
fn tone_chunk(index: u32) -> Vec<u8> {
    (0..960u32)
        .flat_map(|i| {
            let t = f64::from(index * 960 + i) / 48_000.0;
            let sample = (t * 440.0 * std::f64::consts::TAU).sin() * 12_000.0;
            (sample as i16).to_le_bytes()
        })
        .collect()
}

struct Stage {
    server: TestServer,
    alice: TestUser,
    bob: TestUser,
    carol: TestUser,
    general: String,
    talk: String,
}

/// alice owns a server with a text and a voice channel; bob and carol are members;
/// alice and bob are in the voice channel.
async fn stage() -> Stage {
    let server = TestServer::start().await;
    let (alice, bob, carol) = (
        server.user("alice").await,
        server.user("bob").await,
        server.user("carol").await,
    );
    let hall = alice.create_server("hall").await;
    let general = alice.create_channel(&hall, "general", "text").await;
    let talk = alice.create_channel(&hall, "talk", "voice").await;
    bob.join(&hall).await;
    carol.join(&hall).await;
    for user in [&alice, &bob] {
        join_voice(user, &talk).await;
    }
    Stage {
        server,
        alice,
        bob,
        carol,
        general,
        talk,
    }
}

async fn join_voice(user: &TestUser, channel: &str) {
    let res = user
        .api
        .post(&format!("/channels/{channel}/voice"), &json!({}))
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
}

#[tokio::test]
async fn a_pushed_tone_is_relayed_whole_in_order_and_only_to_subscribers() {
    let Stage {
        server,
        alice,
        bob,
        carol,
        general,
        talk,
    } = stage().await;
    // carol is in the channel but does not subscribe: the positive control.
    join_voice(&carol, &talk).await;
    let mut speaker = Peer::connect(&server, &alice, None).await;
    let mut listener = Peer::connect(&server, &bob, None).await;
    let mut bystander = Peer::connect(&server, &carol, None).await;
    listener.send(json!({"op": "MEDIA_SUBSCRIBE"})).await;
    speaker
        .send(json!({"op": "MEDIA_START", "d": {"format": "pcm_s16le_48k"}}))
        .await;
    let started = speaker.expect("MEDIA_STARTED").await;
    assert_eq!(started["user_id"], alice.id);
    assert_eq!(started["format"], "pcm_s16le_48k");
    // Five seconds of audio in one push, then stop.
    for index in 0..250 {
        speaker.send_chunk(index, &tone_chunk(index)).await;
    }
    speaker.send(json!({"op": "MEDIA_STOP"})).await;

    let started = listener.expect("MEDIA_STARTED").await;
    assert_eq!(started["channel_id"], talk);
    let (chunks, ended) = listener.chunks_until("MEDIA_ENDED").await;
    assert_eq!(ended["reason"], "stopped");
    assert_eq!(ended["user_id"], alice.id);
    assert_eq!(chunks.len(), 250, "every chunk, none dropped");
    for (index, (header, payload)) in chunks.iter().enumerate() {
        let index = index as u32;
        assert_eq!(header.sequence, index, "in order");
        assert_eq!(header.timestamp, index * 20);
        assert_eq!(header.speaker.to_string(), alice.id);
        assert_eq!(payload, &tone_chunk(index));
    }
    // The sender hears of the end only once the last chunk was released.
    let ended = speaker.expect("MEDIA_ENDED").await;
    assert_eq!(ended["reason"], "stopped");

    // carol, in the channel but not subscribed, got no audio: everything she read
    // before a later message is events.
    alice.post(&general, "after the tone").await;
    loop {
        match bystander.next().await {
            In::Chunk(header, _) => panic!("an unsubscribed session got audio: {header:?}"),
            In::Event(frame) => {
                assert!(
                    frame["t"] != "MEDIA_STARTED" && frame["t"] != "MEDIA_ENDED",
                    "{frame}"
                );
                if frame["t"] == "MESSAGE_CREATE" {
                    break;
                }
            }
        }
    }
}

#[tokio::test]
async fn clearing_mid_stream_stops_delivery_at_once() {
    let Stage {
        server, alice, bob, ..
    } = stage().await;
    let mut speaker = Peer::connect(&server, &alice, None).await;
    let mut listener = Peer::connect(&server, &bob, None).await;
    listener.send(json!({"op": "MEDIA_SUBSCRIBE"})).await;
    speaker
        .send(json!({"op": "MEDIA_START", "d": {"format": "pcm_s16le_16k"}}))
        .await;
    speaker.expect("MEDIA_STARTED").await;
    for index in 0..250 {
        speaker.send_chunk(index, &[1; 640]).await;
    }
    listener.expect("MEDIA_STARTED").await;
    // Interrupted once a few chunks were heard.
    for _ in 0..3 {
        listener.chunk().await;
    }
    speaker.send(json!({"op": "MEDIA_CLEAR"})).await;
    let (chunks, ended) = listener.chunks_until("MEDIA_ENDED").await;
    assert_eq!(ended["reason"], "cleared");
    assert!(3 + chunks.len() < 250, "the buffer was dropped");
    assert_eq!(speaker.expect("MEDIA_ENDED").await["reason"], "cleared");
    // The stream is gone: a late chunk is refused, not relayed.
    speaker.send_chunk(400, &[1; 640]).await;
    assert_eq!(speaker.expect("ERROR").await["code"], "BINARY_NOT_ACCEPTED");
}

#[tokio::test]
async fn a_sender_leaving_the_channel_or_dropping_ends_its_stream() {
    let Stage {
        server,
        alice,
        bob,
        carol,
        talk,
        ..
    } = stage().await;
    join_voice(&carol, &talk).await;
    let mut listener = Peer::connect(&server, &bob, None).await;
    listener.send(json!({"op": "MEDIA_SUBSCRIBE"})).await;

    let mut speaker = Peer::connect(&server, &alice, None).await;
    speaker
        .send(json!({"op": "MEDIA_START", "d": {"format": "pcm_s16le_16k"}}))
        .await;
    speaker.expect("MEDIA_STARTED").await;
    for index in 0..100 {
        speaker.send_chunk(index, &[2; 640]).await;
    }
    listener.expect("MEDIA_STARTED").await;
    listener.chunk().await;
    let res = alice.api.delete(&format!("/channels/{talk}/voice")).await;
    assert_eq!(res.status, 204);
    let (_, ended) = listener.chunks_until("MEDIA_ENDED").await;
    assert_eq!(ended["reason"], "left");
    assert_eq!(speaker.expect("MEDIA_ENDED").await["reason"], "left");

    // A session whose socket goes away ends its stream as disconnected.
    let mut other = Peer::connect(&server, &carol, None).await;
    other
        .send(json!({"op": "MEDIA_START", "d": {"format": "pcm_s16le_16k"}}))
        .await;
    other.expect("MEDIA_STARTED").await;
    other.send_chunk(0, &[3; 640]).await;
    let started = listener.expect("MEDIA_STARTED").await;
    assert_eq!(started["user_id"], carol.id);
    drop(other);
    let (_, ended) = listener.chunks_until("MEDIA_ENDED").await;
    assert_eq!(ended["reason"], "disconnected");
    assert_eq!(ended["user_id"], carol.id);
}

#[tokio::test]
async fn bad_audio_is_answered_and_nothing_is_relayed() {
    let Stage {
        server,
        alice,
        bob,
        carol,
        general,
        ..
    } = stage().await;
    let mut listener = Peer::connect(&server, &bob, None).await;
    listener.send(json!({"op": "MEDIA_SUBSCRIBE"})).await;
    // carol is not in the voice channel.
    let mut outsider = Peer::connect(&server, &carol, None).await;
    outsider
        .send(json!({"op": "MEDIA_START", "d": {"format": "pcm_s16le_16k"}}))
        .await;
    assert_eq!(outsider.expect("ERROR").await["code"], "FORBIDDEN");
    outsider.send(json!({"op": "MEDIA_SUBSCRIBE"})).await;
    assert_eq!(outsider.expect("ERROR").await["code"], "FORBIDDEN");
    outsider.send_chunk(0, &[0; 640]).await;
    assert_eq!(
        outsider.expect("ERROR").await["code"],
        "BINARY_NOT_ACCEPTED"
    );

    let mut speaker = Peer::connect(&server, &alice, None).await;
    speaker
        .send(json!({"op": "MEDIA_START", "d": {"format": "mp3"}}))
        .await;
    assert_eq!(speaker.expect("ERROR").await["code"], "INVALID_PAYLOAD");
    speaker.send(json!({"op": "MEDIA_STOP"})).await;
    assert_eq!(speaker.expect("ERROR").await["code"], "INVALID_PAYLOAD");
    speaker
        .send(json!({"op": "MEDIA_START", "d": {"format": "pcm_s16le_48k"}}))
        .await;
    speaker.expect("MEDIA_STARTED").await;
    // 16 kHz-sized chunk on a 48 kHz stream, a frame that is not audio, a repeated
    // sequence number.
    speaker.send_chunk(0, &[0; 640]).await;
    assert_eq!(speaker.expect("ERROR").await["code"], "INVALID_PAYLOAD");
    speaker
        .ws
        .send(Message::Binary(b"{\"op\":\"HEARTBEAT\"}".to_vec().into()))
        .await
        .unwrap();
    assert_eq!(speaker.expect("ERROR").await["code"], "BINARY_NOT_ACCEPTED");
    speaker.send_chunk(7, &tone_chunk(0)).await;
    speaker.send_chunk(7, &tone_chunk(1)).await;
    assert_eq!(speaker.expect("ERROR").await["code"], "INVALID_PAYLOAD");
    speaker.send(json!({"op": "MEDIA_STOP"})).await;
    assert_eq!(speaker.expect("MEDIA_ENDED").await["reason"], "stopped");
    // The listener got exactly the one good chunk.
    listener.expect("MEDIA_STARTED").await;
    let (chunks, _) = listener.chunks_until("MEDIA_ENDED").await;
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].0.sequence, 7);

    // A v1 session's binary frames and MEDIA ops are ignored silently.
    let (mut v1, _) = server.connect(&format!("token={}", alice.token)).await;
    v1.send(&json!({"op": "MEDIA_SUBSCRIBE"})).await;
    v1.send_message(Message::Binary(vec![AUDIO_MAGIC, 1, 0, 0].into()))
        .await
        .unwrap();
    alice.post(&general, "still fine").await;
    assert_eq!(v1.next_non_presence().await["t"], "MESSAGE_CREATE");
}

#[tokio::test]
async fn compressed_connections_tell_chunks_from_events_by_the_first_byte() {
    let Stage {
        server,
        alice,
        bob,
        carol,
        talk,
        general,
    } = stage().await;
    join_voice(&carol, &talk).await;
    let mut zlib = Peer::connect(&server, &bob, Some(Compression::ZlibStream)).await;
    let mut zstd = Peer::connect(&server, &carol, Some(Compression::ZstdStream)).await;
    for peer in [&mut zlib, &mut zstd] {
        peer.send(json!({"op": "MEDIA_SUBSCRIBE"})).await;
    }
    let mut speaker = Peer::connect(&server, &alice, None).await;
    speaker
        .send(json!({"op": "MEDIA_START", "d": {"format": "pcm_s16le_48k"}}))
        .await;
    speaker.expect("MEDIA_STARTED").await;
    for index in 0..50 {
        speaker.send_chunk(index, &tone_chunk(index)).await;
        if index == 25 {
            // Events interleave with the chunks on the compressed streams.
            alice.post(&general, "mid-stream").await;
        }
    }
    speaker.send(json!({"op": "MEDIA_STOP"})).await;
    for peer in [&mut zlib, &mut zstd] {
        peer.expect("MEDIA_STARTED").await;
        let (chunks, ended) = peer.chunks_until("MEDIA_ENDED").await;
        assert_eq!(ended["reason"], "stopped");
        let sequences: Vec<u32> = chunks.iter().map(|(h, _)| h.sequence).collect();
        assert_eq!(sequences, (0..50).collect::<Vec<_>>());
        assert!(
            chunks
                .iter()
                .enumerate()
                .all(|(i, (_, p))| *p == tone_chunk(i as u32))
        );
    }
}
