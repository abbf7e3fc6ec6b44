//! Envelope encode/decode: a MESSAGE_CREATE dispatch serialized once (what fan-out pays
//! per event), and the client frames the gateway parses per inbound frame.

#![allow(missing_docs)]

use std::hint::black_box;

use concord_protocol::{
    ChannelId, ClientFrame, Dispatch, Event, Message, MessageId, ServerFrame, Timestamp, UserId,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn message() -> Message {
    Message {
        id: MessageId::new(),
        channel_id: ChannelId::new(),
        author_id: Some(UserId::new()),
        content: "x".repeat(100),
        reply_to: None,
        mention_user_ids: Vec::new(),
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
    }
}

fn envelope(c: &mut Criterion) {
    let msg = message();
    let encoded = serde_json::to_string(&Dispatch::new(Event::MessageCreate, &msg)).unwrap();
    let mut group = c.benchmark_group("envelope");
    group.throughput(Throughput::Elements(1));
    group.bench_function("encode MESSAGE_CREATE", |b| {
        b.iter(|| {
            serde_json::to_vec(&Dispatch::new(Event::MessageCreate, black_box(&msg))).unwrap()
        })
    });
    group.bench_function("decode MESSAGE_CREATE (client side)", |b| {
        b.iter(|| serde_json::from_str::<ServerFrame>(black_box(&encoded)).unwrap())
    });
    let heartbeat = r#"{"op":"HEARTBEAT","t":null,"d":null}"#;
    group.bench_function("decode HEARTBEAT", |b| {
        b.iter(|| serde_json::from_str::<ClientFrame>(black_box(heartbeat)).unwrap())
    });
    let presence = r#"{"op":"PRESENCE_UPDATE","t":null,"d":{"status":"away","custom_status":"lunch","activity":null}}"#;
    group.bench_function("decode PRESENCE_UPDATE", |b| {
        b.iter(|| serde_json::from_str::<ClientFrame>(black_box(presence)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, envelope);
criterion_main!(benches);
