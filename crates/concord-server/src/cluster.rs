//! Several nodes as one server: the node's side of [`concord_bus`].
//!
//! A node delivers what it publishes to its own sessions at once (as a single node
//! does), then hands it to [`Cluster`], which queues it for the bus in order; one
//! task publishes the queue, retrying a failed publish before the next message so the
//! order holds. A message the bus cannot take after [`RETRIES`] tries is dropped,
//! logged and counted (`concord_bus_messages_total{outcome="dropped"}`): the database
//! still has it (history, READY), only the live push is lost.
//!
//! What other nodes publish arrives on the node's inbox and goes through the same
//! receiver as its own messages ([`Fanout::receive`]). Each message is decoded once
//! per node; a dispatch's JSON becomes one frame shared by every local recipient.
//!
//! [`Interests`] keeps the node subscribed to exactly what its sessions need: a user's
//! subject while it holds a session of theirs, a server's while it holds a session of
//! one of its members.

mod handoff;
mod relay;
pub mod unannounced;

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use concord_bus::{Bus, Inbox, Interest, Outgoing};
use concord_gateway::Payload;
use concord_protocol::{Event, ServerId, UserId};
use tokio::sync::{mpsc, oneshot};

use crate::{
    bus::{Audience, BusMessage, Fanout, Variant},
    directory::{Directory, DirectoryChange},
    metrics::Metrics,
    perms::Permissions,
};

/// Tries of one publish before its message is dropped.
pub const RETRIES: u32 = 8;
/// Messages waiting for the bus before new ones are dropped (and counted).
pub const QUEUE: usize = 64 * 1024;

const DIRECTORY: &str = "@directory";
const PRESENCE: &str = "@presence";
const CLOSE_SESSIONS: &str = "@close_sessions";
const CLOSE_FAMILY: &str = "@close_family";
const EACH: &str = "@each";
const FORGET: &str = "@forget";
const MEDIA: &str = "@media";
const MEDIA_CHUNK: &str = "@media_chunk";

/// A stream's start or end, as it crosses the bus (chunks travel as raw bytes).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "media", rename_all = "snake_case")]
enum MediaSignal {
    Started(concord_protocol::MediaStarted),
    Ended(concord_protocol::MediaEnded),
}

/// What nodes tell each other about presence (`crate::presence`): who holds whom
/// online, and that they are alive; and the login attempts each counted, so that the
/// per-account throttle holds for the cluster. Sent to every node.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "signal", rename_all = "snake_case")]
pub enum Signal {
    /// The sender holds the user online now (a session, or one within its grace),
    /// with this chosen presence.
    Up(concord_protocol::PresenceUpdate),
    /// The sender no longer holds the user online.
    Down {
        /// The user.
        user: UserId,
    },
    /// The user chose another presence.
    Chosen(concord_protocol::PresenceUpdate),
    /// The sender is alive (every heartbeat).
    Alive,
    /// A node that just started, or whose link to the bus came back, asks every node
    /// for the users it holds.
    RosterRequest,
    /// Asks one node for the users it holds: sent by each node that had taken it for
    /// dead (three heartbeats of silence) and hears from it again.
    RosterAsk {
        /// The node asked.
        node: uuid::Uuid,
    },
    /// Users the sender holds online (an answer to a roster request, in parts).
    Roster {
        /// The users and their chosen presence.
        users: Vec<concord_protocol::PresenceUpdate>,
    },
    /// The sender let one login attempt for this account through its throttle
    /// (`limits.login_per_account`): every node counts it.
    LoginAttempt {
        /// The username tried.
        username: String,
    },
    /// Requests of these bots the sender let through lately (`limits.per_bot`): every
    /// node takes them from its own buckets.
    BotRequests {
        /// Per bot user: requests.
        counts: Vec<(UserId, u32)>,
    },
    /// The sender made a change (a write through REST) and waits until every node has
    /// applied it: each answers [`Signal::Applied`] once it has applied everything
    /// the sender published before the barrier.
    Barrier {
        /// The sender's number for this barrier.
        id: u64,
    },
    /// The sender is leaving the cluster (it stops): not waited for any more.
    Leaving,
    /// This node has applied what `node` published before its barrier `id`.
    Applied {
        /// The node whose barrier this answers.
        node: uuid::Uuid,
        /// The barrier.
        id: u64,
    },
}

/// How long a write waits for the other nodes to apply its changes before it
/// answers anyway (a node dying meanwhile; logged).
pub const BARRIER_LIMIT: Duration = Duration::from_secs(1);

/// How far back, beyond three heartbeats, a dead node's messages are checked for any
/// it never published, from the moment it is taken for dead (three to four heartbeats
/// after its last word): its queue to the bus drains in milliseconds while the bus is
/// up, so a minute is ample.
const UNANNOUNCED_WINDOW: Duration = Duration::from_secs(60);

/// The other nodes this node has heard from, and when last: what presence takes a
/// node's death from ([`Liveness::dead`]) and what a write waits for
/// ([`Liveness::waited_for`]).
#[derive(Debug)]
pub(crate) struct Liveness {
    /// Silent longer than this (three heartbeats): dead.
    silent: Duration,
    last_heard: HashMap<concord_bus::NodeId, tokio::time::Instant>,
    /// Nodes that left or missed a barrier: not waited for until heard from again.
    skipped: HashSet<concord_bus::NodeId>,
    /// Nodes reported dead, and when: one heard from again came back (a node that was
    /// cut off, or stalled); forgotten after [`REMEMBER_DEAD`].
    reported_dead: HashMap<concord_bus::NodeId, tokio::time::Instant>,
}

/// How long a node reported dead is remembered, should it come back (node ids are
/// fresh at each start, so one that restarted is a new node).
const REMEMBER_DEAD: Duration = Duration::from_secs(3600);

impl Liveness {
    pub(crate) fn new(silent: Duration) -> Self {
        Self {
            silent,
            last_heard: HashMap::new(),
            skipped: HashSet::new(),
            reported_dead: HashMap::new(),
        }
    }

    /// Anything from `node` says it lives. True if it had been reported dead: it came
    /// back.
    pub(crate) fn heard(&mut self, node: concord_bus::NodeId) -> bool {
        self.last_heard.insert(node, tokio::time::Instant::now());
        self.skipped.remove(&node);
        self.reported_dead.remove(&node).is_some()
    }

    /// This node's own link to the bus came back: whoever it has not heard from
    /// meanwhile was silent to it, not dead, and gets three heartbeats from now.
    pub(crate) fn link_restored(&mut self) {
        let now = tokio::time::Instant::now();
        for at in self.last_heard.values_mut() {
            *at = now;
        }
    }

    /// `node` is not waited for until heard from again (it is still reported dead
    /// once silent).
    fn skip(&mut self, node: concord_bus::NodeId) {
        self.skipped.insert(node);
    }

    /// The nodes a write waits for: heard from within `silent`, not skipped.
    fn waited_for(&self) -> HashSet<concord_bus::NodeId> {
        let now = tokio::time::Instant::now();
        self.last_heard
            .iter()
            .filter(|(node, at)| {
                now.duration_since(**at) <= self.silent && !self.skipped.contains(*node)
            })
            .map(|(node, _)| *node)
            .collect()
    }

    /// The nodes silent for longer than `silent`, each reported once (then
    /// forgotten until heard from again).
    pub(crate) fn dead(&mut self) -> Vec<concord_bus::NodeId> {
        let now = tokio::time::Instant::now();
        let dead: Vec<_> = self
            .last_heard
            .iter()
            .filter(|(_, at)| now.duration_since(**at) > self.silent)
            .map(|(node, _)| *node)
            .collect();
        self.reported_dead
            .retain(|_, at| now.duration_since(*at) < REMEMBER_DEAD);
        for node in &dead {
            self.last_heard.remove(node);
            self.skipped.remove(node);
            self.reported_dead.insert(*node, now);
        }
        dead
    }
}

/// Questions put to other nodes, each waiting for an answer from every node asked:
/// the asker learns `None` once all have answered (or left), or `Some` as soon as one
/// settles it. A write's barrier (every node applied it) and a RESUME's search for
/// its session (every node lacks it, or one holds it) are both such questions.
#[derive(Debug)]
pub(crate) struct RollCall<K, T> {
    open: HashMap<K, (HashSet<concord_bus::NodeId>, oneshot::Sender<Option<T>>)>,
}

impl<K, T> Default for RollCall<K, T> {
    fn default() -> Self {
        Self {
            open: HashMap::new(),
        }
    }
}

impl<K: std::hash::Hash + Eq + Copy, T> RollCall<K, T> {
    /// Puts question `key` to `nodes`: what the returned receiver gets.
    pub(crate) fn ask(
        &mut self,
        key: K,
        nodes: HashSet<concord_bus::NodeId>,
    ) -> oneshot::Receiver<Option<T>> {
        let (asker, answer) = oneshot::channel();
        self.open.insert(key, (nodes, asker));
        answer
    }

    /// `node` has answered `key` without settling it; the asker learns `None` once
    /// every node asked has.
    pub(crate) fn answered(&mut self, key: K, node: concord_bus::NodeId) {
        let Some((pending, _)) = self.open.get_mut(&key) else {
            return;
        };
        pending.remove(&node);
        if pending.is_empty()
            && let Some((_, asker)) = self.open.remove(&key)
        {
            let _ = asker.send(None);
        }
    }

    /// Whether question `key` still waits for answers.
    pub(crate) fn is_open(&self, key: &K) -> bool {
        self.open.contains_key(key)
    }

    /// `key` is settled with `value`, whoever has yet to answer.
    pub(crate) fn settle(&mut self, key: K, value: T) {
        if let Some((_, asker)) = self.open.remove(&key) {
            let _ = asker.send(Some(value));
        }
    }

    /// `node` left or died: it answers nothing more, so no question waits for it.
    /// Returns the questions that were still waiting for its answer.
    pub(crate) fn gone(&mut self, node: concord_bus::NodeId) -> Vec<K> {
        self.excuse(node, &HashSet::new())
    }

    /// `node` is taken for dead: the questions waiting for its answer, but those in
    /// `spared`, no longer do. Returns the questions it released.
    pub(crate) fn excuse(&mut self, node: concord_bus::NodeId, spared: &HashSet<K>) -> Vec<K> {
        let keys: Vec<K> = self
            .open
            .iter()
            .filter(|(key, (pending, _))| pending.contains(&node) && !spared.contains(*key))
            .map(|(key, _)| *key)
            .collect();
        for key in &keys {
            self.answered(*key, node);
        }
        keys
    }

    /// Drops question `key` (its asker gave up); returns the nodes that never answered.
    pub(crate) fn withdraw(&mut self, key: K) -> HashSet<concord_bus::NodeId> {
        self.open
            .remove(&key)
            .map(|(nodes, _)| nodes)
            .unwrap_or_default()
    }
}

/// The writes waiting for every other node to apply them ([`Cluster::settled`]),
/// and the nodes that must answer.
#[derive(Debug)]
struct Barriers {
    /// Changes other nodes must have applied before a write answers (directory
    /// changes, sessions closed) queued so far.
    changes: std::sync::atomic::AtomicU64,
    next: std::sync::atomic::AtomicU64,
    state: Mutex<BarrierState>,
}

#[derive(Debug)]
struct BarrierState {
    liveness: Liveness,
    /// Per barrier: the nodes yet to answer, and the waiting write.
    waiting: RollCall<u64, ()>,
}

impl Barriers {
    fn new(silent: Duration) -> Self {
        Self {
            changes: std::sync::atomic::AtomicU64::new(0),
            next: std::sync::atomic::AtomicU64::new(0),
            state: Mutex::new(BarrierState {
                liveness: Liveness::new(silent),
                waiting: RollCall::default(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BarrierState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `node` left: no barrier waits for it (until it is heard from again).
    fn gone(&self, node: concord_bus::NodeId) {
        let mut state = self.lock();
        state.liveness.skip(node);
        state.waiting.gone(node);
    }

    /// `node` no longer holds barrier `id` up; the write goes once none does.
    fn applied(&self, node: concord_bus::NodeId, id: u64) {
        self.lock().waiting.answered(id, node);
    }
}

/// Callers of [`Cluster::caught_up`] not yet in a round, and whether rounds run.
#[derive(Debug, Default)]
struct CatchUps {
    next: Vec<oneshot::Sender<()>>,
    running: bool,
}

/// What the one task that follows the other nodes ([`Cluster::take_signals`])
/// receives, in the order the receiver took it from the bus.
#[derive(Debug)]
pub enum FromNode {
    /// A [`Signal`] and the node it came from.
    Signal(concord_bus::NodeId, Signal),
    /// Answer once everything before it is applied ([`Cluster::caught_up`]).
    CaughtUp(oneshot::Sender<()>),
}

/// The node's handle on the bus.
#[derive(Clone)]
pub struct Cluster {
    node: concord_bus::NodeId,
    bus: Arc<dyn Bus>,
    queue: mpsc::Sender<Outgoing>,
    directory: Arc<Directory>,
    metrics: Arc<Metrics>,
    interests: Interests,
    signals: Arc<Mutex<Option<mpsc::UnboundedReceiver<FromNode>>>>,
    /// A second sender into `signals`, beside the receiver task's, for
    /// [`Cluster::caught_up`]'s marker; weak, so that the channel still closes when
    /// the receiver task ends (and the follower with it).
    signal_tx: mpsc::WeakUnboundedSender<FromNode>,
    /// Callers of [`Cluster::caught_up`] waiting for the next round.
    catch_ups: Arc<Mutex<CatchUps>>,
    /// Callers of [`Cluster::heard_others`] waiting for the next round.
    write_rounds: Arc<Mutex<CatchUps>>,
    /// Messages queued so far, and (watched) how many of them the bus has taken or
    /// given up on: what [`Cluster::flushed`] compares.
    queued: Arc<std::sync::atomic::AtomicU64>,
    done: tokio::sync::watch::Receiver<u64>,
    barriers: Arc<Barriers>,
    /// The node's audio relay, which other nodes' streams go to.
    audio: Arc<std::sync::OnceLock<std::sync::Weak<crate::media::MediaRelay>>>,
    /// v2 sessions relayed between this node and others (RESUME on any node).
    relays: Arc<relay::Relays>,
    /// Tells the receiver to start over from the database ([`Cluster::link_restored`]).
    start_over: Arc<tokio::sync::Notify>,
    /// Tells the receiver to read the directory again: a node was taken for dead
    /// ([`Cluster::dead_nodes`]).
    reread: Arc<tokio::sync::Notify>,
    /// Held while the directory is read again, so that two reads never interleave.
    rereading: Arc<tokio::sync::Mutex<()>>,
    /// Sessions handed over between this node and others as a node stops.
    handoffs: Arc<handoff::Handoffs>,
    /// The messages other nodes announced here lately (see [`unannounced`]).
    announced: Arc<unannounced::Announced>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").finish_non_exhaustive()
    }
}

impl Cluster {
    /// Starts the node's publisher over `bus`, and its receiver from `inbox` into
    /// `fanout`.
    /// `heartbeat` is the cluster's (`bus_heartbeat_secs`).
    #[allow(
        clippy::too_many_arguments,
        reason = "the node's parts, each handed on once"
    )]
    pub fn start(
        bus: Arc<dyn Bus>,
        inbox: Inbox,
        fanout: Fanout,
        interests: Interests,
        directory: Arc<Directory>,
        store: Arc<dyn concord_store::Store>,
        metrics: Arc<Metrics>,
        heartbeat: Duration,
    ) -> Self {
        let node = bus.node();
        metrics.watch_bus(&bus);
        let (queue, queued) = mpsc::channel(QUEUE);
        let (signal, signals) = mpsc::unbounded_channel();
        let (done_tx, done) = tokio::sync::watch::channel(0);
        tokio::spawn(publish_all(
            Arc::clone(&bus),
            queued,
            done_tx,
            Arc::clone(&metrics),
        ));
        let cluster = Self {
            node,
            bus,
            queue,
            directory,
            metrics,
            interests,
            signals: Arc::new(Mutex::new(Some(signals))),
            signal_tx: signal.downgrade(),
            catch_ups: Arc::default(),
            write_rounds: Arc::default(),
            queued: Arc::default(),
            done,
            barriers: Arc::new(Barriers::new(heartbeat * 3)),
            audio: Arc::default(),
            relays: Arc::default(),
            start_over: Arc::default(),
            reread: Arc::default(),
            rereading: Arc::default(),
            handoffs: Arc::default(),
            announced: Arc::new(unannounced::Announced::new(
                heartbeat * 3 + UNANNOUNCED_WINDOW,
            )),
        };
        tokio::spawn(receive_all(inbox, fanout, signal, cluster.clone(), store));
        cluster
    }

    /// The other nodes silent for three heartbeats, each reported once (see
    /// [`Liveness::dead`]). If there are any, the directory is read again: a node
    /// killed between a directory change's commit and its publish (a kick, a role
    /// taken away, an override) would otherwise leave the others enforcing what the
    /// database no longer says ([`reread_directory`]).
    pub fn dead_nodes(&self) -> Vec<concord_bus::NodeId> {
        let dead = self.barriers.lock().liveness.dead();
        for node in &dead {
            self.cut_relays(*node);
            self.forget_draining(*node);
        }
        if !dead.is_empty() {
            self.reread.notify_one();
        }
        dead
    }

    /// The messages other nodes announced here lately, which tell what a dead node
    /// never did ([`unannounced::announce_for`]).
    pub fn announced(&self) -> Arc<unannounced::Announced> {
        Arc::clone(&self.announced)
    }

    /// This node's link to the bus, as it changes.
    pub fn link(&self) -> tokio::sync::watch::Receiver<concord_bus::Link> {
        self.bus.link()
    }

    /// This node's link to the bus came back after it was lost: the other nodes get
    /// three heartbeats from now before they are taken for dead (their silence was
    /// this node's deafness), and the node starts over from the database, since it
    /// missed whatever was published meanwhile: the directory and caches are read
    /// again, every relay ends and every session is closed (not resumable: what it
    /// missed cannot be replayed), so that its client gets a READY as things are now.
    pub fn link_restored(&self) {
        self.barriers.lock().liveness.link_restored();
        self.start_over.notify_one();
    }

    /// Leaves the cluster as the node stops: tells the others (who stop waiting for
    /// it), sends what is still queued, and closes the bus (the node's heartbeats and
    /// receiving end with it).
    pub async fn leave(&self) {
        self.signal(&Signal::Leaving);
        self.flushed(BARRIER_LIMIT).await;
        self.bus.close().await;
    }

    /// Joins `media` to the cluster: its streams go to the other nodes, theirs come to
    /// it.
    pub fn connect_audio(&self, media: &Arc<crate::media::MediaRelay>) {
        let _ = self.audio.set(Arc::downgrade(media));
        media.connect_uplink(Box::new(self.clone()));
    }

    /// Changes queued so far that other nodes must apply before a write answers:
    /// what [`Cluster::settled`] compares against.
    pub fn changes(&self) -> u64 {
        self.barriers
            .changes
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Returns once what this node queued before the call is on the bus and, if any
    /// change was queued since `changes` was read ([`Cluster::changes`]), once every
    /// other node alive has applied it (at most [`BARRIER_LIMIT`]). A REST write
    /// awaits it before it answers: the client's next request, through whichever
    /// node, finds the change made — a kicked member is refused, a new role counts.
    pub async fn settled(&self, changes: u64) {
        if self.changes() == changes {
            self.flushed(BARRIER_LIMIT).await;
            return;
        }
        self.barrier().await;
    }

    /// Asks every other node alive to answer once it has applied what this node
    /// published so far, and returns once all have (at most [`BARRIER_LIMIT`]; a node
    /// that missed it is not waited for again until heard from).
    async fn barrier(&self) {
        let id = self
            .barriers
            .next
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let answered = {
            let mut state = self.barriers.lock();
            let pending = state.liveness.waited_for();
            (!pending.is_empty()).then(|| state.waiting.ask(id, pending))
        };
        let Some(answered) = answered else {
            self.flushed(BARRIER_LIMIT).await;
            return;
        };
        // Queued after the write's own messages: a node answers once it has applied
        // them (same route, and the barrier carries the causal stamp).
        self.signal(&Signal::Barrier { id });
        if tokio::time::timeout(BARRIER_LIMIT, answered).await.is_err() {
            let late = self.barriers.lock().waiting.withdraw(id);
            // Most likely dead: not waited for again until heard from (otherwise every
            // write would wait the full limit until the node counts as silent).
            self.skip_silent(&late);
            self.metrics.bus("barrier_timeout");
            let late: Vec<String> = late.iter().map(ToString::to_string).collect();
            tracing::warn!(nodes = ?late, "nodes did not confirm a change within the limit");
        }
    }

    /// `nodes` did not answer a question within the limit: no write or question
    /// waits for them until they are heard from again.
    fn skip_silent(&self, nodes: &HashSet<concord_bus::NodeId>) {
        let mut state = self.barriers.lock();
        for node in nodes {
            state.liveness.skip(*node);
        }
    }

    /// Returns once this node has applied every signal the other nodes alive sent
    /// before the call (at most about twice [`BARRIER_LIMIT`]): a barrier every node
    /// answers after what it sent before, then a marker through the task that applies
    /// signals ([`FromNode::CaughtUp`]). Nodes' messages are ordered per node, not
    /// across nodes, so this is how a node learns that none of them still has a word
    /// on the way: presence waits for it before it calls a user offline.
    ///
    /// Callers share rounds: one that comes while a round runs joins the next, whose
    /// barrier goes out after its call, so a thousand users going offline at once
    /// cost a round or two, not a thousand.
    pub async fn caught_up(&self) {
        self.in_a_round(&self.catch_ups, true).await;
    }

    /// Returns once this node has applied every event and change the other nodes
    /// alive published before the call (at most [`BARRIER_LIMIT`]): a barrier every
    /// node answers after what it sent before, its answer applied by the receiver
    /// after what came before it. A REST write awaits it before it runs, so that
    /// what it publishes comes after those on this node's sessions too: a client who
    /// posts through one node, has its answer, then posts through another, has both
    /// messages read in that order everywhere, as on one server (the node taking the
    /// second delivers it to its own sessions at once, not a NATS hop later).
    /// Callers share rounds, as [`Cluster::caught_up`]'s.
    pub async fn heard_others(&self) {
        self.in_a_round(&self.write_rounds, false).await;
    }

    async fn in_a_round(&self, rounds: &Arc<Mutex<CatchUps>>, marker: bool) {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut rounds = rounds.lock().unwrap_or_else(|e| e.into_inner());
            rounds.next.push(tx);
            !std::mem::replace(&mut rounds.running, true)
        };
        if start {
            let (cluster, rounds) = (self.clone(), Arc::clone(rounds));
            tokio::spawn(async move { cluster.run_rounds(&rounds, marker).await });
        }
        let _ = rx.await;
    }

    async fn run_rounds(&self, rounds: &Mutex<CatchUps>, marker: bool) {
        loop {
            let round = {
                let mut rounds = rounds.lock().unwrap_or_else(|e| e.into_inner());
                if rounds.next.is_empty() {
                    rounds.running = false;
                    return;
                }
                std::mem::take(&mut rounds.next)
            };
            self.barrier().await;
            if marker {
                let (tx, applied) = oneshot::channel();
                let sent = self
                    .signal_tx
                    .upgrade()
                    .is_some_and(|signals| signals.send(FromNode::CaughtUp(tx)).is_ok());
                if sent {
                    // Bounded: a node whose signals nobody follows (tests) answers never.
                    let _ = tokio::time::timeout(BARRIER_LIMIT, applied).await;
                }
            }
            for waiter in round {
                let _ = waiter.send(());
            }
        }
    }

    /// Returns once everything queued before the call is on the bus (or was given up
    /// on), at most after `limit`. A REST write awaits it before it answers, so a
    /// client that acts next through another node finds the change there (it is on
    /// its way to every node, which applies it in well under a millisecond on a LAN).
    pub async fn flushed(&self, limit: Duration) {
        let target = self.queued.load(std::sync::atomic::Ordering::Acquire);
        let mut done = self.done.clone();
        let _ = tokio::time::timeout(limit, done.wait_for(|n| *n >= target)).await;
    }

    /// This node.
    pub fn node(&self) -> concord_bus::NodeId {
        self.node
    }

    /// The presence signals other nodes send, for the one task that follows them
    /// (`None` after the first call).
    pub fn take_signals(&self) -> Option<mpsc::UnboundedReceiver<FromNode>> {
        self.signals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Tells every other node `signal`, in order with this node's other messages.
    pub fn signal(&self, signal: &Signal) {
        match serde_json::to_vec(signal) {
            Ok(body) => self.enqueue(Outgoing::event(
                concord_bus::Audience::Everyone,
                PRESENCE,
                Bytes::from(body),
            )),
            Err(err) => tracing::error!(error = %err, "presence signal not serializable"),
        }
    }

    fn enqueue(&self, outgoing: Outgoing) {
        match self.queue.try_send(outgoing) {
            Ok(()) => {
                self.queued
                    .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            }
            Err(err) => {
                self.metrics.bus("dropped");
                tracing::error!(error = %err, "bus queue full: message not sent to other nodes");
            }
        }
    }

    /// What the node watches.
    pub fn interests(&self) -> &Interests {
        &self.interests
    }

    /// Queues `message` (already delivered on this node) for the other nodes.
    pub fn send(&self, message: &BusMessage) {
        let Some(mut outgoing) = encode(message, &self.directory) else {
            return;
        };
        if outgoing.kind == concord_bus::Kind::Directory {
            self.barriers
                .changes
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
        if let concord_bus::Audience::Server(server)
        | concord_bus::Audience::Channel { server, .. }
        | concord_bus::Audience::ServerPermission { server, .. } = outgoing.audience
            && self.interests.just_joined(server)
        {
            outgoing = outgoing.to_every_node();
        }
        self.enqueue(outgoing);
    }
}

impl crate::media::AudioUplink for Cluster {
    fn send(&self, channel: concord_protocol::ChannelId, message: crate::media::RemoteAudio) {
        let Some(server) = self.directory.channel(channel).map(|facts| facts.server) else {
            return;
        };
        let Some((event, body)) = media_out(message) else {
            return;
        };
        // Always on the server's own route (never widened), so a stream's start, chunks
        // and end stay in order.
        self.enqueue(Outgoing::event(
            concord_bus::Audience::Channel { server, channel },
            event,
            body,
        ));
    }
}

/// The network form of an audio message: its event name and body.
fn media_out(message: crate::media::RemoteAudio) -> Option<(&'static str, Bytes)> {
    use crate::media::RemoteAudio;
    let signal = match message {
        RemoteAudio::Chunk { header, payload } => {
            let mut body = Vec::with_capacity(16 + payload.len());
            header.write(&mut body);
            body.extend_from_slice(&payload);
            return Some((MEDIA_CHUNK, Bytes::from(body)));
        }
        RemoteAudio::Started(started) => MediaSignal::Started(started),
        RemoteAudio::Ended(ended) => MediaSignal::Ended(ended),
    };
    serde_json::to_vec(&signal)
        .ok()
        .map(|body| (MEDIA, Bytes::from(body)))
}

/// Reads another node's audio message: the channel and what it says.
fn media_in(
    message: &concord_bus::BusMessage,
) -> Result<(concord_protocol::ChannelId, crate::media::RemoteAudio), &'static str> {
    use crate::media::RemoteAudio;
    let concord_bus::Audience::Channel { channel, .. } = message.audience else {
        return Err("audio for other than a channel");
    };
    let audio = if message.event == MEDIA_CHUNK {
        let (header, payload) = concord_protocol::RelayedHeader::parse(&message.body)
            .map_err(|_| "a malformed audio chunk")?;
        header
            .format
            .check_chunk(payload)
            .map_err(|_| "an audio chunk of the wrong size")?;
        let payload = message.body.slice(message.body.len() - payload.len()..);
        RemoteAudio::Chunk { header, payload }
    } else {
        match serde_json::from_slice(&message.body).map_err(|_| "an audio event not understood")? {
            MediaSignal::Started(started) if started.channel_id == channel => {
                RemoteAudio::Started(started)
            }
            MediaSignal::Ended(ended) if ended.channel_id == channel => RemoteAudio::Ended(ended),
            _ => return Err("an audio event of another channel"),
        }
    };
    Ok((channel, audio))
}

/// Publishes the queue in order; a failed publish is retried (with backoff) before
/// the next message goes.
async fn publish_all(
    bus: Arc<dyn Bus>,
    mut queued: mpsc::Receiver<Outgoing>,
    done: tokio::sync::watch::Sender<u64>,
    metrics: Arc<Metrics>,
) {
    while let Some(message) = queued.recv().await {
        let mut wait = Duration::from_millis(50);
        for attempt in 1..=RETRIES {
            match bus.publish(message.clone()).await {
                Ok(()) => {
                    metrics.bus("published");
                    break;
                }
                // Too large stays too large: not tried again.
                Err(err)
                    if attempt < RETRIES && !matches!(err, concord_bus::BusError::TooLarge(_)) =>
                {
                    metrics.bus("retried");
                    tracing::warn!(event = %message.event, attempt, error = %err, "bus publish failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
                Err(err) => {
                    metrics.bus("dropped");
                    tracing::error!(event = %message.event, error = %err, "bus publish failed; message not sent to other nodes");
                    break;
                }
            }
        }
        done.send_modify(|n| *n += 1);
    }
}

/// How many times a node that starts over tries to read the directory before it
/// gives up until the next try (a second apart).
const START_OVER_TRIES: u32 = 5;

/// Reads the directory again and hands it to `then` ([`Fanout::refresh`] or
/// [`Fanout::start_over`]); true once done. A change made or received while the
/// snapshot is read is applied again on it, never lost under it
/// ([`Directory::begin_refresh`]).
async fn read_directory_again(
    cluster: &Cluster,
    fanout: &Fanout,
    store: &dyn concord_store::Store,
    why: &'static str,
    then: impl Fn(
        &Fanout,
        concord_store::DirectorySnapshot,
    ) -> Result<(), crate::directory::RefreshError>,
) -> bool {
    let _one_at_a_time = cluster.rereading.lock().await;
    for attempt in 1..=START_OVER_TRIES {
        fanout.begin_refresh();
        let read = store
            .directory_snapshot(concord_protocol::Timestamp::now())
            .await;
        match read.map(|snapshot| then(fanout, snapshot)) {
            Ok(Ok(())) => return true,
            Ok(Err(err)) => {
                tracing::warn!(attempt, why, error = %err, "directory read again: read once more");
            }
            Err(err) => {
                tracing::error!(attempt, why, error = %err, "directory not read");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    fanout.abandon_refresh();
    false
}

/// Reads the directory again after a node was taken for dead: it may have committed
/// a directory change and died before publishing it. Sessions go on, each seeing from
/// now on what the database says it may see, but those of a user whose servers
/// changed unheard, which are closed for a fresh READY ([`Fanout::refresh`]). (A role
/// or override change is enforced but not told: its event, as every other event such
/// a node never published but its messages ([`unannounced`]), waits for the client's
/// next READY.)
async fn reread_directory(cluster: Cluster, fanout: Fanout, store: Arc<dyn concord_store::Store>) {
    let why = "a node was taken for dead";
    if read_directory_again(&cluster, &fanout, store.as_ref(), why, Fanout::refresh).await {
        cluster.metrics.bus("directory_reread");
        tracing::info!("a node taken for dead: directory read again");
    } else {
        tracing::error!("a node taken for dead: directory not read again, the last one kept");
    }
}

/// Starts over after the node's link to the bus was lost ([`Cluster::link_restored`]).
/// Runs in the receive loop, which applies nothing received meanwhile.
async fn start_over(cluster: &Cluster, fanout: &Fanout, store: &dyn concord_store::Store) {
    cluster.cut_all_relays();
    cluster.announced.start_over();
    let why = "link to the bus back";
    if read_directory_again(cluster, fanout, store, why, Fanout::start_over).await {
        tracing::warn!(
            "link to the bus back: directory read again, every session closed to start over"
        );
        return;
    }
    // The sessions missed events all the same; the directory is read again later.
    fanout.close_all();
    let again = Arc::clone(&cluster.start_over);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        again.notify_one();
    });
}

/// Hands what other nodes published to this node's receiver.
async fn receive_all(
    mut inbox: Inbox,
    fanout: Fanout,
    signals: mpsc::UnboundedSender<FromNode>,
    cluster: Cluster,
    store: Arc<dyn concord_store::Store>,
) {
    let metrics = Arc::clone(&cluster.metrics);
    // One waiter for the whole loop, not one registered and dropped per message.
    let start_over_signal = Arc::clone(&cluster.start_over);
    let mut told_to_start_over = std::pin::pin!(start_over_signal.notified());
    let reread_signal = Arc::clone(&cluster.reread);
    let mut told_to_reread = std::pin::pin!(reread_signal.notified());
    loop {
        let message = tokio::select! {
            biased;
            () = &mut told_to_start_over => {
                told_to_start_over.set(start_over_signal.notified());
                start_over(&cluster, &fanout, store.as_ref()).await;
                continue;
            }
            () = &mut told_to_reread => {
                told_to_reread.set(reread_signal.notified());
                // Beside the loop: the directory read takes a while, and what comes
                // in meanwhile is applied again on it.
                tokio::spawn(reread_directory(cluster.clone(), fanout.clone(), Arc::clone(&store)));
                continue;
            }
            message = inbox.recv() => match message {
                Some(message) => message,
                None => break,
            },
        };
        if message.event == PRESENCE {
            match serde_json::from_slice::<Signal>(&message.body) {
                Ok(signal) => {
                    metrics.bus("received");
                    if cluster.barriers.lock().liveness.heard(message.origin) {
                        tracing::info!(node = %message.origin, "a node taken for dead is heard again: asking it who it holds");
                        cluster.signal(&Signal::RosterAsk {
                            node: message.origin.0,
                        });
                    }
                    match signal {
                        // Everything the origin published before it has been applied:
                        // it came first on the same route, or was held until its
                        // stamp was met, and this loop applies in order.
                        Signal::Barrier { id } => cluster.signal(&Signal::Applied {
                            node: message.origin.0,
                            id,
                        }),
                        Signal::Applied { node, id } => {
                            if node == cluster.node.0 {
                                cluster.barriers.applied(message.origin, id);
                            }
                        }
                        Signal::Leaving => {
                            cluster.barriers.gone(message.origin);
                            cluster.cut_relays(message.origin);
                            cluster.forget_draining(message.origin);
                        }
                        signal => {
                            let _ = signals.send(FromNode::Signal(message.origin, signal));
                        }
                    }
                }
                Err(_) => {
                    metrics.bus("unreadable");
                    tracing::warn!("presence signal from another node not understood");
                }
            }
            continue;
        }
        if message.event == handoff::HANDOFF {
            match cluster.handoff_in(message.origin, &message.body) {
                Ok(()) => metrics.bus("received"),
                Err(reason) => {
                    metrics.bus("unreadable");
                    tracing::warn!(reason, "handover message from another node not understood");
                }
            }
            continue;
        }
        if message.event == relay::RELAY {
            match cluster.relay_in(message.origin, message.body) {
                Ok(()) => metrics.bus("received"),
                Err(reason) => {
                    metrics.bus("unreadable");
                    tracing::warn!(reason, "relay message from another node not understood");
                }
            }
            continue;
        }
        if message.event == MEDIA || message.event == MEDIA_CHUNK {
            match media_in(&message) {
                Ok((channel, audio)) => {
                    metrics.bus("received");
                    if let Some(media) = cluster.audio.get().and_then(std::sync::Weak::upgrade) {
                        media.remote(message.origin, channel, audio);
                    }
                }
                Err(reason) => {
                    metrics.bus("unreadable");
                    tracing::warn!(reason, "audio from another node not understood");
                }
            }
            continue;
        }
        match decode(message) {
            Ok(message) => {
                metrics.bus("received");
                if !unannounced::first_time(&cluster.announced, &message) {
                    // Announced already for its node, taken for dead meanwhile.
                    metrics.bus("duplicate");
                    continue;
                }
                fanout.receive(&message);
            }
            Err(reason) => {
                metrics.bus("unreadable");
                tracing::warn!(reason, "bus message from another node not understood");
            }
        }
    }
}

/// The network form of a node's message; `None` for one that concerns this node only.
pub(crate) fn encode(message: &BusMessage, directory: &Directory) -> Option<Outgoing> {
    Some(match message {
        BusMessage::Directory(change) => match serde_json::to_vec(change) {
            Ok(body) => Outgoing::directory(DIRECTORY, Bytes::from(body)),
            Err(err) => {
                tracing::error!(error = %err, "directory change not serializable");
                return None;
            }
        },
        BusMessage::Dispatch {
            audience,
            event,
            payload,
        } => Outgoing::event(
            audience_out(audience, directory)?,
            event.as_str(),
            payload.json_shared(),
        ),
        BusMessage::DispatchEach {
            audience,
            event,
            default,
            variants,
        } => {
            let mut body = BytesMut::new();
            let name = event.as_str().as_bytes();
            body.put_u8(name.len() as u8);
            body.put_slice(name);
            put_frame(&mut body, default);
            body.put_u32(variants.len() as u32);
            for variant in variants {
                body.put_u32(variant.users.len() as u32);
                for user in &variant.users {
                    body.put_slice(user.get().as_bytes());
                }
                put_frame(&mut body, &variant.payload);
            }
            Outgoing::event(audience_out(audience, directory)?, EACH, body.freeze())
        }
        // Closing sessions changes state other nodes must see at once (a kicked or
        // logged-out user's next request, through any node, is refused): like a
        // directory change, it goes to every node in causal order.
        BusMessage::CloseSessions { user } => Outgoing::directory(
            CLOSE_SESSIONS,
            Bytes::copy_from_slice(user.get().as_bytes()),
        ),
        BusMessage::CloseFamily { family } => {
            Outgoing::directory(CLOSE_FAMILY, Bytes::copy_from_slice(family.as_bytes()))
        }
        BusMessage::Forget(cached) => match serde_json::to_vec(cached) {
            Ok(body) => Outgoing::directory(FORGET, Bytes::from(body)),
            Err(err) => {
                tracing::error!(error = %err, "cache change not serializable");
                return None;
            }
        },
    })
}

fn put_frame(body: &mut BytesMut, payload: &Payload) {
    let json = payload.json_bytes();
    body.put_u32(json.len() as u32);
    body.put_slice(json);
}

fn audience_out(audience: &Audience, directory: &Directory) -> Option<concord_bus::Audience> {
    use concord_bus::Audience as Out;
    Some(match audience {
        Audience::Server(server) => Out::Server(*server),
        Audience::Channel(channel) => match directory.channel(*channel) {
            Some(facts) => Out::Channel {
                server: facts.server,
                channel: *channel,
            },
            // A channel unknown here is unknown everywhere (deleted): no one to tell.
            None => return None,
        },
        Audience::ServerPermission(server, permissions) => Out::ServerPermission {
            server: *server,
            permissions: permissions.0 as u64,
        },
        Audience::Users(users) => Out::Users(users.clone()),
        Audience::CoMembers(user) => Out::CoMembers(*user),
    })
}

fn audience_in(audience: concord_bus::Audience) -> Result<Audience, &'static str> {
    use concord_bus::Audience as In;
    Ok(match audience {
        In::Everyone => return Err("an event for everyone"),
        In::Node(_) => return Err("an event for one node"),
        In::Server(server) => Audience::Server(server),
        In::Channel { channel, .. } => Audience::Channel(channel),
        In::ServerPermission {
            server,
            permissions,
        } => Audience::ServerPermission(server, Permissions(permissions as i64)),
        In::Users(users) => Audience::Users(users),
        In::CoMembers(user) => Audience::CoMembers(user),
    })
}

fn event_named(name: &str) -> Result<Event, &'static str> {
    Event::ALL
        .iter()
        .copied()
        .find(|event| event.as_str() == name)
        .ok_or("an event this node does not know")
}

/// A dispatch frame from another node's JSON: checked to be one, so a session never
/// writes what is not.
fn frame(event: Event, json: &[u8]) -> Result<Payload, &'static str> {
    let text = std::str::from_utf8(json).map_err(|_| "a frame that is not UTF-8")?;
    Payload::dispatch_json(event, text).ok_or("a frame that is not a dispatch")
}

/// A node's message from the network form.
pub(crate) fn decode(message: concord_bus::BusMessage) -> Result<BusMessage, &'static str> {
    let mut body = message.body;
    Ok(match message.event.as_str() {
        DIRECTORY => BusMessage::Directory(
            serde_json::from_slice::<DirectoryChange>(&body)
                .map_err(|_| "a directory change this node cannot read")?,
        ),
        CLOSE_SESSIONS => BusMessage::CloseSessions {
            user: UserId::from_uuid(
                uuid::Uuid::from_slice(&body).map_err(|_| "a close without its user")?,
            ),
        },
        FORGET => BusMessage::Forget(
            serde_json::from_slice(&body).map_err(|_| "a cache this node does not know")?,
        ),
        CLOSE_FAMILY => BusMessage::CloseFamily {
            family: uuid::Uuid::from_slice(&body).map_err(|_| "a close without its login")?,
        },
        EACH => {
            let name = take(&mut body, 1).and_then(|n| take(&mut body, usize::from(n[0])))?;
            let event = event_named(std::str::from_utf8(&name).map_err(|_| "a bad name")?)?;
            let default = take_frame(&mut body, event)?;
            let n = take_u32(&mut body)? as usize;
            let mut variants = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                let users = take_u32(&mut body)? as usize;
                let ids = take(&mut body, users.checked_mul(16).ok_or("too many users")?)?;
                let users = ids
                    .chunks_exact(16)
                    .map(|id| UserId::from_uuid(uuid::Uuid::from_slice(id).unwrap_or_default()))
                    .collect();
                variants.push(Variant {
                    users,
                    payload: take_frame(&mut body, event)?,
                });
            }
            BusMessage::DispatchEach {
                audience: audience_in(message.audience)?,
                event,
                default,
                variants,
            }
        }
        name => {
            let event = event_named(name)?;
            BusMessage::Dispatch {
                audience: audience_in(message.audience)?,
                event,
                payload: frame(event, &body)?,
            }
        }
    })
}

fn take(body: &mut Bytes, n: usize) -> Result<Bytes, &'static str> {
    if body.remaining() < n {
        return Err("a truncated message");
    }
    Ok(body.split_to(n))
}

fn take_u32(body: &mut Bytes) -> Result<u32, &'static str> {
    take(body, 4).map(|mut b| b.get_u32())
}

fn take_frame(body: &mut Bytes, event: Event) -> Result<Payload, &'static str> {
    let n = take_u32(body)? as usize;
    let json = take(body, n)?;
    frame(event, &json)
}

/// What the node watches on the bus, kept in step with its sessions and directory.
///
/// Changes go to the bus through one task in the order they were made, so a watch
/// and the unwatch after it never swap.
#[derive(Clone)]
pub struct Interests {
    commands: mpsc::UnboundedSender<Command>,
    state: Arc<Mutex<Watched>>,
    directory: Arc<Directory>,
    /// Servers whose membership changed lately, and when.
    joined: Arc<Mutex<HashMap<ServerId, tokio::time::Instant>>>,
}

/// How long after a member joins a server its events go to every node rather than
/// to the nodes watching it: the time a node that learnt of the join needs to
/// subscribe to the server's route (one round trip to the broker), with margin.
pub const JOIN_WINDOW: Duration = Duration::from_secs(2);

impl std::fmt::Debug for Interests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interests").finish_non_exhaustive()
    }
}

/// The servers watched for each user with sessions on this node.
#[derive(Default)]
struct Watched {
    servers: HashMap<UserId, HashSet<ServerId>>,
}

impl concord_gateway::UserWatch for Interests {
    fn first(&self, user: UserId) {
        // Read under the lock that `directory_changed` takes after each change: a
        // change is either in this read or seen by it afterwards.
        let mut state = self.lock();
        let servers: HashSet<ServerId> = self.directory.servers_of(user).into_iter().collect();
        self.command(Command::Watch(Interest::User(user)));
        for server in &servers {
            self.command(Command::Watch(Interest::Server(*server)));
        }
        state.servers.insert(user, servers);
    }

    fn last(&self, user: UserId) {
        let servers = self.lock().servers.remove(&user).unwrap_or_default();
        self.command(Command::Unwatch(Interest::User(user)));
        for server in servers {
            self.command(Command::Unwatch(Interest::Server(server)));
        }
    }
}

enum Command {
    Watch(Interest),
    Unwatch(Interest),
    Sync(oneshot::Sender<()>),
}

impl Interests {
    /// Starts the task that tells `bus` what this node watches.
    pub fn start(bus: Arc<dyn Bus>, directory: Arc<Directory>) -> Self {
        let (commands, mut pending) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(command) = pending.recv().await {
                let result = match command {
                    Command::Watch(interest) => bus.watch(interest).await,
                    Command::Unwatch(interest) => bus.unwatch(interest).await,
                    Command::Sync(done) => {
                        let result = bus.sync().await;
                        let _ = done.send(());
                        result
                    }
                };
                if let Err(err) = result {
                    tracing::error!(error = %err, "bus subscription change failed");
                }
            }
        });
        Self {
            commands,
            state: Arc::default(),
            directory,
            joined: Arc::default(),
        }
    }

    /// Whether `server` gained a member within [`JOIN_WINDOW`].
    pub fn just_joined(&self, server: ServerId) -> bool {
        let joined = self.joined.lock().unwrap_or_else(|e| e.into_inner());
        joined
            .get(&server)
            .is_some_and(|at| at.elapsed() < JOIN_WINDOW)
    }

    fn joined(&self, server: ServerId) {
        let mut joined = self.joined.lock().unwrap_or_else(|e| e.into_inner());
        if joined.len() >= 1024 {
            joined.retain(|_, at| at.elapsed() < JOIN_WINDOW);
        }
        joined.insert(server, tokio::time::Instant::now());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Watched> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn command(&self, command: Command) {
        // The task lives as long as the runtime; nothing to do once it is gone.
        let _ = self.commands.send(command);
    }

    /// Returns once the broker has taken every subscription asked for so far: a
    /// session's READY is read after this, so nothing published after it is missed.
    pub async fn sync(&self) {
        let (done, synced) = oneshot::channel();
        self.command(Command::Sync(done));
        let _ = synced.await;
    }

    /// Brings what is watched in step with a directory replaced as a whole
    /// ([`Directory::replace`]): each user here watches their servers as it says now.
    pub fn resync(&self) {
        let mut state = self.lock();
        for (user, servers) in &mut state.servers {
            let now: HashSet<ServerId> = self.directory.servers_of(*user).into_iter().collect();
            for server in now.difference(servers) {
                self.command(Command::Watch(Interest::Server(*server)));
            }
            for server in servers.difference(&now) {
                self.command(Command::Unwatch(Interest::Server(*server)));
            }
            *servers = now;
        }
    }

    /// Follows a directory change: a local user who joins a server starts watching
    /// it; one who leaves, or whose server is deleted, stops.
    pub fn directory_changed(&self, change: &DirectoryChange) {
        if let DirectoryChange::ServerCreated { server, .. }
        | DirectoryChange::MemberAdded { server, .. } = change
        {
            self.joined(*server);
        }
        let mut state = self.lock();
        match change {
            DirectoryChange::ServerCreated {
                server,
                owner: user,
            }
            | DirectoryChange::MemberAdded { server, user } => {
                if let Some(servers) = state.servers.get_mut(user)
                    && servers.insert(*server)
                {
                    self.command(Command::Watch(Interest::Server(*server)));
                }
            }
            DirectoryChange::MemberRemoved { server, user } => {
                if let Some(servers) = state.servers.get_mut(user)
                    && servers.remove(server)
                {
                    self.command(Command::Unwatch(Interest::Server(*server)));
                }
            }
            DirectoryChange::ServerDeleted { server } => {
                for servers in state.servers.values_mut() {
                    if servers.remove(server) {
                        self.command(Command::Unwatch(Interest::Server(*server)));
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use concord_protocol::{
        ChannelId, ChannelOverride, ChannelType, OverrideId, RoleId, Timestamp,
    };

    use super::*;

    fn directory_with_channel() -> (Arc<Directory>, ServerId, ChannelId) {
        let directory = Arc::new(Directory::new());
        let (server, channel) = (ServerId::new(), ChannelId::new());
        directory.apply(&DirectoryChange::ServerCreated {
            server,
            owner: UserId::new(),
        });
        directory.apply(&DirectoryChange::ChannelCreated {
            channel,
            server,
            kind: ChannelType::Text,
        });
        (directory, server, channel)
    }

    fn through_the_wire(message: &BusMessage, directory: &Directory) -> BusMessage {
        let outgoing = encode(message, directory).expect("sent");
        let wire = concord_bus::wire::encode(&concord_bus::BusMessage {
            origin: concord_bus::NodeId::new(),
            kind: outgoing.kind,
            seq: 0,
            deps: Vec::new(),
            audience: outgoing.audience,
            event: outgoing.event,
            body: outgoing.body,
        });
        decode(concord_bus::wire::decode(&wire).expect("readable")).expect("understood")
    }

    fn text(payload: &Payload) -> &str {
        payload.as_str()
    }

    #[test]
    fn every_kind_of_message_reads_back_on_another_node() {
        let (directory, server, channel) = directory_with_channel();
        let (a, b) = (UserId::new(), UserId::new());
        let frame =
            Payload::dispatch(Event::MessageCreate, &serde_json::json!({"content": "hi"})).unwrap();
        let audiences = [
            Audience::Server(server),
            Audience::Channel(channel),
            Audience::ServerPermission(server, Permissions::VIEW_CHANNEL),
            Audience::Users(vec![a]),
            Audience::Users((0..9).map(|_| UserId::new()).collect()),
            Audience::CoMembers(b),
        ];
        for audience in audiences {
            let sent = BusMessage::Dispatch {
                audience: audience.clone(),
                event: Event::MessageCreate,
                payload: frame.clone(),
            };
            match through_the_wire(&sent, &directory) {
                BusMessage::Dispatch {
                    audience: got,
                    event,
                    payload,
                } => {
                    assert_eq!(got, audience);
                    assert_eq!(event, Event::MessageCreate);
                    assert_eq!(text(&payload), text(&frame));
                    assert_eq!(
                        payload.frame(),
                        frame.frame(),
                        "the same frame, header and all"
                    );
                }
                other => panic!("{other:?}"),
            }
        }
        let each = BusMessage::DispatchEach {
            audience: Audience::Server(server),
            event: Event::PollVote,
            default: Payload::dispatch(Event::PollVote, &1).unwrap(),
            variants: vec![Variant {
                users: vec![a, b],
                payload: Payload::dispatch(Event::PollVote, &2).unwrap(),
            }],
        };
        match through_the_wire(&each, &directory) {
            BusMessage::DispatchEach {
                event,
                default,
                variants,
                ..
            } => {
                assert_eq!(event, Event::PollVote);
                assert!(text(&default).ends_with(r#""d":1}"#));
                assert_eq!(variants.len(), 1);
                assert_eq!(variants[0].users, [a, b]);
                assert!(text(&variants[0].payload).ends_with(r#""d":2}"#));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            through_the_wire(&BusMessage::CloseSessions { user: a }, &directory),
            BusMessage::CloseSessions { user } if user == a
        ));
        let family = uuid::Uuid::new_v4();
        assert!(matches!(
            through_the_wire(&BusMessage::CloseFamily { family }, &directory),
            BusMessage::CloseFamily { family: f } if f == family
        ));
        for cached in [
            crate::bus::Cached::Automod { server },
            crate::bus::Cached::Webhooks { server },
            crate::bus::Cached::AllWebhooks,
        ] {
            assert!(matches!(
                through_the_wire(&BusMessage::Forget(cached), &directory),
                BusMessage::Forget(c) if c == cached
            ));
        }
    }

    #[test]
    fn every_directory_change_reads_back_as_it_was() {
        let (directory, server, channel) = directory_with_channel();
        let (user, role) = (UserId::new(), RoleId::new());
        let changes = [
            DirectoryChange::ServerCreated {
                server,
                owner: user,
            },
            DirectoryChange::ServerDeleted { server },
            DirectoryChange::MemberAdded { server, user },
            DirectoryChange::MemberRemoved { server, user },
            DirectoryChange::ChannelCreated {
                channel,
                server,
                kind: ChannelType::Voice,
            },
            DirectoryChange::ChannelDeleted { channel },
            DirectoryChange::RoleUpserted {
                role,
                server,
                permissions: 1 << 14,
                position: 3,
            },
            DirectoryChange::RoleDeleted { role, server },
            DirectoryChange::MemberRoleAdded { server, user, role },
            DirectoryChange::MemberRoleRemoved { server, user, role },
            DirectoryChange::OverrideUpserted(ChannelOverride {
                id: OverrideId::new(),
                channel_id: channel,
                role_id: None,
                user_id: Some(user),
                allow: 0,
                deny: 1,
            }),
            DirectoryChange::OverrideDeleted {
                channel,
                id: OverrideId::new(),
            },
            DirectoryChange::TimeoutSet {
                server,
                user,
                until: Some(Timestamp::now()),
            },
            DirectoryChange::TimeoutSet {
                server,
                user,
                until: None,
            },
            DirectoryChange::VoiceJoined { user, channel },
            DirectoryChange::VoiceLeft { user },
        ];
        for change in changes {
            match through_the_wire(&BusMessage::Directory(change.clone()), &directory) {
                BusMessage::Directory(got) => assert_eq!(got, change),
                other => panic!("{other:?}"),
            }
        }
    }

    /// A bus that only records what it is asked to watch.
    #[derive(Debug, Default)]
    struct Recording {
        watching: Mutex<HashMap<Interest, i32>>,
    }

    #[async_trait::async_trait]
    impl Bus for Recording {
        fn node(&self) -> concord_bus::NodeId {
            concord_bus::NodeId(uuid::Uuid::nil())
        }
        async fn publish(&self, _: Outgoing) -> Result<(), concord_bus::BusError> {
            Ok(())
        }
        async fn watch(&self, interest: Interest) -> Result<(), concord_bus::BusError> {
            *self.watching.lock().unwrap().entry(interest).or_default() += 1;
            Ok(())
        }
        async fn unwatch(&self, interest: Interest) -> Result<(), concord_bus::BusError> {
            *self.watching.lock().unwrap().entry(interest).or_default() -= 1;
            Ok(())
        }
        async fn sync(&self) -> Result<(), concord_bus::BusError> {
            Ok(())
        }
        async fn close(&self) {}
    }

    impl Recording {
        fn watched(&self) -> HashMap<Interest, i32> {
            let mut watching = self.watching.lock().unwrap().clone();
            watching.retain(|_, n| *n != 0);
            watching
        }
    }

    #[tokio::test]
    async fn a_node_watches_its_users_and_their_servers_while_they_are_here() {
        use concord_gateway::UserWatch;
        let (directory, server, _) = directory_with_channel();
        let (user, other_server) = (UserId::new(), ServerId::new());
        directory.apply(&DirectoryChange::MemberAdded { server, user });
        let bus = Arc::new(Recording::default());
        let interests = Interests::start(Arc::clone(&bus) as Arc<dyn Bus>, Arc::clone(&directory));
        interests.first(user);
        interests.sync().await;
        let want = |pairs: &[(Interest, i32)]| pairs.iter().copied().collect::<HashMap<_, _>>();
        assert_eq!(
            bus.watched(),
            want(&[(Interest::User(user), 1), (Interest::Server(server), 1)])
        );
        // Joining a server while here: watched too (and the server's events go to
        // every node for a while).
        let joined = DirectoryChange::ServerCreated {
            server: other_server,
            owner: user,
        };
        directory.apply(&joined);
        interests.directory_changed(&joined);
        assert!(interests.just_joined(other_server));
        interests.sync().await;
        assert_eq!(bus.watched()[&Interest::Server(other_server)], 1);
        // Leaving one, then the last session going: nothing is left watched.
        let left = DirectoryChange::MemberRemoved { server, user };
        directory.apply(&left);
        interests.directory_changed(&left);
        interests.last(user);
        interests.sync().await;
        assert_eq!(bus.watched(), HashMap::new());
        // A change about a user with no session here watches nothing.
        interests.directory_changed(&DirectoryChange::MemberAdded {
            server,
            user: UserId::new(),
        });
        interests.sync().await;
        assert_eq!(bus.watched(), HashMap::new());
    }

    /// An event as another node's message arrives here.
    fn from_elsewhere(
        event: &str,
        audience: concord_bus::Audience,
        body: Bytes,
    ) -> concord_bus::BusMessage {
        concord_bus::BusMessage {
            origin: concord_bus::NodeId::new(),
            kind: concord_bus::Kind::Event,
            seq: 0,
            deps: Vec::new(),
            audience,
            event: event.into(),
            body,
        }
    }

    #[test]
    fn what_another_node_cannot_use_is_refused_not_delivered() {
        let message = |event: &str, audience, body: &'static [u8]| {
            from_elsewhere(event, audience, Bytes::from_static(body))
        };
        let everyone = concord_bus::Audience::Everyone;
        let server = concord_bus::Audience::Server(ServerId::new());
        let bad = [
            // Not a frame, or a frame of another event than it claims.
            message("MESSAGE_CREATE", server.clone(), b"{\"op\":\"HELLO\"}"),
            message(
                "MESSAGE_CREATE",
                server.clone(),
                br#"{"op":"DISPATCH","t":"TYPING_START","d":{}}"#,
            ),
            message("NO_SUCH_EVENT", server.clone(), b""),
            // An event for every node is not a dispatch any session takes.
            message(
                "MESSAGE_CREATE",
                everyone.clone(),
                br#"{"op":"DISPATCH","t":"MESSAGE_CREATE","d":{}}"#,
            ),
            message(DIRECTORY, everyone.clone(), b"{\"change\":\"nonsense\"}"),
            message(CLOSE_SESSIONS, everyone.clone(), b""),
            message(CLOSE_FAMILY, everyone.clone(), b"short"),
            message(FORGET, everyone, br#"{"cache":"everything"}"#),
            message(EACH, server.clone(), b"\x0aPOLL_VOTE"),
            message(EACH, server, b"\x09POLL_VOTE\xff\xff\xff\xff"),
        ];
        for message in bad {
            let event = message.event.clone();
            assert!(decode(message).is_err(), "{event}");
        }
    }

    #[test]
    fn audio_reads_back_on_another_node_and_bad_audio_is_refused() {
        use crate::media::RemoteAudio;
        use concord_protocol::{AudioFormat, MediaEndReason, MediaEnded, MediaStarted};
        let (server, channel) = (ServerId::new(), ChannelId::new());
        let speaker = UserId::new();
        let wire = from_elsewhere;
        let here = concord_bus::Audience::Channel { server, channel };
        let messages = [
            RemoteAudio::Started(MediaStarted {
                user_id: speaker,
                channel_id: channel,
                format: AudioFormat::Pcm16k,
            }),
            RemoteAudio::Chunk {
                header: concord_protocol::RelayedHeader {
                    format: AudioFormat::Pcm16k,
                    sequence: 9,
                    timestamp: 180,
                    speaker,
                },
                payload: Bytes::from(vec![1u8; 640]),
            },
            RemoteAudio::Ended(MediaEnded {
                user_id: speaker,
                channel_id: channel,
                reason: MediaEndReason::Left,
            }),
        ];
        for message in messages {
            let (event, body) = media_out(message.clone()).unwrap();
            let (read_channel, read) = media_in(&wire(event, here.clone(), body)).unwrap();
            assert_eq!((read_channel, read), (channel, message));
        }
        let (_, started) = media_out(RemoteAudio::Started(MediaStarted {
            user_id: speaker,
            channel_id: ChannelId::new(),
            format: AudioFormat::Pcm16k,
        }))
        .unwrap();
        let bad = [
            // Not for a channel; a channel's event naming another; not a chunk; a
            // chunk of the wrong size for its format.
            wire(
                MEDIA,
                concord_bus::Audience::Server(server),
                started.clone(),
            ),
            wire(MEDIA, here.clone(), started),
            wire(MEDIA_CHUNK, here.clone(), Bytes::from_static(b"\x00\x01")),
            wire(MEDIA, here.clone(), Bytes::from_static(b"{}")),
        ];
        for message in bad {
            assert!(media_in(&message).is_err(), "{message:?}");
        }
        let mut short = Vec::new();
        concord_protocol::RelayedHeader {
            format: AudioFormat::Pcm16k,
            sequence: 1,
            timestamp: 0,
            speaker,
        }
        .write(&mut short);
        short.extend_from_slice(&[0u8; 3]);
        assert!(media_in(&wire(MEDIA_CHUNK, here, Bytes::from(short))).is_err());
    }

    #[test]
    fn a_roll_call_ends_when_every_node_answered_left_or_one_settled_it() {
        let (a, b, c) = (
            concord_bus::NodeId::new(),
            concord_bus::NodeId::new(),
            concord_bus::NodeId::new(),
        );
        let mut calls = RollCall::<u64, concord_bus::NodeId>::default();
        let mut all = calls.ask(1, HashSet::from([a, b, c]));
        let mut settled = calls.ask(2, HashSet::from([a, b, c]));
        let mut given_up = calls.ask(3, HashSet::from([a, b]));
        calls.answered(1, a);
        calls.answered(1, a);
        calls.answered(2, a);
        calls.answered(2, b);
        assert!(all.try_recv().is_err(), "b and c have yet to answer");
        let mut waited_for_b = calls.gone(b);
        waited_for_b.sort_unstable();
        assert_eq!(waited_for_b, [1, 3], "2 had its answer from b");
        calls.answered(1, c);
        assert_eq!(all.try_recv(), Ok(None));
        calls.settle(2, c);
        assert_eq!(settled.try_recv(), Ok(Some(c)));
        calls.answered(2, c);
        assert_eq!(calls.withdraw(3), HashSet::from([a]));
        assert!(given_up.try_recv().is_err(), "withdrawn: never answered");
        assert!(calls.open.is_empty());
        // A node taken for dead is excused from every question but those spared.
        let mut released = calls.ask(4, HashSet::from([a, b]));
        let mut spared = calls.ask(5, HashSet::from([a]));
        assert_eq!(calls.excuse(a, &HashSet::from([5])), [4]);
        assert!(released.try_recv().is_err(), "b has yet to answer");
        calls.answered(4, b);
        assert_eq!(released.try_recv(), Ok(None));
        assert!(spared.try_recv().is_err(), "still waits for a");
        assert!(calls.is_open(&5));
    }

    /// A node of `local` as a server starts it, on a directory and Hub of its own.
    pub(super) async fn node_on(local: &concord_bus::LocalCluster) -> Cluster {
        let (bus, inbox) = local.join();
        let bus: Arc<dyn Bus> = Arc::new(bus);
        let directory = Arc::new(Directory::new());
        let hub = Arc::new(concord_gateway::Hub::new());
        let metrics = Arc::new(Metrics::new(Arc::clone(&hub)));
        let fanout = Fanout::new(
            Arc::clone(&directory),
            hub,
            Arc::default(),
            Duration::ZERO,
            Arc::clone(&metrics),
        );
        let interests = Interests::start(Arc::clone(&bus), Arc::clone(&directory));
        let store = concord_store::SqliteStore::in_memory()
            .await
            .expect("in-memory store");
        Cluster::start(
            bus,
            inbox,
            fanout,
            interests,
            directory,
            Arc::new(store),
            metrics,
            Duration::from_secs(1),
        )
    }

    /// The next thing `signals` hands the task that follows them.
    async fn next_from(signals: &mut mpsc::UnboundedReceiver<FromNode>) -> FromNode {
        tokio::time::timeout(Duration::from_secs(10), signals.recv())
            .await
            .expect("in time")
            .expect("open")
    }

    #[tokio::test]
    async fn caught_up_waits_for_what_the_other_nodes_said_before_and_callers_share_rounds() {
        let local = concord_bus::LocalCluster::new();
        let (a, b) = (node_on(&local).await, node_on(&local).await);
        let mut signals = a.take_signals().expect("first take");
        b.signal(&Signal::Alive);
        assert!(
            matches!(next_from(&mut signals).await, FromNode::Signal(node, Signal::Alive) if node == b.node())
        );
        // b has its say, then a hundred callers on a want to know they heard all of it.
        b.signal(&Signal::LoginAttempt {
            username: "bob".into(),
        });
        let callers: Vec<_> = (0..100)
            .map(|_| {
                let a = a.clone();
                tokio::spawn(async move { a.caught_up().await })
            })
            .collect();
        match next_from(&mut signals).await {
            FromNode::Signal(node, Signal::LoginAttempt { username }) => {
                assert_eq!((node, username.as_str()), (b.node(), "bob"));
            }
            other => panic!("b's word comes first: {other:?}"),
        }
        // Only after it, the marker; no caller is answered before the follower is.
        let FromNode::CaughtUp(applied) = next_from(&mut signals).await else {
            panic!("the marker follows b's word");
        };
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(
            callers.iter().all(|caller| !caller.is_finished()),
            "answered before the follower applied what came before"
        );
        applied.send(()).unwrap();
        // Callers that came while a round ran would share one more.
        let more = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let follower = tokio::spawn({
            let more = Arc::clone(&more);
            async move {
                while let Some(FromNode::CaughtUp(applied)) = signals.recv().await {
                    more.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let _ = applied.send(());
                }
            }
        });
        for caller in callers {
            caller.await.unwrap();
        }
        follower.abort();
        assert!(more.load(std::sync::atomic::Ordering::Relaxed) <= 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_is_dead_once_silent_past_three_heartbeats_and_said_so_once() {
        let mut liveness = Liveness::new(Duration::from_secs(15));
        let (quiet, chatty) = (concord_bus::NodeId::new(), concord_bus::NodeId::new());
        assert!(!liveness.heard(quiet), "a new node is not one coming back");
        liveness.heard(chatty);
        tokio::time::advance(Duration::from_secs(10)).await;
        liveness.heard(chatty);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(liveness.dead(), [], "15 s exactly is not past the limit");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(liveness.dead(), [quiet]);
        assert_eq!(liveness.dead(), [], "reported once");
        // A dead node that speaks again is alive again, and said to be back once.
        assert!(liveness.heard(quiet));
        assert!(!liveness.heard(quiet));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(liveness.dead(), [chatty]);
        // Writes wait for the nodes heard lately and not skipped (left, or missed a
        // barrier) until they speak again; a skipped node is still reported dead.
        assert_eq!(liveness.waited_for(), HashSet::from([quiet]));
        liveness.skip(quiet);
        assert!(liveness.waited_for().is_empty());
        liveness.heard(quiet);
        assert_eq!(liveness.waited_for(), HashSet::from([quiet]));
        liveness.skip(quiet);
        tokio::time::advance(Duration::from_secs(16)).await;
        assert_eq!(liveness.dead(), [quiet]);
    }

    #[tokio::test(start_paused = true)]
    async fn after_its_own_link_came_back_a_node_gives_the_others_three_heartbeats_again() {
        let mut liveness = Liveness::new(Duration::from_secs(15));
        let other = concord_bus::NodeId::new();
        liveness.heard(other);
        // Cut off for 20 s: nothing came, and nobody was taken for dead meanwhile.
        tokio::time::advance(Duration::from_secs(20)).await;
        liveness.link_restored();
        tokio::time::advance(Duration::from_secs(15)).await;
        assert_eq!(liveness.dead(), [], "silent 15 s since the link came back");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(liveness.dead(), [other]);
        // Long gone: no longer remembered, so not "back" if the id ever spoke again.
        tokio::time::advance(REMEMBER_DEAD).await;
        assert_eq!(liveness.dead(), []);
        assert!(!liveness.heard(other));
    }
}
