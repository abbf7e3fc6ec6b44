//! Stream compression per message: a typical MESSAGE_CREATE dispatch compressed in a
//! warm per-connection context, zlib and zstd, at the default and a larger config.
//! Prints, once, the compressed bytes per message and the memory each context holds.

#![allow(missing_docs)]

use concord_gateway::{Compression, CompressionConfig, StreamCompressor, ZlibConfig};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const WORDS: &[&str] = &[
    "the",
    "meeting",
    "moved",
    "to",
    "thursday",
    "afternoon",
    "can",
    "you",
    "check",
    "build",
    "logs",
    "again",
    "before",
    "we",
    "ship",
    "release",
    "looks",
    "good",
    "me",
    "thanks",
    "for",
    "quick",
    "review",
    "i",
    "think",
    "bug",
    "is",
    "in",
    "parser",
    "lol",
    "anyone",
    "seen",
    "new",
    "trailer",
    "yet",
    "pizza",
    "tonight",
    "sounds",
    "great",
    "see",
    "there",
];

/// Deterministic chat-like text of exactly `len` characters.
fn sentence(len: usize, seed: u64) -> String {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut text = String::with_capacity(len + 16);
    while text.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(WORDS[(x % WORDS.len() as u64) as usize]);
    }
    text.truncate(len);
    text
}

/// A MESSAGE_CREATE dispatch as v1 sends it, about 560 bytes, with fields that vary
/// between messages the way they do on a busy channel.
fn dispatch(i: u64) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "op": 0,
        "s": 1000 + i,
        "t": "MESSAGE_CREATE",
        "d": {
            "id": format!("01JD{:022}", 7_000_000_000 + i * 7919),
            "channel_id": format!("01J9ZK3V8Q6X2M4N7P1R5T{:04}", i % 3),
            "server_id": "01J9ZK0000AAAABBBBCCCCDDDD",
            "author": {
                "id": format!("01J9ZK2A4B6C8D0E2F4G6H{:04}", i % 5),
                "username": format!("member{}", i % 5),
                "display_name": format!("Member {}", i % 5),
                "avatar": null,
                "bot": false
            },
            "content": sentence(100, i),
            "timestamp": format!("2026-11-22T20:{:02}:{:02}.{:03}Z", (i / 60) % 60, i % 60, (i * 37) % 1000),
            "edited_timestamp": null,
            "mentions": [],
            "attachments": [],
            "nonce": format!("{}", 9_100_000_000_000u64 + i * 104_729)
        }
    }))
    .unwrap()
}

fn configs() -> Vec<(Compression, &'static str, CompressionConfig)> {
    let default = CompressionConfig::default();
    let large = CompressionConfig::library_defaults();
    let level_6 = CompressionConfig {
        zlib: ZlibConfig {
            level: 6,
            ..ZlibConfig::default()
        },
        ..default
    };
    vec![
        (
            Compression::Zlib,
            "default (level 1, window 2^12, memLevel 2)",
            default,
        ),
        (
            Compression::Zlib,
            "level 6 (window 2^12, memLevel 2)",
            level_6,
        ),
        (
            Compression::Zlib,
            "large (level 6, window 2^15, memLevel 8)",
            large,
        ),
        (
            Compression::Zstd,
            "default (level 3, window 2^12, hash/chain 2^10)",
            default,
        ),
        (
            Compression::Zstd,
            "large (level 3, its own 2 MiB window)",
            large,
        ),
    ]
}

fn report(messages: &[Vec<u8>]) {
    let average_in = messages.iter().map(Vec::len).sum::<usize>() / messages.len();
    eprintln!(
        "compression per message: {} messages, {average_in} bytes each on average",
        messages.len()
    );
    for (compression, label, config) in configs() {
        let mut c = StreamCompressor::new(compression, config).unwrap();
        let mut out = Vec::new();
        c.compress(&messages[0], &mut out).unwrap();
        let first = out.len();
        // Warm: every message after the first 100.
        let mut warm = 0;
        for (i, m) in messages.iter().enumerate().skip(1) {
            out.clear();
            c.compress(m, &mut out).unwrap();
            if i >= 100 {
                warm += out.len();
            }
        }
        let warm = warm as f64 / (messages.len() - 100) as f64;
        eprintln!(
            "  {compression} {label}: first message {first} B, warm {warm:.1} B/message \
             ({:.1}% of the JSON), context {:.1} KiB",
            100.0 * warm / average_in as f64,
            c.context_bytes() as f64 / 1024.0,
        );
    }
}

fn compression(c: &mut Criterion) {
    // 10k distinct messages (5 MB): the cycle must not fit in the largest window
    // (2 MiB), or a repeat of the whole message would be found every time.
    let messages: Vec<Vec<u8>> = (0..10_000).map(dispatch).collect();
    report(&messages);
    let average_in = messages.iter().map(Vec::len).sum::<usize>() / messages.len();

    let mut group = c.benchmark_group("compression per message");
    group.throughput(Throughput::Bytes(average_in as u64));
    for (compression, label, config) in configs() {
        let mut compressor = StreamCompressor::new(compression, config).unwrap();
        let mut out = Vec::with_capacity(2048);
        for m in &messages[..100] {
            out.clear();
            compressor.compress(m, &mut out).unwrap();
        }
        let mut i = 0;
        group.bench_function(format!("{compression} {label}"), |b| {
            b.iter(|| {
                out.clear();
                i = (i + 1) % messages.len();
                compressor.compress(&messages[i], &mut out).unwrap();
                out.len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, compression);
criterion_main!(benches);
