//! Fan-out enqueue: one serialized event queued on 10k sessions (shared bytes, one push
//! per session), and the writer's drain of a session's queue.

#![allow(missing_docs)]

use concord_gateway::{Hub, Payload, QueueLimits};
use concord_protocol::UserId;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

fn fanout(c: &mut Criterion) {
    let hub = Hub::new();
    let users: Vec<UserId> = (0..10_000).map(|_| UserId::new()).collect();
    let sessions: Vec<_> = users
        .iter()
        .map(|u| hub.register(*u, QueueLimits::default()))
        .collect();
    let payload = Payload::json(&serde_json::json!({
        "op": "DISPATCH", "t": "MESSAGE_CREATE", "d": {"content": "x".repeat(100)}
    }))
    .unwrap();
    let mut group = c.benchmark_group("fanout");
    group.throughput(Throughput::Elements(users.len() as u64));
    group.bench_function("enqueue one event to 10k sessions", |b| {
        b.iter_batched(
            || {
                for s in &sessions {
                    drop(s.outbox.take());
                }
            },
            |()| hub.send_to_users(users.iter().copied(), &payload),
            BatchSize::PerIteration,
        )
    });
    group.finish();

    let mut group = c.benchmark_group("outbox");
    group.throughput(Throughput::Elements(20));
    let one = &sessions[0];
    // What a session's writer does: take the queue and write from it.
    group.bench_function("push 20 then drain", |b| {
        b.iter(|| {
            for _ in 0..20 {
                one.outbox.push(payload.clone());
            }
            one.outbox.take()
        })
    });
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
