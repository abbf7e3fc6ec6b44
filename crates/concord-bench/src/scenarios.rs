//! The scenarios: each connects a fresh fleet of the world's members, drives it,
//! and turns what it saw into one JSON summary.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::{StreamExt, stream};
use serde_json::{Map, Value, json};

use crate::{
    args::{BenchArgs, Scenario},
    backoff::Rng,
    content::{Marker, Stamp, now_ns},
    fleet::{Carrier, Cmd, Collected, ConnectInfo, FleetPlan, LocalFleet, Snapshot},
    procfs::ProcSample,
    remote::Fleet,
    report::{Progress, per_second},
    rest::{Rest, World},
    stats::{MessageTable, Percentiles, due, median_max},
    target::Target,
};

/// What every scenario shares.
pub(crate) struct Ctx {
    pub(crate) args: BenchArgs,
    pub(crate) rest: Arc<Rest>,
    pub(crate) world: Arc<World>,
    pub(crate) target: Target,
    pub(crate) run_id: String,
    pub(crate) progress: bool,
}

/// The gateway lets a connection send 20 frames per rolling second (heartbeats
/// included); stay safely under it.
const FRAMES_PER_SEC_PER_CONN: f64 = 18.0;

impl Ctx {
    /// With `--join-after-connect`: the members, all connected now, join the server
    /// (once per run).
    async fn join_if_late(&self, deadline: Instant) -> anyhow::Result<()> {
        if self.args.join_after_connect {
            self.world
                .join_all(&self.rest, self.args.setup_concurrency, deadline)
                .await?;
        }
        Ok(())
    }

    fn plan(&self, carrier: Carrier, slots: usize, timed_below: usize) -> FleetPlan {
        let deadline_ns = now_ns()
            .saturating_add(u64::try_from(self.args.duration.as_nanos()).unwrap_or(u64::MAX / 2));
        FleetPlan {
            run_id: self.run_id.clone(),
            target: self.target.clone(),
            carrier,
            slots,
            timed_below,
            connect_concurrency: self.args.connect_concurrency,
            ready_timeout_ms: millis(self.args.ready_timeout),
            backoff_base_ms: millis(self.args.backoff_base),
            backoff_cap_ms: millis(self.args.backoff_cap),
            deadline_ns,
            members: self.world.members.iter().cloned().enumerate().collect(),
        }
    }

    pub(crate) fn server(&self) -> Option<ProcSample> {
        self.args
            .server_pid
            .and_then(|pid| ProcSample::read_sum(pid, &self.args.also_server_pid))
    }

    fn marker(&self) -> Marker {
        Marker::new(&self.run_id)
    }

    /// The common head of every summary.
    fn head(&self, scenario: Scenario, info: &ConnectInfo) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("scenario".into(), json!(scenario.name()));
        m.insert("run_id".into(), json!(self.run_id));
        m.insert("url".into(), json!(self.args.url));
        m.insert("protocol".into(), json!(self.args.protocol.number()));
        m.insert("connections".into(), json!(self.args.connections));
        m.insert("ready".into(), json!(info.ready));
        m.insert("gave_up".into(), json!(info.gave_up));
        m.insert("procs".into(), json!(self.args.procs));
        m.insert("servers".into(), json!(self.args.servers));
        m.insert(
            "duration_limit_s".into(),
            json!(self.args.duration.as_secs_f64()),
        );
        m
    }

    fn display(&self, label: &'static str, fleet: &Fleet) -> Progress {
        let read = fleet.snapshots();
        let last = Mutex::new((Instant::now(), 0u64));
        Progress::start(self.progress, label, move || {
            let s: Snapshot = read();
            let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
            let rate = per_second(s.deliveries.saturating_sub(last.1), last.0.elapsed());
            *last = (Instant::now(), s.deliveries);
            format!(
                "live {}/{} ready {} failed attempts {} reconnects {} deliveries {} ({rate}) frames {}",
                s.live,
                s.size,
                s.ready_once,
                s.failed_attempts,
                s.reconnects,
                s.deliveries,
                s.frames
            )
        })
    }

    fn deadline(&self, started: Instant) -> Instant {
        started + self.args.duration
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Latency percentiles in µs as JSON.
fn latency_json(pairs: &[(u64, u64)]) -> Value {
    let p = Percentiles::of(&Collected::histogram(pairs));
    json!({"p50": p.p50, "p99": p.p99, "p999": p.p999, "max": p.max, "mean": p.mean, "count": p.count})
}

/// Server CPU and memory over a window, as JSON fields.
fn server_fields(
    m: &mut Map<String, Value>,
    before: Option<ProcSample>,
    after: Option<ProcSample>,
    per: Option<(&str, u64)>,
) {
    let (Some(before), Some(after)) = (before, after) else {
        return;
    };
    let cpu = after.cpu_us.saturating_sub(before.cpu_us);
    m.insert("server_cpu_ms".into(), json!(cpu as f64 / 1000.0));
    if let Some((name, count)) = per
        && count > 0
    {
        m.insert(name.into(), json!(cpu as f64 / count as f64));
    }
    m.insert("server_rss_kib".into(), json!(after.rss_kib));
    m.insert("server_rss_peak_kib".into(), json!(after.hwm_kib));
}

/// Runs one scenario.
pub(crate) async fn run(ctx: &Ctx, scenario: Scenario) -> anyhow::Result<Value> {
    match scenario {
        Scenario::Idle => idle(ctx).await,
        Scenario::Fanout => fanout(ctx, false).await,
        Scenario::Churn => fanout(ctx, true).await,
        Scenario::Storm => storm(ctx).await,
        Scenario::Presence => client_events(ctx, Carrier::Presence).await,
        Scenario::Typing => client_events(ctx, Carrier::Typing).await,
        Scenario::Audio => crate::audio::run(ctx).await,
    }
}

async fn idle(ctx: &Ctx) -> anyhow::Result<Value> {
    let before = ctx.server();
    let client_before = ProcSample::read_self();
    let mut fleet = Fleet::start(ctx.plan(Carrier::Message, 0, 0), ctx.args.procs).await?;
    let display = ctx.display("idle", &fleet);
    let info = fleet.wait_connected().await?;
    ctx.join_if_late(ctx.deadline(Instant::now())).await?;
    let at_ready = ctx.server();
    let client_at_ready = ProcSample::read_self();
    let quiet = fleet.wait_quiet(ctx.args.settle).await?;
    let settled = ctx.server();
    display.stop();
    let collected = fleet.finish(None).await?;

    let mut m = ctx.head(Scenario::Idle, &info);
    let connect_ns = info.last_ready_ns.saturating_sub(info.first_attempt_ns);
    m.insert("failed_attempts".into(), json!(info.failed_attempts));
    m.insert("connect_secs".into(), json!(connect_ns as f64 / 1e9));
    m.insert(
        "connects_per_sec".into(),
        json!(if connect_ns > 0 {
            info.ready as f64 / (connect_ns as f64 / 1e9)
        } else {
            0.0
        }),
    );
    m.insert(
        "connect_latency_us".into(),
        latency_json(&collected.connect_us),
    );
    m.insert("frames".into(), json!(collected.frames));
    m.insert("presence_frames".into(), json!(collected.frames_presence));
    m.insert("server_closes".into(), json!(collected.server_closes));
    m.insert("gateway_errors".into(), json!(collected.gateway_errors));
    server_fields(&mut m, before, settled, None);
    if let (Some(b), Some(r), Some(s)) = (before, at_ready, settled) {
        let ready = info.ready.max(1) as f64;
        m.insert("server_rss_kib_before".into(), json!(b.rss_kib));
        m.insert("server_rss_kib_at_ready".into(), json!(r.rss_kib));
        m.insert(
            "server_rss_kib_per_connection".into(),
            json!((s.rss_kib as f64 - b.rss_kib as f64) / ready),
        );
        m.insert(
            "server_cpu_us_per_connection".into(),
            json!(r.cpu_us.saturating_sub(b.cpu_us) as f64 / ready),
        );
        m.insert(
            "server_cpu_ms_settling".into(),
            json!(s.cpu_us.saturating_sub(r.cpu_us) as f64 / 1000.0),
        );
    }
    if ctx.args.procs == 1
        && let (Some(b), Some(r)) = (client_before, client_at_ready)
    {
        m.insert(
            "bench_rss_kib_per_connection".into(),
            json!((r.rss_kib as f64 - b.rss_kib as f64) / info.ready.max(1) as f64),
        );
    }
    m.insert("completed".into(), json!(info.complete && quiet));
    Ok(Value::Object(m))
}

/// Posts stamped messages `seqs` as the owner, paced at `--rate` (0 = unpaced) with
/// at most `--in-flight` POSTs at once, filling `table`. Returns POST failures and a
/// sample error text.
async fn post_messages(
    ctx: &Ctx,
    seqs: std::ops::Range<usize>,
    table: &mut MessageTable,
    deadline: Instant,
) -> (u64, Option<String>) {
    let marker = ctx.marker();
    let started = Instant::now();
    let first = seqs.start;
    let rate = ctx.args.rate;
    let results: Vec<(usize, u64, u64, Result<bool, String>)> = stream::iter(seqs)
        .map(|seq| {
            let marker = &marker;
            async move {
                if rate > 0.0 {
                    let at = started + Duration::from_secs_f64((seq - first) as f64 / rate);
                    tokio::time::sleep_until(at.into()).await;
                }
                let limit = deadline.saturating_duration_since(Instant::now());
                if limit.is_zero() {
                    return (seq, 0, 0, Err("deadline".to_string()));
                }
                let start = now_ns();
                let content = marker.encode(
                    Stamp {
                        seq: seq as u64,
                        sent_ns: start,
                    },
                    ctx.args.size,
                );
                let ok = ctx
                    .world
                    .post(&ctx.rest, content, limit)
                    .await
                    .map_err(|e| e.to_string());
                (seq, start, now_ns(), ok)
            }
        })
        .buffer_unordered(ctx.args.in_flight)
        .collect()
        .await;
    let mut failures = 0;
    let mut sample = None;
    for (seq, start, end, ok) in results {
        table.post_start_ns[seq] = start;
        table.post_end_ns[seq] = end;
        match ok {
            Ok(true) => {
                table.accepted.insert(seq);
            }
            Ok(false) => {
                failures += 1;
                sample.get_or_insert_with(|| "server refused the POST".to_string());
            }
            Err(e) => {
                failures += 1;
                sample.get_or_insert(e);
            }
        }
    }
    (failures, sample)
}

/// Drops and reconnects random live connections at `--churn-rate` per second until
/// `done` is set.
async fn churn_driver(fleet: &LocalFleet, rate: f64, done: &AtomicBool) -> u64 {
    if rate <= 0.0 || fleet.size() == 0 {
        return 0;
    }
    let mut rng = Rng::from_entropy(7);
    let started = Instant::now();
    let mut sent = 0u64;
    while !done.load(Ordering::Relaxed) && Instant::now() < fleet.deadline() {
        let want = due(rate, started.elapsed().as_secs_f64(), u64::MAX);
        while sent < want {
            let idx = usize::try_from(rng.below(fleet.size() as u64)).unwrap_or(0);
            if fleet.command(idx, Cmd::Reconnect) {
                sent += 1;
            } else {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sent
}

async fn fanout(ctx: &Ctx, churn: bool) -> anyhow::Result<Value> {
    let scenario = if churn {
        Scenario::Churn
    } else {
        Scenario::Fanout
    };
    let started = Instant::now();
    let deadline = ctx.deadline(started);
    let messages = usize::try_from(ctx.args.messages).unwrap_or(usize::MAX);
    let probes = if churn { 0 } else { ctx.args.probes as usize };
    let slots = messages + probes;
    let procs = if churn { 1 } else { ctx.args.procs };
    let mut fleet = Fleet::start(ctx.plan(Carrier::Message, slots, messages), procs).await?;
    let display = ctx.display(scenario.name(), &fleet);
    let info = fleet.wait_connected().await?;
    ctx.join_if_late(deadline).await?;
    // The connect-time presence flood is not part of the fan-out's bill.
    let _ = fleet.wait_quiet(ctx.args.settle).await?;

    let mut table = MessageTable::new(slots);
    let before = ctx.server();
    let client_before = ProcSample::read_self();
    let (failures, error_sample, churned, burst_done) = if churn {
        let local = fleet
            .local()
            .ok_or_else(|| anyhow::anyhow!("churn runs in one process"))?;
        let done = AtomicBool::new(false);
        let post = async {
            let r = post_messages(ctx, 0..messages, &mut table, deadline).await;
            done.store(true, Ordering::Relaxed);
            r
        };
        let ((failures, sample), churned) =
            tokio::join!(post, churn_driver(local, ctx.args.churn_rate, &done));
        let quiet = local.wait_quiet(ctx.args.settle).await;
        (failures, sample, churned, quiet)
    } else {
        let (failures, sample) = post_messages(ctx, 0..messages, &mut table, deadline).await;
        let mut burst = table.accepted.clone();
        for i in messages..slots {
            burst.remove(i);
        }
        let drained = fleet.drain(&burst).await?;
        (failures, sample, 0, drained)
    };
    let after = ctx.server();
    let client_after = ProcSample::read_self();

    // "One message to all N": single messages, each after the previous one arrived
    // everywhere, timed from the POST to its last delivery.
    let mut one_ms = Vec::new();
    for seq in messages..slots {
        if Instant::now() >= deadline {
            break;
        }
        let (fails, _) = post_messages_single(ctx, seq, &mut table, deadline).await;
        if fails > 0 {
            continue;
        }
        let done = fleet.await_seq(seq).await?;
        if done.complete {
            one_ms.push(ms(done.last_ns.saturating_sub(table.post_start_ns[seq])));
        }
    }
    display.stop();
    let collected = fleet.finish(Some(&table)).await?;

    let burst_seqs = 0..messages.min(collected.slot_counts.len());
    let deliveries: u64 = collected.slot_counts[burst_seqs.clone()].iter().sum();
    let last_delivery = collected.slot_last_ns[burst_seqs.clone()]
        .iter()
        .copied()
        .max()
        .unwrap_or(0);
    let first_post = burst_seqs
        .clone()
        .filter(|&i| table.accepted.contains(i))
        .map(|i| table.post_start_ns[i])
        .min()
        .unwrap_or(0);
    let window_ns = last_delivery.saturating_sub(first_post);
    let accepted_burst = burst_seqs
        .clone()
        .filter(|&i| table.accepted.contains(i))
        .count();

    let mut m = ctx.head(scenario, &info);
    m.insert("messages".into(), json!(messages));
    m.insert("accepted".into(), json!(accepted_burst));
    m.insert("post_failures".into(), json!(failures));
    if let Some(e) = error_sample {
        m.insert("post_error".into(), json!(e));
    }
    m.insert("deliveries".into(), json!(deliveries));
    m.insert(
        "expected_deliveries".into(),
        json!(accepted_burst as u64 * info.ready as u64),
    );
    if churn {
        m.insert("lost".into(), json!(collected.misses.lost_while_connected));
        m.insert(
            "missed_while_disconnected".into(),
            json!(collected.misses.missed_around_disconnects),
        );
        m.insert("churn_commands".into(), json!(churned));
        m.insert("reconnects".into(), json!(collected.reconnects));
        m.insert("failed_attempts".into(), json!(collected.failed_attempts));
    } else {
        m.insert("lost".into(), json!(collected.missed));
    }
    m.insert("duplicates".into(), json!(collected.duplicates));
    m.insert("unexpected".into(), json!(collected.unexpected));
    m.insert("server_closes".into(), json!(collected.server_closes));
    m.insert("gateway_errors".into(), json!(collected.gateway_errors));
    m.insert("burst_secs".into(), json!(window_ns as f64 / 1e9));
    m.insert(
        "deliveries_per_sec".into(),
        json!(if window_ns > 0 {
            deliveries as f64 / (window_ns as f64 / 1e9)
        } else {
            0.0
        }),
    );
    m.insert("latency_us".into(), latency_json(&collected.latency_us));
    server_fields(
        &mut m,
        before,
        after,
        Some(("server_cpu_us_per_delivery", deliveries)),
    );
    if ctx.args.procs == 1
        && let (Some(b), Some(a)) = (client_before, client_after)
        && deliveries > 0
    {
        m.insert(
            "bench_cpu_us_per_delivery".into(),
            json!(a.cpu_us.saturating_sub(b.cpu_us) as f64 / deliveries as f64),
        );
    }
    if probes > 0 {
        let mut one = Map::new();
        one.insert("probes".into(), json!(probes));
        one.insert("timed".into(), json!(one_ms.len()));
        if let Some((median, max)) = median_max(&one_ms) {
            one.insert("median".into(), json!(median));
            one.insert("max".into(), json!(max));
        }
        m.insert("fanout_one_ms".into(), Value::Object(one));
    }
    let completed = info.complete
        && burst_done
        && failures == 0
        && Instant::now() < deadline
        && one_ms.len() == probes;
    m.insert("completed".into(), json!(completed));
    Ok(Value::Object(m))
}

/// Posts one probe message.
async fn post_messages_single(
    ctx: &Ctx,
    seq: usize,
    table: &mut MessageTable,
    deadline: Instant,
) -> (u64, Option<String>) {
    // One POST at a time and unpaced: a probe must not queue behind anything.
    let marker = ctx.marker();
    let limit = deadline.saturating_duration_since(Instant::now());
    let start = now_ns();
    let content = marker.encode(
        Stamp {
            seq: seq as u64,
            sent_ns: start,
        },
        ctx.args.size,
    );
    let ok = ctx.world.post(&ctx.rest, content, limit).await;
    table.post_start_ns[seq] = start;
    table.post_end_ns[seq] = now_ns();
    match ok {
        Ok(true) => {
            table.accepted.insert(seq);
            (0, None)
        }
        Ok(false) => (1, Some("server refused the POST".into())),
        Err(e) => (1, Some(e.to_string())),
    }
}

async fn storm(ctx: &Ctx) -> anyhow::Result<Value> {
    let mut fleet = Fleet::start(ctx.plan(Carrier::Message, 0, 0), ctx.args.procs).await?;
    let display = ctx.display("storm", &fleet);
    let info = fleet.wait_connected().await?;
    // Let the connect-time presence flood pass so it is not billed to the storm.
    let _ = fleet.wait_quiet(ctx.args.settle).await?;
    let before = ctx.server();
    let dropped = Instant::now();
    let complete = fleet.storm().await?;
    let wall = dropped.elapsed();
    let after = ctx.server();
    display.stop();
    let collected = fleet.finish(None).await?;

    let hist = Collected::histogram(&collected.storm_us);
    let reconnected = hist.len();
    let mut m = ctx.head(Scenario::Storm, &info);
    m.insert("reconnected".into(), json!(reconnected));
    m.insert(
        "not_reconnected".into(),
        json!((info.ready as u64).saturating_sub(reconnected)),
    );
    m.insert(
        "all_ready_again_secs".into(),
        json!(if complete {
            json!(hist.max() as f64 / 1e6)
        } else {
            Value::Null
        }),
    );
    m.insert("wall_secs".into(), json!(wall.as_secs_f64()));
    m.insert("failed_attempts".into(), json!(collected.storm_failed));
    m.insert("server_closes".into(), json!(collected.server_closes));
    m.insert("gateway_errors".into(), json!(collected.gateway_errors));
    m.insert(
        "reready_latency_us".into(),
        latency_json(&collected.storm_us),
    );
    server_fields(&mut m, before, after, None);
    m.insert("completed".into(), json!(info.complete && complete));
    Ok(Value::Object(m))
}

/// Presence and typing: members send frames, round-robin, at `--rate` in total (0 =
/// just under the gateway's per-connection limit), `--count` frames in all.
async fn client_events(ctx: &Ctx, carrier: Carrier) -> anyhow::Result<Value> {
    let (scenario, label) = match carrier {
        Carrier::Presence => (Scenario::Presence, "presence"),
        _ => (Scenario::Typing, "typing"),
    };
    let started = Instant::now();
    let deadline = ctx.deadline(started);
    let count = usize::try_from(ctx.args.messages).unwrap_or(usize::MAX);
    let slots = if carrier == Carrier::Presence {
        count
    } else {
        0
    };
    let mut fleet = Fleet::start(ctx.plan(carrier, slots, slots), 1).await?;
    let display = ctx.display(label, &fleet);
    let info = fleet.wait_connected().await?;
    let local = fleet
        .local()
        .ok_or_else(|| anyhow::anyhow!("{label} runs in one process"))?;
    // Connect-time presence would otherwise be mixed into the figures.
    let _ = local.wait_quiet(ctx.args.settle).await;

    let size = local.size();
    let limit = FRAMES_PER_SEC_PER_CONN * size as f64;
    let rate = if ctx.args.rate > 0.0 {
        ctx.args.rate.min(limit)
    } else {
        limit
    };
    let marker = ctx.marker();
    let typing_frame =
        json!({"op": "TYPING_START", "d": {"channel_id": ctx.world.channel_id}}).to_string();
    let before = ctx.server();
    let sending = Instant::now();
    let mut sent = 0u64;
    let mut refused = 0u64;
    let mut seq = 0usize;
    while seq < count && Instant::now() < deadline {
        let want = due(rate, sending.elapsed().as_secs_f64(), count as u64);
        while (seq as u64) < want {
            let idx = seq % size.max(1);
            let frame = if carrier == Carrier::Presence {
                local.record_presence_sender(seq, idx);
                let stamp = marker.encode(
                    Stamp {
                        seq: seq as u64,
                        sent_ns: now_ns(),
                    },
                    0,
                );
                json!({"op": "PRESENCE_UPDATE", "d": {"status": "online", "custom_status": stamp, "activity": null}})
                    .to_string()
            } else {
                local.record_typing_send(idx);
                typing_frame.clone()
            };
            if local.command(idx, Cmd::Send(frame)) {
                sent += 1;
            } else {
                refused += 1;
            }
            seq += 1;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let send_secs = sending.elapsed().as_secs_f64();
    let ready = info.ready as u64;
    // Presence goes to co-members (not the sender); typing to the whole channel,
    // which may include the sender.
    let expected = match carrier {
        Carrier::Presence => sent * ready.saturating_sub(1),
        _ => sent * ready,
    };
    let arrived = local.wait_deliveries(expected, ctx.args.settle).await;
    let window = sending.elapsed();
    let after = ctx.server();
    display.stop();
    let collected = fleet.finish(None).await?;

    let mut m = ctx.head(scenario, &info);
    m.insert("count".into(), json!(count));
    m.insert("sent".into(), json!(sent));
    m.insert("not_sent".into(), json!(refused + (count - seq) as u64));
    m.insert("rate".into(), json!(rate));
    m.insert("send_secs".into(), json!(send_secs));
    m.insert("deliveries".into(), json!(collected.deliveries));
    m.insert("expected_deliveries".into(), json!(expected));
    if carrier == Carrier::Presence {
        let unique: u64 = collected.slot_counts.iter().sum();
        m.insert("lost".into(), json!(expected.saturating_sub(unique)));
        m.insert("duplicates".into(), json!(collected.duplicates));
        m.insert("self_echo".into(), json!(collected.self_echo));
    } else {
        m.insert(
            "deliveries_per_send".into(),
            json!(if sent > 0 {
                collected.deliveries as f64 / sent as f64
            } else {
                0.0
            }),
        );
    }
    m.insert("unexpected".into(), json!(collected.unexpected));
    m.insert("server_closes".into(), json!(collected.server_closes));
    m.insert("gateway_errors".into(), json!(collected.gateway_errors));
    m.insert(
        "deliveries_per_sec".into(),
        json!(collected.deliveries as f64 / window.as_secs_f64().max(1e-9)),
    );
    m.insert("latency_us".into(), latency_json(&collected.latency_us));
    server_fields(
        &mut m,
        before,
        after,
        Some(("server_cpu_us_per_delivery", collected.deliveries)),
    );
    m.insert(
        "completed".into(),
        json!(info.complete && arrived && sent == count as u64),
    );
    Ok(Value::Object(m))
}
