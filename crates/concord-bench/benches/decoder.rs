//! The receive path of one gateway frame: a v2 MESSAGE_CREATE dispatch carrying a
//! bench stamp (100-byte content, as `concord bench` sends by default), read plain,
//! from a `zlib-stream` and from a `zstd-stream` (compressed by the server's own
//! `StreamCompressor` at its default settings, one context for the whole stream).
//!
//! Two readers: the SDK's (`concord_client::raw::Decoder` for the frame, then
//! `raw::decode` into a typed `ServerMessage`, then the stamp from the typed content)
//! and the fleet's lean one (`fleet/conn.rs`: the event name by scanning, the stamp
//! found in the raw text). Compressed frames go through the SDK's `Decoder` on both
//! paths (the fleet has no inflater of its own); "inflate only" is that step alone.

#![allow(missing_docs)]

use concord_bench::receive::Receive;
use concord_client::{Compression, raw::Decoder};
use concord_gateway::{CompressionConfig, StreamCompressor};
use concord_protocol::{ChannelId, Message, MessageId, Timestamp, UserId};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Distinct frames in one stream (the decoder starts afresh after the last).
const FRAMES: usize = 20_000;
const LIMIT: usize = 16 << 20;

/// The v2 dispatch of message `i` as the server writes it.
fn frame(receive: &Receive, i: u64, channel: ChannelId, authors: &[UserId]) -> String {
    let message = Message {
        id: MessageId::new(),
        channel_id: channel,
        author_id: Some(authors[(i % authors.len() as u64) as usize]),
        content: receive.content(i, 1_796_000_000_000_000_000 + i * 7919, 100),
        reply_to: None,
        mention_user_ids: vec![],
        mention_everyone: false,
        thread_id: None,
        thread_reply_count: 0,
        edited_at: None,
        deleted: false,
        created_at: Timestamp::now(),
        pinned: false,
        pinned_by: None,
        pinned_at: None,
        poll: None,
        event: None,
    };
    format!(
        r#"{{"op":"DISPATCH","s":{},"t":"MESSAGE_CREATE","d":{}}}"#,
        i + 2,
        serde_json::to_string(&message).unwrap()
    )
}

fn compressed(frames: &[String], compression: concord_gateway::Compression) -> Vec<Vec<u8>> {
    let mut compressor = StreamCompressor::new(compression, CompressionConfig::default()).unwrap();
    frames
        .iter()
        .map(|f| {
            let mut out = Vec::new();
            compressor.compress(f.as_bytes(), &mut out).unwrap();
            out
        })
        .collect()
}

/// Feeds `frames` to a decoder in order, forever, starting a new decoder (a new
/// connection) after the last frame.
struct Stream<'a> {
    frames: &'a [Vec<u8>],
    compression: Compression,
    decoder: Decoder,
    next: usize,
}

impl<'a> Stream<'a> {
    fn new(frames: &'a [Vec<u8>], compression: Compression) -> Self {
        Self {
            frames,
            compression,
            decoder: Decoder::new(Some(compression), LIMIT),
            next: 0,
        }
    }

    fn next(&mut self) -> &[u8] {
        if self.next == self.frames.len() {
            self.next = 0;
            self.decoder = Decoder::new(Some(self.compression), LIMIT);
        }
        let frame = &self.frames[self.next];
        self.next += 1;
        self.decoder.binary(frame).expect("decodes")
    }
}

fn decoder(c: &mut Criterion) {
    let receive = Receive::new("r1a2b3");
    let channel = ChannelId::new();
    let authors: Vec<UserId> = (0..5).map(|_| UserId::new()).collect();
    let frames: Vec<String> = (0..FRAMES as u64)
        .map(|i| frame(&receive, i, channel, &authors))
        .collect();
    let zlib = compressed(&frames, concord_gateway::Compression::Zlib);
    let zstd = compressed(&frames, concord_gateway::Compression::Zstd);
    let average = frames.iter().map(String::len).sum::<usize>() / frames.len();
    eprintln!(
        "MESSAGE_CREATE: {average} bytes of JSON; zlib-stream {} B, zstd-stream {} B per frame on average",
        zlib.iter().map(Vec::len).sum::<usize>() / FRAMES,
        zstd.iter().map(Vec::len).sum::<usize>() / FRAMES,
    );

    // Both readers agree on every frame, compressed or not.
    for (compression, stream) in [
        (Compression::ZlibStream, &zlib),
        (Compression::ZstdStream, &zstd),
    ] {
        let mut s = Stream::new(stream, compression);
        for (i, text) in frames.iter().enumerate() {
            let bytes = s.next();
            assert_eq!(bytes, text.as_bytes());
            let lean = receive.lean(text).unwrap();
            let (_, sdk) = receive.sdk(bytes).unwrap();
            assert_eq!(lean.0, "MESSAGE_CREATE");
            assert_eq!(lean.1, sdk);
            assert_eq!(sdk.map(|s| s.0), Some(i as u64));
        }
    }

    let mut group = c.benchmark_group("decode MESSAGE_CREATE");
    group.throughput(Throughput::Elements(1));
    let plain = Decoder::new(None, LIMIT);
    let mut i = 0;
    group.bench_function("plain/lean", |b| {
        b.iter(|| {
            i = (i + 1) % FRAMES;
            receive.lean(std::hint::black_box(&frames[i])).map(|s| s.1)
        })
    });
    group.bench_function("plain/sdk", |b| {
        b.iter(|| {
            i = (i + 1) % FRAMES;
            let bytes = plain
                .text(std::hint::black_box(frames[i].as_bytes()))
                .unwrap();
            receive.sdk(bytes).map(|s| s.1)
        })
    });
    for (name, compression, stream) in [
        ("zlib-stream", Compression::ZlibStream, &zlib),
        ("zstd-stream", Compression::ZstdStream, &zstd),
    ] {
        let mut s = Stream::new(stream, compression);
        group.bench_function(format!("{name}/inflate only"), |b| {
            b.iter(|| s.next().len())
        });
        let mut s = Stream::new(stream, compression);
        group.bench_function(format!("{name}/lean"), |b| {
            b.iter(|| {
                let text = std::str::from_utf8(s.next()).unwrap();
                receive.lean(text).map(|s| s.1)
            })
        });
        let mut s = Stream::new(stream, compression);
        group.bench_function(format!("{name}/sdk"), |b| {
            b.iter(|| receive.sdk(s.next()).map(|s| s.1))
        });
    }
    group.finish();
}

criterion_group!(benches, decoder);
criterion_main!(benches);
