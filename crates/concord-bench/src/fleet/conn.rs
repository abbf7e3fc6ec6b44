//! One member connection of the fleet: connect, heartbeat, read and account every
//! frame, follow the fleet's commands (send, reconnect, storm), close cleanly.
//!
//! The socket is the SDK's low-level connection (`concord_client::raw::Connection`):
//! it connects, skips control frames and hands over each message's text without a
//! copy. What is read from that text stays the lean scan of `content.rs`
//! (`event_name`, `Marker::find`), not the SDK's typed decoder (`raw::decode` into a
//! `ServerMessage`): measured with `cargo bench -p concord-bench --bench decoder`
//! (BENCHMARKS.md, "Receive path: the SDK's decoder against the fleet's"), a 566-byte
//! MESSAGE_CREATE costs 0.25–0.31 µs the lean way and 2.3–2.7 µs typed on the
//! 2-core VM (7–11×; about 6× with zlib-stream or zstd-stream, whose inflate both
//! paths pay), far outside the 10 % that would justify the switch. The fleet's own CPU per
//! delivery (≈1.5–2.5 µs) is as large as the server's on a shared box, so typed
//! decoding would roughly double the client's share of the cores and lower the
//! deliveries per second the bench can drive.

use concord_client::raw::RawError;
use tokio::time::{Interval, MissedTickBehavior};

use super::*;
use crate::{args::Protocol, target::Opened};

/// One member connection's task.
pub(super) struct Conn {
    pub(super) shared: Arc<Shared>,
    pub(super) idx: usize,
    pub(super) global: usize,
    pub(super) query: String,
    pub(super) cmds: mpsc::Receiver<Cmd>,
    pub(super) stop: watch::Receiver<bool>,
    pub(super) rng: Rng,
}

/// The live part of a connection: its socket and this session's log.
struct Live {
    ws: Ws,
    log: SessionLog,
    /// How often this session beats: every 30 s, or HELLO's interval if shorter.
    heartbeat: Duration,
}

/// The heartbeat period: v1 servers drop a socket idle for minutes, and v2's default
/// interval is 30 s (closed with 4006 after 1.5 intervals without a HEARTBEAT).
const HEARTBEAT: Duration = Duration::from_secs(30);

impl Conn {
    pub(super) async fn run(mut self) -> Vec<SessionLog> {
        let slots = self.shared.slots.len();
        let mut sessions = Vec::new();
        let mut union = Bitmap::new(slots);
        let mut live = self.connect(Mode::Initial).await;
        if live.is_none() {
            self.shared.c.gave_up.fetch_add(1, Ordering::Relaxed);
        }
        // One timer per session, started at its READY: a session that was just
        // (re)connected must not wait for the phase of an earlier one.
        let mut heartbeat = self.beats(live.as_ref());
        loop {
            let Some(current) = live.as_mut() else {
                // No socket: only commands matter.
                match self.cmds.recv().await {
                    Some(Cmd::Send(_)) => continue,
                    Some(Cmd::Reconnect) => live = self.reconnect(Mode::Churn).await,
                    Some(Cmd::Storm) => live = self.reconnect(Mode::Storm).await,
                    Some(Cmd::Close) | None => break,
                }
                heartbeat = self.beats(live.as_ref());
                continue;
            };
            tokio::select! {
                cmd = self.cmds.recv() => match cmd {
                    Some(Cmd::Send(text)) => {
                        if current.ws.send_text(text).await.is_err() {
                            self.end(&mut live, &mut sessions);
                            self.shared.c.server_closes.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Some(Cmd::Reconnect) => {
                        self.end(&mut live, &mut sessions);
                        live = self.reconnect(Mode::Churn).await;
                        heartbeat = self.beats(live.as_ref());
                    }
                    Some(Cmd::Storm) => {
                        self.end(&mut live, &mut sessions);
                        live = self.reconnect(Mode::Storm).await;
                        heartbeat = self.beats(live.as_ref());
                    }
                    Some(Cmd::Close) | None => {
                        close_cleanly(&mut current.ws).await;
                        self.end(&mut live, &mut sessions);
                        break;
                    }
                },
                frame = current.ws.next_text() => match frame {
                    Ok(text) => {
                        self.on_text(text, &mut current.log, &mut union);
                        // Frames usually come in bursts: take the ones already read
                        // before paying for another trip through the select.
                        let mut ended = false;
                        while let Some(more) = current.ws.next_text().now_or_never() {
                            match more {
                                Ok(text) => self.on_text(text, &mut current.log, &mut union),
                                // A binary frame (none is asked for): skipped.
                                Err(RawError::Decode(_)) => {}
                                Err(_) => {
                                    ended = true;
                                    break;
                                }
                            }
                        }
                        if ended {
                            self.shared.c.server_closes.fetch_add(1, Ordering::Relaxed);
                            self.end(&mut live, &mut sessions);
                        }
                    }
                    Err(RawError::Decode(_)) => {}
                    Err(_) => {
                        self.shared.c.server_closes.fetch_add(1, Ordering::Relaxed);
                        self.end(&mut live, &mut sessions);
                    }
                },
                _ = heartbeat.tick() => {
                    if current.ws.heartbeat().await.is_err() {
                        self.shared.c.server_closes.fetch_add(1, Ordering::Relaxed);
                        self.end(&mut live, &mut sessions);
                    }
                }
            }
        }
        sessions
    }

    /// The heartbeat timer of a session that just became READY. It beats every
    /// `live.heartbeat`; the first beat comes one period after READY in v1 and, as
    /// v2 asks, after a random part of one in v2 (so sessions that connected together
    /// do not beat together). Either way it comes within the period, well inside
    /// v2's 1.5 periods. A beat the task was too busy to send goes out as soon as it
    /// can, and the next one a period after it, never several at once.
    fn beats(&mut self, live: Option<&Live>) -> Interval {
        let period = live.map_or(HEARTBEAT, |l| l.heartbeat);
        let first = match self.shared.target.protocol {
            Protocol::V1 => period,
            Protocol::V2 => {
                let nanos = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX);
                Duration::from_nanos(self.rng.below_inclusive(nanos).max(1))
            }
        };
        let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + first, period);
        timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
        timer
    }

    /// Ends the live session (the socket is dropped without a close frame).
    fn end(&self, live: &mut Option<Live>, sessions: &mut Vec<SessionLog>) {
        if let Some(ended) = live.take() {
            self.shared.c.live.fetch_sub(1, Ordering::Relaxed);
            sessions.push(ended.log);
        }
    }

    async fn reconnect(&mut self, mode: Mode) -> Option<Live> {
        let live = self.connect(mode).await;
        if live.is_some() && mode == Mode::Churn {
            self.shared.c.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        live
    }

    /// Connects, retrying with full-jitter backoff until READY, the deadline or stop.
    async fn connect(&mut self, mode: Mode) -> Option<Live> {
        let shared = self.shared.clone();
        let c = &shared.c;
        let mut attempt: u32 = 0;
        loop {
            if attempt > 0 || mode == Mode::Storm {
                let delay = shared.backoff.delay(attempt, &mut self.rng);
                if !self.pause(delay).await {
                    return None;
                }
            }
            if *self.stop.borrow() || Instant::now() >= shared.deadline {
                return None;
            }
            let permit = if mode == Mode::Initial {
                tokio::select! {
                    p = shared.gate.acquire() => p.ok(),
                    _ = self.stop.wait_for(|s| *s) => return None,
                    () = tokio::time::sleep_until(shared.deadline.into()) => return None,
                }
            } else {
                None
            };
            let started = now_ns();
            if mode == Mode::Initial {
                c.first_attempt_ns.fetch_min(started, Ordering::Relaxed);
            }
            let limit = shared
                .ready_timeout
                .min(shared.deadline.saturating_duration_since(Instant::now()));
            let result = tokio::select! {
                r = shared.target.open(self.global, &self.query, limit) => r,
                _ = self.stop.wait_for(|s| *s) => return None,
            };
            drop(permit);
            match result {
                Ok(Opened { ws, heartbeat }) => {
                    let ready = now_ns();
                    c.live.fetch_add(1, Ordering::Relaxed);
                    match mode {
                        Mode::Initial => {
                            c.ready_once.fetch_add(1, Ordering::Relaxed);
                            c.last_ready_ns.fetch_max(ready, Ordering::Relaxed);
                            let mut hist =
                                shared.connect_us.lock().unwrap_or_else(|e| e.into_inner());
                            record(&mut hist, ready.saturating_sub(started) / 1000);
                        }
                        Mode::Storm => {
                            c.storm_ready.fetch_add(1, Ordering::Relaxed);
                            let since =
                                ready.saturating_sub(c.storm_drop_ns.load(Ordering::Relaxed));
                            let mut hist =
                                shared.storm_us.lock().unwrap_or_else(|e| e.into_inner());
                            record(&mut hist, since / 1000);
                        }
                        Mode::Churn => {}
                    }
                    return Some(Live {
                        ws,
                        log: SessionLog {
                            ready_ns: ready,
                            got: Bitmap::new(shared.slots.len()),
                        },
                        heartbeat: heartbeat.map_or(HEARTBEAT, |h| h.min(HEARTBEAT)),
                    });
                }
                Err(_) => {
                    c.failed_attempts.fetch_add(1, Ordering::Relaxed);
                    if mode == Mode::Storm {
                        c.storm_failed.fetch_add(1, Ordering::Relaxed);
                    }
                    attempt = attempt.saturating_add(1);
                }
            }
        }
    }

    /// Sleeps `delay`; false if stopped or the deadline comes first.
    async fn pause(&mut self, delay: Duration) -> bool {
        let deadline = self.shared.deadline;
        let wake = Instant::now() + delay;
        if wake >= deadline {
            return false;
        }
        tokio::select! {
            () = tokio::time::sleep_until(wake.into()) => true,
            _ = self.stop.wait_for(|s| *s) => false,
        }
    }

    fn on_text(&self, text: &str, log: &mut SessionLog, union: &mut Bitmap) {
        let shared = &*self.shared;
        let c = &shared.c;
        let name = event_name(text);
        // Only dispatches count as frames: heartbeat acknowledgements arrive all the
        // time and would keep "wait until quiet" from ever ending.
        if name.is_none() {
            if text.starts_with(r#"{"op":"ERROR""#) {
                c.gateway_errors.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        c.frames.fetch_add(1, Ordering::Relaxed);
        c.bytes.fetch_add(text.len() as u64, Ordering::Relaxed);
        match name {
            Some("MESSAGE_CREATE") => c.frames_message.fetch_add(1, Ordering::Relaxed),
            Some("PRESENCE_UPDATE") => c.frames_presence.fetch_add(1, Ordering::Relaxed),
            Some("TYPING_START") => c.frames_typing.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        if name != Some(shared.carrier.event()) {
            return;
        }
        let now = now_ns();
        if shared.carrier == Carrier::Typing {
            let sent = string_field(text, "user_id")
                .and_then(|u| shared.typing_index.get(u))
                .map_or(0, |&i| shared.typing_sent_ns[i].load(Ordering::Relaxed));
            if sent == 0 {
                c.unexpected.fetch_add(1, Ordering::Relaxed);
            } else {
                c.deliveries.fetch_add(1, Ordering::Relaxed);
                self.record_latency(now.saturating_sub(sent));
            }
            return;
        }
        let Some(Stamp { seq, sent_ns }) = shared.marker.find(text) else {
            return;
        };
        let Some(slot) = usize::try_from(seq).ok().and_then(|s| shared.slots.get(s)) else {
            c.unexpected.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let seq = seq as usize;
        if shared.carrier == Carrier::Presence
            && shared.senders[seq].load(Ordering::Relaxed) == self.idx
        {
            c.self_echo.fetch_add(1, Ordering::Relaxed);
            return;
        }
        c.deliveries.fetch_add(1, Ordering::Relaxed);
        if seq < shared.timed_below {
            self.record_latency(now.saturating_sub(sent_ns));
        }
        log.got.insert(seq);
        if union.insert(seq) {
            slot.count.fetch_add(1, Ordering::Relaxed);
            slot.last_ns.fetch_max(now, Ordering::Relaxed);
        } else {
            c.duplicates.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn record_latency(&self, ns: u64) {
        let shard = &self.shared.latency[self.idx % SHARDS];
        let mut hist = shard.lock().unwrap_or_else(|e| e.into_inner());
        record(&mut hist, ns / 1000);
    }
}

/// Sends close 1000 and waits (briefly) for the server's answer, so the server sees
/// a clean end and skips its presence grace period.
async fn close_cleanly(ws: &mut Ws) {
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(1000, "")).await;
}
