//! A fleet of member connections in this process: one task per socket, counters and
//! histograms shared by all of them, and what they saw gathered at the end.

mod conn;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::FutureExt;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::{
    sync::{Semaphore, mpsc, watch},
    task::JoinHandle,
};

use self::conn::Conn;
use crate::{
    backoff::{Backoff, Rng},
    content::{Marker, Stamp, event_name, now_ns, string_field},
    rest::Member,
    stats::{
        Bitmap, MessageTable, Misses, SessionLog, add_pairs, classify_misses, histogram_to_pairs,
        new_histogram, record,
    },
    target::{Target, Ws},
};

/// Which event carries the stamps a scenario measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Carrier {
    /// `MESSAGE_CREATE` with the stamp in `content`.
    Message,
    /// `PRESENCE_UPDATE` with the stamp in `custom_status`.
    Presence,
    /// `TYPING_START`, timed from the sender's last send (it carries no text).
    Typing,
}

impl Carrier {
    fn event(self) -> &'static str {
        match self {
            Self::Message => "MESSAGE_CREATE",
            Self::Presence => "PRESENCE_UPDATE",
            Self::Typing => "TYPING_START",
        }
    }
}

/// What a fleet needs to run; the parent ships it to worker processes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FleetPlan {
    pub(crate) run_id: String,
    pub(crate) target: Target,
    pub(crate) carrier: Carrier,
    /// Sequence numbers tracked (messages plus probes).
    pub(crate) slots: usize,
    /// Only deliveries of sequence numbers below this go into the latency histogram
    /// (fan-out probes are timed separately).
    pub(crate) timed_below: usize,
    pub(crate) connect_concurrency: usize,
    pub(crate) ready_timeout_ms: u64,
    pub(crate) backoff_base_ms: u64,
    pub(crate) backoff_cap_ms: u64,
    /// Hard stop, Unix nanoseconds (shared by all processes).
    pub(crate) deadline_ns: u64,
    /// This fleet's members with their index across all processes.
    pub(crate) members: Vec<(usize, Member)>,
}

/// Live counters, for the progress line and for waiting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    pub(crate) size: usize,
    pub(crate) live: usize,
    pub(crate) ready_once: usize,
    pub(crate) gave_up: usize,
    pub(crate) failed_attempts: u64,
    pub(crate) deliveries: u64,
    pub(crate) frames: u64,
    pub(crate) reconnects: u64,
    pub(crate) storm_ready: usize,
}

impl Snapshot {
    pub(crate) fn add(&mut self, o: &Snapshot) {
        self.size += o.size;
        self.live += o.live;
        self.ready_once += o.ready_once;
        self.gave_up += o.gave_up;
        self.failed_attempts += o.failed_attempts;
        self.deliveries += o.deliveries;
        self.frames += o.frames;
        self.reconnects += o.reconnects;
        self.storm_ready += o.storm_ready;
    }
}

/// The outcome of the initial connect.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ConnectInfo {
    pub(crate) size: usize,
    pub(crate) ready: usize,
    pub(crate) gave_up: usize,
    pub(crate) failed_attempts: u64,
    /// When the first attempt started / the last READY arrived, Unix ns.
    pub(crate) first_attempt_ns: u64,
    pub(crate) last_ready_ns: u64,
    pub(crate) complete: bool,
}

impl ConnectInfo {
    pub(crate) fn add(&mut self, o: &ConnectInfo) {
        let first = self.size == 0;
        self.size += o.size;
        self.ready += o.ready;
        self.gave_up += o.gave_up;
        self.failed_attempts += o.failed_attempts;
        self.first_attempt_ns = if first {
            o.first_attempt_ns
        } else {
            self.first_attempt_ns.min(o.first_attempt_ns)
        };
        self.last_ready_ns = self.last_ready_ns.max(o.last_ready_ns);
        self.complete = if first {
            o.complete
        } else {
            self.complete && o.complete
        };
    }
}

/// When one sequence number reached every connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SeqDone {
    pub(crate) count: u64,
    pub(crate) last_ns: u64,
    pub(crate) complete: bool,
}

/// Everything a fleet saw, mergeable across processes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Collected {
    pub(crate) conns: usize,
    pub(crate) ever_ready: usize,
    pub(crate) latency_us: Vec<(u64, u64)>,
    pub(crate) connect_us: Vec<(u64, u64)>,
    pub(crate) storm_us: Vec<(u64, u64)>,
    pub(crate) storm_failed: u64,
    pub(crate) deliveries: u64,
    pub(crate) duplicates: u64,
    pub(crate) unexpected: u64,
    pub(crate) self_echo: u64,
    pub(crate) frames: u64,
    pub(crate) bytes: u64,
    pub(crate) frames_message: u64,
    pub(crate) frames_presence: u64,
    pub(crate) frames_typing: u64,
    pub(crate) failed_attempts: u64,
    pub(crate) server_closes: u64,
    /// v2 `ERROR` frames received (v1 drops refused input silently).
    pub(crate) gateway_errors: u64,
    pub(crate) reconnects: u64,
    pub(crate) slot_counts: Vec<u64>,
    pub(crate) slot_last_ns: Vec<u64>,
    /// Accepted messages never received, summed over connections that were READY.
    pub(crate) missed: u64,
    pub(crate) misses: Misses,
}

impl Collected {
    pub(crate) fn merge(&mut self, o: Collected) {
        self.conns += o.conns;
        self.ever_ready += o.ever_ready;
        self.latency_us.extend(o.latency_us);
        self.connect_us.extend(o.connect_us);
        self.storm_us.extend(o.storm_us);
        self.storm_failed += o.storm_failed;
        self.deliveries += o.deliveries;
        self.duplicates += o.duplicates;
        self.unexpected += o.unexpected;
        self.self_echo += o.self_echo;
        self.frames += o.frames;
        self.bytes += o.bytes;
        self.frames_message += o.frames_message;
        self.frames_presence += o.frames_presence;
        self.frames_typing += o.frames_typing;
        self.failed_attempts += o.failed_attempts;
        self.server_closes += o.server_closes;
        self.gateway_errors += o.gateway_errors;
        self.reconnects += o.reconnects;
        merge_slots(&mut self.slot_counts, &o.slot_counts, |a, b| a + b);
        merge_slots(&mut self.slot_last_ns, &o.slot_last_ns, u64::max);
        self.missed += o.missed;
        self.misses.add(o.misses);
    }

    /// A histogram rebuilt from shipped pairs.
    pub(crate) fn histogram(pairs: &[(u64, u64)]) -> Histogram<u64> {
        let mut hist = new_histogram();
        add_pairs(&mut hist, pairs);
        hist
    }
}

fn merge_slots(into: &mut Vec<u64>, from: &[u64], f: impl Fn(u64, u64) -> u64) {
    if into.len() < from.len() {
        into.resize(from.len(), 0);
    }
    for (a, &b) in into.iter_mut().zip(from) {
        *a = f(*a, b);
    }
}

/// A command to one connection task.
#[derive(Debug)]
pub(crate) enum Cmd {
    /// Send this text frame.
    Send(String),
    /// Drop the socket and reconnect at once (churn).
    Reconnect,
    /// Drop the socket and reconnect with full-jitter backoff (storm).
    Storm,
    /// Close cleanly (code 1000) and end.
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Initial,
    Churn,
    Storm,
}

#[derive(Default)]
struct Counters {
    live: AtomicUsize,
    ready_once: AtomicUsize,
    gave_up: AtomicUsize,
    failed_attempts: AtomicU64,
    deliveries: AtomicU64,
    duplicates: AtomicU64,
    unexpected: AtomicU64,
    self_echo: AtomicU64,
    frames: AtomicU64,
    bytes: AtomicU64,
    frames_message: AtomicU64,
    frames_presence: AtomicU64,
    frames_typing: AtomicU64,
    server_closes: AtomicU64,
    gateway_errors: AtomicU64,
    reconnects: AtomicU64,
    storm_ready: AtomicUsize,
    storm_failed: AtomicU64,
    first_attempt_ns: AtomicU64,
    last_ready_ns: AtomicU64,
    storm_drop_ns: AtomicU64,
}

struct Slot {
    count: AtomicU32,
    last_ns: AtomicU64,
}

/// Shards of the latency histogram: one lock per shard keeps contention low without
/// a histogram per connection (tens of KB each).
const SHARDS: usize = 8;

struct Shared {
    target: Target,
    carrier: Carrier,
    marker: Marker,
    timed_below: usize,
    deadline: Instant,
    backoff: Backoff,
    ready_timeout: Duration,
    gate: Semaphore,
    c: Counters,
    latency: Vec<Mutex<Histogram<u64>>>,
    connect_us: Mutex<Histogram<u64>>,
    storm_us: Mutex<Histogram<u64>>,
    slots: Vec<Slot>,
    /// Presence: which local connection sent each sequence number (its own echo is
    /// not a delivery). `usize::MAX` = not sent from here.
    senders: Vec<AtomicUsize>,
    /// Typing: when each local connection last sent TYPING_START, by user id.
    typing_index: HashMap<String, usize>,
    typing_sent_ns: Vec<AtomicU64>,
}

/// Converts a shared Unix-ns deadline into this process's monotonic clock.
pub(crate) fn deadline_instant(deadline_ns: u64) -> Instant {
    let left = deadline_ns.saturating_sub(now_ns());
    Instant::now() + Duration::from_nanos(left)
}

/// Connections of one scenario living in this process.
pub(crate) struct LocalFleet {
    shared: Arc<Shared>,
    cmds: Vec<mpsc::Sender<Cmd>>,
    tasks: Vec<JoinHandle<Vec<SessionLog>>>,
    stop: watch::Sender<bool>,
}

impl LocalFleet {
    /// Spawns one task per member; each connects at once (at most
    /// `connect_concurrency` attempts in flight).
    pub(crate) fn start(plan: FleetPlan) -> Self {
        let size = plan.members.len();
        let typing_index = plan
            .members
            .iter()
            .enumerate()
            .map(|(i, (_, m))| (m.user_id.clone(), i))
            .collect();
        let shared = Arc::new(Shared {
            marker: Marker::new(&plan.run_id),
            carrier: plan.carrier,
            timed_below: plan.timed_below,
            deadline: deadline_instant(plan.deadline_ns),
            backoff: Backoff {
                base: Duration::from_millis(plan.backoff_base_ms.max(1)),
                cap: Duration::from_millis(plan.backoff_cap_ms.max(1)),
            },
            ready_timeout: Duration::from_millis(plan.ready_timeout_ms.max(1)),
            gate: Semaphore::new(plan.connect_concurrency.max(1)),
            c: Counters {
                first_attempt_ns: AtomicU64::new(u64::MAX),
                ..Counters::default()
            },
            latency: (0..SHARDS).map(|_| Mutex::new(new_histogram())).collect(),
            connect_us: Mutex::new(new_histogram()),
            storm_us: Mutex::new(new_histogram()),
            slots: (0..plan.slots)
                .map(|_| Slot {
                    count: AtomicU32::new(0),
                    last_ns: AtomicU64::new(0),
                })
                .collect(),
            senders: (0..plan.slots)
                .map(|_| AtomicUsize::new(usize::MAX))
                .collect(),
            typing_index,
            typing_sent_ns: (0..size).map(|_| AtomicU64::new(0)).collect(),
            target: plan.target,
        });
        let (stop, _) = watch::channel(false);
        let mut cmds = Vec::with_capacity(size);
        let mut tasks = Vec::with_capacity(size);
        for (idx, (global, member)) in plan.members.into_iter().enumerate() {
            let (tx, rx) = mpsc::channel(16);
            cmds.push(tx);
            let task = Conn {
                shared: shared.clone(),
                idx,
                global,
                query: shared.target.query(&member.token),
                cmds: rx,
                stop: stop.subscribe(),
                rng: Rng::from_entropy(global as u64),
            };
            tasks.push(tokio::spawn(task.run()));
        }
        Self {
            shared,
            cmds,
            tasks,
            stop,
        }
    }

    pub(crate) fn size(&self) -> usize {
        self.cmds.len()
    }

    pub(crate) fn deadline(&self) -> Instant {
        self.shared.deadline
    }

    /// A `Send` closure reading the live counters (for the progress line).
    pub(crate) fn snapshots(&self) -> impl Fn() -> Snapshot + Send + Sync + 'static {
        let shared = self.shared.clone();
        let size = self.size();
        move || snapshot(&shared, size)
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        snapshot(&self.shared, self.size())
    }

    /// Waits until every connection is READY or has given up (deadline).
    pub(crate) async fn wait_connected(&self) -> ConnectInfo {
        let size = self.size();
        let complete = self.poll_until(|s| s.ready_once + s.gave_up >= size).await;
        let c = &self.shared.c;
        let first = c.first_attempt_ns.load(Ordering::Relaxed);
        ConnectInfo {
            size,
            ready: c.ready_once.load(Ordering::Relaxed),
            gave_up: c.gave_up.load(Ordering::Relaxed),
            failed_attempts: c.failed_attempts.load(Ordering::Relaxed),
            first_attempt_ns: if first == u64::MAX { 0 } else { first },
            last_ready_ns: c.last_ready_ns.load(Ordering::Relaxed),
            complete,
        }
    }

    /// Polls `done` every 10 ms until it holds (true) or the deadline passes (false).
    async fn poll_until(&self, done: impl Fn(&Snapshot) -> bool) -> bool {
        loop {
            if done(&self.snapshot()) {
                return true;
            }
            if Instant::now() >= self.shared.deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until `seq` reached every connection that was ever READY.
    pub(crate) async fn await_seq(&self, seq: usize) -> SeqDone {
        let Some(slot) = self.shared.slots.get(seq) else {
            return SeqDone::default();
        };
        let complete = self
            .poll_until(|s| slot.count.load(Ordering::Relaxed) as usize >= s.ready_once)
            .await;
        SeqDone {
            count: u64::from(slot.count.load(Ordering::Relaxed)),
            last_ns: slot.last_ns.load(Ordering::Relaxed),
            complete,
        }
    }

    /// Waits until every accepted message reached every connection that was ever
    /// READY (fan-out without churn).
    pub(crate) async fn drain(&self, accepted: &Bitmap) -> bool {
        let wanted: Vec<usize> = accepted.iter().collect();
        let slots = &self.shared.slots;
        self.poll_until(|s| {
            wanted.iter().all(|&i| {
                slots
                    .get(i)
                    .is_none_or(|slot| slot.count.load(Ordering::Relaxed) as usize >= s.ready_once)
            })
        })
        .await
    }

    /// Waits until no frame has arrived for `quiet` (or the deadline).
    pub(crate) async fn wait_quiet(&self, quiet: Duration) -> bool {
        self.wait_deliveries(u64::MAX, quiet).await;
        Instant::now() < self.shared.deadline
    }

    /// Waits until `target` stamped deliveries arrived (true), or no frame arrived
    /// for `quiet`, or the deadline (false).
    pub(crate) async fn wait_deliveries(&self, target: u64, quiet: Duration) -> bool {
        let mut last = self.snapshot().frames;
        let mut since = Instant::now();
        loop {
            let now = self.snapshot();
            if now.deliveries >= target {
                return true;
            }
            if Instant::now() >= self.shared.deadline {
                return false;
            }
            if now.frames != last {
                last = now.frames;
                since = Instant::now();
            } else if since.elapsed() >= quiet {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Drops every live socket at once; each reconnects with full-jitter backoff.
    /// Returns when all of them are READY again (true) or at the deadline (false).
    pub(crate) async fn storm(&self) -> bool {
        let c = &self.shared.c;
        c.storm_ready.store(0, Ordering::Relaxed);
        c.storm_drop_ns.store(now_ns(), Ordering::Relaxed);
        let expected = c.live.load(Ordering::Relaxed);
        for tx in &self.cmds {
            let _ = tx.send(Cmd::Storm).await;
        }
        self.poll_until(|s| s.storm_ready >= expected).await
    }

    /// Sends a command to connection `idx`; false if its queue is full or it ended.
    pub(crate) fn command(&self, idx: usize, cmd: Cmd) -> bool {
        self.cmds
            .get(idx)
            .is_some_and(|tx| tx.try_send(cmd).is_ok())
    }

    /// Notes that connection `idx` sends presence stamp `seq` (its echo is not counted).
    pub(crate) fn record_presence_sender(&self, seq: usize, idx: usize) {
        if let Some(s) = self.shared.senders.get(seq) {
            s.store(idx, Ordering::Relaxed);
        }
    }

    /// Notes that connection `idx` is about to send TYPING_START.
    pub(crate) fn record_typing_send(&self, idx: usize) {
        if let Some(s) = self.shared.typing_sent_ns.get(idx) {
            s.store(now_ns(), Ordering::Relaxed);
        }
    }

    /// Closes every connection (code 1000) and gathers what they saw; misses are
    /// judged against `table` when given.
    pub(crate) async fn finish(self, table: Option<&MessageTable>) -> Collected {
        let _ = self.stop.send(true);
        for tx in &self.cmds {
            let _ = tx.try_send(Cmd::Close);
        }
        drop(self.cmds);
        let mut logs = Vec::with_capacity(self.tasks.len());
        for task in self.tasks {
            logs.push(task.await.unwrap_or_default());
        }
        let shared = &self.shared;
        let c = &shared.c;
        let mut collected = Collected {
            conns: logs.len(),
            ever_ready: c.ready_once.load(Ordering::Relaxed),
            latency_us: {
                let mut all = new_histogram();
                for shard in &shared.latency {
                    let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
                    let _ = all.add(&*shard);
                }
                histogram_to_pairs(&all)
            },
            connect_us: histogram_to_pairs(
                &shared.connect_us.lock().unwrap_or_else(|e| e.into_inner()),
            ),
            storm_us: histogram_to_pairs(
                &shared.storm_us.lock().unwrap_or_else(|e| e.into_inner()),
            ),
            storm_failed: c.storm_failed.load(Ordering::Relaxed),
            deliveries: c.deliveries.load(Ordering::Relaxed),
            duplicates: c.duplicates.load(Ordering::Relaxed),
            unexpected: c.unexpected.load(Ordering::Relaxed),
            self_echo: c.self_echo.load(Ordering::Relaxed),
            frames: c.frames.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            frames_message: c.frames_message.load(Ordering::Relaxed),
            frames_presence: c.frames_presence.load(Ordering::Relaxed),
            frames_typing: c.frames_typing.load(Ordering::Relaxed),
            failed_attempts: c.failed_attempts.load(Ordering::Relaxed),
            server_closes: c.server_closes.load(Ordering::Relaxed),
            gateway_errors: c.gateway_errors.load(Ordering::Relaxed),
            reconnects: c.reconnects.load(Ordering::Relaxed),
            slot_counts: shared
                .slots
                .iter()
                .map(|s| u64::from(s.count.load(Ordering::Relaxed)))
                .collect(),
            slot_last_ns: shared
                .slots
                .iter()
                .map(|s| s.last_ns.load(Ordering::Relaxed))
                .collect(),
            missed: 0,
            misses: Misses::default(),
        };
        if let Some(table) = table {
            let expected = table.accepted.count();
            for sessions in logs.iter().filter(|s| !s.is_empty()) {
                let mut union = Bitmap::new(table.accepted.len());
                for s in sessions {
                    for i in s.got.iter() {
                        union.insert(i);
                    }
                }
                collected.missed += expected - union.count_common(&table.accepted);
                collected.misses.add(classify_misses(sessions, table));
            }
        }
        collected
    }
}

fn snapshot(shared: &Shared, size: usize) -> Snapshot {
    let c = &shared.c;
    Snapshot {
        size,
        live: c.live.load(Ordering::Relaxed),
        ready_once: c.ready_once.load(Ordering::Relaxed),
        gave_up: c.gave_up.load(Ordering::Relaxed),
        failed_attempts: c.failed_attempts.load(Ordering::Relaxed),
        deliveries: c.deliveries.load(Ordering::Relaxed),
        frames: c.frames.load(Ordering::Relaxed),
        reconnects: c.reconnects.load(Ordering::Relaxed),
        storm_ready: c.storm_ready.load(Ordering::Relaxed),
    }
}
