//! A node that stops hands its parked v2 sessions over to the nodes that stay, so that
//! their clients RESUME on any of them with nothing lost and nothing twice.
//!
//! The leaving node L has already told its clients to reconnect (RECONNECT, close
//! 1001), so every session is parked and still sent its events. For each session, L
//! picks an adopter A among the live nodes and:
//!
//! 1. notes how many events are queued for it (its *mark*), and tells A (`Adopt`);
//! 2. A opens a *shadow* of it: a parked session of the same user and intents, which
//!    from then on is sent what the session would be; once A's subscriptions are in
//!    effect and A has applied everything published before L's mark (a catch-up
//!    round), A empties the shadow and answers `Ready`. From then on, the shadow
//!    receives every event published after that point, and only events published
//!    after L's mark;
//! 3. L runs a catch-up round of its own: every event published before A's shadow
//!    started has now been queued for the session on L. L takes the session for good
//!    (numbering, replay buffer, queued events) and sends it to A (`Session`, then
//!    `Sent`);
//! 4. A joins them ([`Gateway::adopt`]): the session's queue, then what the shadow
//!    holds less what L queued after the mark (the same event is the same frame on
//!    every node), and parks it; it answers `Adopted`.
//!
//! Meanwhile L holds the answer to any node that asks who holds one of these sessions
//! (a RESUME arriving elsewhere): it answers `Moving` at once (the asker waits longer)
//! and, once handed over, names the adopter (`Elsewhere`), or says it does not hold it
//! if the handover failed. A handover that takes too long is given up: those sessions
//! are lost as they were before (their clients get INVALID_SESSION and IDENTIFY).
//!
//! Several nodes may stop at once (a rolling deploy of more than one): each says so
//! (`Draining`) as it starts, none of them picks another that did as an adopter, and
//! one asked all the same answers `Ready` for no session. A second round hands the
//! refused sessions to the nodes that stay, with any session a node stopping at the
//! same time had handed here meanwhile.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use bytes::Bytes;
use concord_bus::{Audience, NodeId, Outgoing};
use concord_gateway::{Gateway, Parked, SavedSession, Shadow};
use concord_protocol::{Intents, UserId};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::Cluster;

/// The bus event of handover messages.
pub(super) const HANDOFF: &str = "handoff";

/// How long each step of a handover may take (the adopter's readiness; the sessions'
/// arrival there) before the leaving node gives it up.
const STEP_LIMIT: Duration = Duration::from_secs(5);

/// Most sessions in one handover: its messages listing them stay well within a bus
/// message. A node's sessions go in as many handovers as needed, all at once.
const BATCH: usize = 1000;

/// Largest saved session sent in one bus message: beyond, its oldest replayed events
/// are dropped (a client that had not received them gets INVALID_SESSION, as when
/// they leave the replay window).
const LARGEST_SESSION: usize = 768 * 1024;

/// What nodes say to hand sessions over.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
enum Message {
    /// To every node: node `to` is asked to take these sessions of the sender's, in
    /// handover `handover`.
    Adopt {
        handover: Uuid,
        to: Uuid,
        sessions: Vec<Moving>,
    },
    /// To the leaving node: shadows of these sessions receive on the sender now.
    Ready { handover: Uuid, ids: Vec<String> },
    /// To the adopter: one session, taken for good.
    Session {
        handover: Uuid,
        id: String,
        user: UserId,
        expires_in_ms: u64,
        state: String,
        mark: usize,
    },
    /// To the adopter: every session that could be sent was.
    Sent { handover: Uuid },
    /// To the leaving node: these sessions are parked on the sender.
    Adopted { handover: Uuid, ids: Vec<String> },
    /// To every node: the sender is stopping too, so it takes no sessions over.
    Draining,
}

/// A session to take over.
#[derive(Debug, Serialize, Deserialize)]
struct Moving {
    id: String,
    user: UserId,
    intents: u8,
}

/// Where one of this node's sessions went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Whereabouts {
    /// Being handed over: ask again later.
    Moving,
    /// Parked on that node.
    On(NodeId),
    /// Not here (never was, or lost).
    Gone,
}

/// What became of one batch of sessions handed to one node.
struct Outcome {
    /// Taken over there.
    handed: usize,
    /// Gone from here without being taken over (expired, too large, or not confirmed).
    dropped: usize,
    /// The node would not take them (stopping too) or did not answer: another is to.
    refused: bool,
}

impl Outcome {
    fn refused() -> Self {
        Self {
            handed: 0,
            dropped: 0,
            refused: true,
        }
    }
}

/// This node's handovers, either way.
#[derive(Default)]
pub(super) struct Handoffs {
    state: std::sync::Mutex<State>,
    /// Told each time a handover to this node ends.
    adoption_ended: tokio::sync::Notify,
}

#[derive(Default)]
struct State {
    /// This node is handing its sessions over: every session it holds is moving.
    active: bool,
    /// Other nodes that said they are stopping, until they are gone: no session is
    /// handed to them.
    draining: HashSet<NodeId>,
    /// Sessions of this node handed over, and to whom.
    adopted: HashMap<String, NodeId>,
    /// Sessions taken from this node's gateway to be sent, that no adopter has
    /// confirmed yet: no longer held here, not yet held there.
    sending: HashSet<String>,
    /// RESUMEs asked about meanwhile: who asked, by session.
    held: HashMap<String, Vec<(NodeId, Uuid)>>,
    /// Handovers whose adopter is to say it is ready.
    ready: HashMap<Uuid, oneshot::Sender<Vec<String>>>,
    /// Handovers whose adopter is to say which sessions it parked.
    done: HashMap<Uuid, oneshot::Sender<Vec<String>>>,
    /// Handovers to this node: where their sessions go.
    adopting: HashMap<Uuid, mpsc::UnboundedSender<Message>>,
}

impl Handoffs {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A handover to this node ended (taken over or given up).
    fn adoption_ended(&self, handover: Uuid) {
        self.lock().adopting.remove(&handover);
        self.adoption_ended.notify_waiters();
    }

    /// Waits until no handover to this node is under way, at most until `deadline`.
    async fn adoptions_ended(&self, deadline: tokio::time::Instant) {
        loop {
            let ended = self.adoption_ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            if self.lock().adopting.is_empty()
                || tokio::time::timeout_at(deadline, ended).await.is_err()
            {
                return;
            }
        }
    }
}

impl State {
    /// See [`Cluster::whereabouts`].
    fn whereabouts(
        &mut self,
        session: &str,
        held: bool,
        asker: NodeId,
        ticket: Uuid,
    ) -> Option<Whereabouts> {
        if let Some(node) = self.adopted.get(session) {
            return Some(Whereabouts::On(*node));
        }
        if !self.active {
            return None;
        }
        if !held && !self.sending.contains(session) {
            return Some(Whereabouts::Gone);
        }
        self.held
            .entry(session.to_owned())
            .or_default()
            .push((asker, ticket));
        Some(Whereabouts::Moving)
    }
}

impl Cluster {
    fn send_handoff(&self, audience: Audience, message: &Message) {
        match serde_json::to_vec(message) {
            Ok(body) => self.enqueue(Outgoing::event(audience, HANDOFF, Bytes::from(body))),
            Err(err) => tracing::error!(error = %err, "handover message not serializable"),
        }
    }

    /// Where session `session` is, for a node that asks who holds it: `held` says
    /// whether this node holds it now. While a handover runs, the question
    /// (`asker`'s `ticket`) is kept and answered once the session has moved
    /// ([`Cluster::answer_held`]).
    pub(super) fn whereabouts(
        &self,
        session: &str,
        held: bool,
        asker: NodeId,
        ticket: Uuid,
    ) -> Option<Whereabouts> {
        self.handoffs
            .lock()
            .whereabouts(session, held, asker, ticket)
    }

    /// Leaves out of `nodes` those that said they are stopping.
    pub(super) fn not_draining(&self, nodes: &mut HashSet<NodeId>) {
        let state = self.handoffs.lock();
        nodes.retain(|node| !state.draining.contains(node));
    }

    /// `node` left or died: it is no longer told apart as stopping.
    pub(super) fn forget_draining(&self, node: NodeId) {
        self.handoffs.lock().draining.remove(&node);
    }

    /// Starts handing this node's sessions over, as it stops: from now on, a node
    /// asking who holds one of them is told to wait ([`Cluster::hand_over`] follows,
    /// once every session is parked).
    pub fn begin_handover(&self) {
        self.handoffs.lock().active = true;
        // Nodes stopping at the same time (a rolling deploy of several at once) hand
        // their sessions to those that stay, not to each other.
        self.send_handoff(Audience::Everyone, &Message::Draining);
    }

    /// Hands every parked v2 session of `gateway` over to the other live nodes (see
    /// the module's documentation); returns how many were taken. Sessions that could
    /// not be handed over stay here, and those that asked for them are told so.
    pub async fn hand_over(&self, gateway: &Gateway) -> usize {
        // Sessions a node that stopped just before this one is still handing here go
        // on with this node's own: each such handover ends within its steps' limits.
        self.handoffs
            .adoptions_ended(tokio::time::Instant::now() + STEP_LIMIT * 2)
            .await;
        let mut handed = 0;
        let mut dropped = 0;
        // Nodes that would not take sessions (stopping too, or silent).
        let mut refused = HashSet::new();
        // A second round hands on what the first could not place, and any session a
        // node stopping at the same time handed here meanwhile.
        for _ in 0..2 {
            let parked = gateway.parked();
            let nodes = self.adopters(&refused);
            if parked.is_empty() || nodes.is_empty() || !self.own_route().await {
                break;
            }
            let mut shares: HashMap<NodeId, Vec<Parked>> = HashMap::new();
            for (at, session) in parked.into_iter().enumerate() {
                shares
                    .entry(nodes[at % nodes.len()])
                    .or_default()
                    .push(session);
            }
            let mut batches = Vec::new();
            for (node, mut share) in shares {
                while !share.is_empty() {
                    let rest = share.split_off(share.len().min(BATCH));
                    batches.push((node, std::mem::replace(&mut share, rest)));
                }
            }
            let handovers = batches
                .into_iter()
                .map(|(node, sessions)| self.hand_over_to(gateway, node, sessions));
            for (node, outcome) in futures_util::future::join_all(handovers).await {
                handed += outcome.handed;
                dropped += outcome.dropped;
                if outcome.refused {
                    refused.insert(node);
                }
            }
        }
        let held = {
            let mut state = self.handoffs.lock();
            state.active = false;
            std::mem::take(&mut state.held)
        };
        for (asker, ticket) in held.into_values().flatten() {
            self.answer_find(asker, ticket, Whereabouts::Gone);
        }
        // Every session not confirmed by an adopter: left here, expired meanwhile, too
        // large to send, or sent to a node that did not confirm it in time.
        let lost = gateway.parked().len() + dropped;
        for _ in 0..lost {
            self.metrics.handover("lost");
        }
        if lost > 0 {
            tracing::warn!(
                lost,
                "v2 sessions not handed over: their clients identify again"
            );
        }
        handed
    }

    /// The live nodes that may take sessions over, in a fixed order: not those
    /// stopping too, nor those in `refused`.
    fn adopters(&self, refused: &HashSet<NodeId>) -> Vec<NodeId> {
        let live = self.barriers.lock().liveness.waited_for();
        let state = self.handoffs.lock();
        let mut nodes: Vec<NodeId> = live
            .into_iter()
            .filter(|node| !state.draining.contains(node) && !refused.contains(node))
            .collect();
        nodes.sort_unstable();
        nodes
    }

    /// Hands `sessions` to `to`: what became of them.
    async fn hand_over_to(
        &self,
        gateway: &Gateway,
        to: NodeId,
        sessions: Vec<Parked>,
    ) -> (NodeId, Outcome) {
        let handover = Uuid::new_v4();
        let (ready_tx, ready) = oneshot::channel();
        let (done_tx, done) = oneshot::channel();
        {
            let mut state = self.handoffs.lock();
            state.ready.insert(handover, ready_tx);
            state.done.insert(handover, done_tx);
        }
        let marks: HashMap<String, usize> = sessions
            .iter()
            .map(|session| (session.id.clone(), session.mark))
            .collect();
        let moving = sessions
            .into_iter()
            .map(|session| Moving {
                id: session.id,
                user: session.user_id,
                intents: session.intents.bits(),
            })
            .collect();
        self.send_handoff(
            Audience::Everyone,
            &Message::Adopt {
                handover,
                to: to.0,
                sessions: moving,
            },
        );
        let ids = match tokio::time::timeout(STEP_LIMIT, ready).await {
            Ok(Ok(ids)) if !ids.is_empty() => ids,
            answer => {
                if answer.is_err() {
                    tracing::warn!(node = %to, "node did not get ready to take sessions over");
                } else {
                    // Ready for none: its shadows, if any, are let go at once.
                    self.send_handoff(Audience::Node(to), &Message::Sent { handover });
                }
                let mut state = self.handoffs.lock();
                state.ready.remove(&handover);
                state.done.remove(&handover);
                return (to, Outcome::refused());
            }
        };
        // Every event published before the adopter's shadows started is queued here.
        self.caught_up().await;
        let mut sent = Vec::new();
        let mut dropped = 0;
        for id in ids {
            let Some(mark) = marks.get(&id).copied() else {
                continue;
            };
            // In flight from before it leaves the gateway until the adopter confirms
            // it: a node asking for it meanwhile is told to wait, not that it is gone.
            self.handoffs.lock().sending.insert(id.clone());
            let Some(saved) = gateway.take_saved(&id).and_then(fit) else {
                tracing::warn!(session = %id, "v2 session not handed over: expired, or too large");
                self.handoffs.lock().sending.remove(&id);
                dropped += 1;
                continue;
            };
            sent.push(id);
            self.send_handoff(
                Audience::Node(to),
                &Message::Session {
                    handover,
                    id: saved.id,
                    user: saved.user_id,
                    expires_in_ms: u64::try_from(saved.expires_in.as_millis()).unwrap_or(u64::MAX),
                    state: saved.state,
                    mark,
                },
            );
        }
        self.send_handoff(Audience::Node(to), &Message::Sent { handover });
        let ids = match tokio::time::timeout(STEP_LIMIT, done).await {
            Ok(Ok(ids)) => ids,
            _ => {
                tracing::warn!(node = %to, "node did not confirm the sessions it took over");
                let mut state = self.handoffs.lock();
                state.done.remove(&handover);
                for id in &sent {
                    state.sending.remove(id);
                }
                let outcome = Outcome {
                    handed: 0,
                    dropped: dropped + sent.len(),
                    refused: true,
                };
                return (to, outcome);
            }
        };
        let held: Vec<(NodeId, Uuid)> = {
            let mut state = self.handoffs.lock();
            for id in &sent {
                state.sending.remove(id);
            }
            for id in &ids {
                state.adopted.insert(id.clone(), to);
            }
            ids.iter()
                .filter_map(|id| state.held.remove(id))
                .flatten()
                .collect()
        };
        for (asker, ticket) in held {
            self.answer_find(asker, ticket, Whereabouts::On(to));
        }
        for _ in &ids {
            self.metrics.handover("handed");
        }
        tracing::info!(node = %to, sessions = ids.len(), "v2 sessions handed over");
        let outcome = Outcome {
            handed: ids.len(),
            dropped: dropped + sent.len().saturating_sub(ids.len()),
            refused: false,
        };
        (to, outcome)
    }

    /// A handover message from `origin`.
    pub(super) fn handoff_in(&self, origin: NodeId, body: &[u8]) -> Result<(), &'static str> {
        let message: Message =
            serde_json::from_slice(body).map_err(|_| "handover message not understood")?;
        match message {
            Message::Adopt {
                handover,
                to,
                sessions,
            } => {
                if to == self.node.0 && self.handoffs.lock().active {
                    // Stopping too: it would have to hand them on. The leaving node
                    // picks another.
                    self.send_handoff(
                        Audience::Node(origin),
                        &Message::Ready {
                            handover,
                            ids: Vec::new(),
                        },
                    );
                } else if to == self.node.0 {
                    let (tx, rx) = mpsc::unbounded_channel();
                    self.handoffs.lock().adopting.insert(handover, tx);
                    let cluster = self.clone();
                    tokio::spawn(async move {
                        cluster.adopt(origin, handover, sessions, rx).await;
                    });
                }
            }
            Message::Ready { handover, ids } => {
                if let Some(ready) = self.handoffs.lock().ready.remove(&handover) {
                    let _ = ready.send(ids);
                }
            }
            Message::Adopted { handover, ids } => {
                if let Some(done) = self.handoffs.lock().done.remove(&handover) {
                    let _ = done.send(ids);
                }
            }
            Message::Draining => {
                self.handoffs.lock().draining.insert(origin);
            }
            message @ (Message::Session { handover, .. } | Message::Sent { handover }) => {
                if let Some(adopting) = self.handoffs.lock().adopting.get(&handover) {
                    let _ = adopting.send(message);
                }
            }
        }
        Ok(())
    }

    /// Takes over `sessions` from `from`, which is leaving, in handover `handover`;
    /// its messages about them come through `messages`, in order.
    async fn adopt(
        &self,
        from: NodeId,
        handover: Uuid,
        sessions: Vec<Moving>,
        mut messages: mpsc::UnboundedReceiver<Message>,
    ) {
        let Some(gateway) = self.gateway() else {
            self.handoffs.adoption_ended(handover);
            return;
        };
        let mut shadows: HashMap<String, Shadow> = sessions
            .into_iter()
            .map(|moving| {
                let shadow = gateway.shadow(moving.user, Intents::from_bits(moving.intents));
                (moving.id, shadow)
            })
            .collect();
        // The shadows' users' servers are watched, and the sessions come on this
        // node's own route.
        self.interests.sync().await;
        let route = self.own_route().await;
        // Everything published before the leaving node noted its marks is applied
        // here: from now on, a shadow is sent only what came after.
        self.caught_up().await;
        for shadow in shadows.values() {
            gateway.reset_shadow(shadow);
        }
        let ids = if route {
            shadows.keys().cloned().collect()
        } else {
            Vec::new()
        };
        self.send_handoff(Audience::Node(from), &Message::Ready { handover, ids });
        let mut adopted = Vec::new();
        let deadline = tokio::time::Instant::now() + STEP_LIMIT * 2;
        while let Ok(Some(message)) = tokio::time::timeout_at(deadline, messages.recv()).await {
            match message {
                Message::Session {
                    id,
                    handover: _,
                    user,
                    expires_in_ms,
                    state,
                    mark,
                } => {
                    let Some(shadow) = shadows.remove(&id) else {
                        continue;
                    };
                    let saved = SavedSession {
                        id: id.clone(),
                        user_id: user,
                        expires_in: Duration::from_millis(expires_in_ms),
                        state,
                    };
                    if gateway.adopt(saved, mark, shadow).await {
                        self.metrics.handover("adopted");
                        adopted.push(id);
                    }
                }
                Message::Sent { .. } => break,
                _ => {}
            }
        }
        self.handoffs.adoption_ended(handover);
        for shadow in shadows.into_values() {
            gateway.drop_shadow(shadow);
        }
        // The sessions' clients may be told to come here as soon as this is read.
        tracing::info!(node = %from, sessions = adopted.len(), "v2 sessions taken over");
        self.send_handoff(
            Audience::Node(from),
            &Message::Adopted {
                handover,
                ids: adopted,
            },
        );
    }
}

/// `saved`, with its oldest replayed events dropped until it fits one bus message;
/// `None` if its queued events alone do not.
fn fit(saved: SavedSession) -> Option<SavedSession> {
    if saved.state.len() <= LARGEST_SESSION {
        return Some(saved);
    }
    #[derive(Serialize, Deserialize)]
    struct Lean {
        #[serde(flatten)]
        rest: serde_json::Map<String, serde_json::Value>,
        replay: Vec<(u64, String)>,
    }
    let mut lean = serde_json::from_str::<Lean>(&saved.state).ok()?;
    let mut size = saved.state.len();
    let mut drop = 0;
    while size > LARGEST_SESSION && drop < lean.replay.len() {
        size = size.saturating_sub(lean.replay[drop].1.len() + 24);
        drop += 1;
    }
    lean.replay.drain(..drop);
    let state = serde_json::to_string(&lean).ok()?;
    (state.len() <= LARGEST_SESSION).then_some(SavedSession { state, ..saved })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(replay: usize, queued: usize) -> SavedSession {
        let frame = |n: usize| {
            format!(
                r#"{{"op":"DISPATCH","t":"MESSAGE_CREATE","d":{{"n":{n},"pad":"{}"}}}}"#,
                "x".repeat(1000)
            )
        };
        let state = serde_json::json!({
            "intents": 1,
            "seq": replay,
            "replay": (1..=replay).map(|s| (s, frame(s))).collect::<Vec<_>>(),
            "queued": (0..queued).map(frame).collect::<Vec<_>>(),
        });
        SavedSession {
            id: "0123".into(),
            user_id: UserId::new(),
            expires_in: Duration::from_secs(60),
            state: state.to_string(),
        }
    }

    #[test]
    fn a_session_asked_for_while_in_flight_is_moving_not_gone() {
        let (asker, ticket) = (NodeId(Uuid::new_v4()), Uuid::new_v4());
        let mut state = State::default();
        assert_eq!(
            state.whereabouts("a", true, asker, ticket),
            None,
            "not handing over"
        );
        state.active = true;
        assert_eq!(
            state.whereabouts("a", true, asker, ticket),
            Some(Whereabouts::Moving)
        );
        assert_eq!(
            state.whereabouts("b", false, asker, ticket),
            Some(Whereabouts::Gone),
            "never here"
        );
        // Taken from the gateway and sent; the adopter has not confirmed it yet.
        state.sending.insert("c".into());
        assert_eq!(
            state.whereabouts("c", false, asker, ticket),
            Some(Whereabouts::Moving)
        );
        assert_eq!(state.held["c"], [(asker, ticket)], "answered once it lands");
        state.sending.remove("c");
        let adopter = NodeId(Uuid::new_v4());
        state.adopted.insert("c".into(), adopter);
        assert_eq!(
            state.whereabouts("c", false, asker, ticket),
            Some(Whereabouts::On(adopter))
        );
    }

    #[test]
    fn a_session_too_large_for_one_message_loses_its_oldest_replay_or_is_not_sent() {
        let small = saved(10, 2);
        assert_eq!(fit(small.clone()), Some(small));
        let fitted = fit(saved(1000, 5)).expect("fits once its replay is cut");
        assert!(fitted.state.len() <= LARGEST_SESSION);
        let state: serde_json::Value = serde_json::from_str(&fitted.state).unwrap();
        let replay = state["replay"].as_array().unwrap();
        assert!(replay.len() < 1000 && !replay.is_empty());
        // The newest are kept, and everything else as it was.
        assert_eq!(replay.last().unwrap()[0], 1000);
        assert_eq!(state["seq"], 1000);
        assert_eq!(state["queued"].as_array().unwrap().len(), 5);
        assert_eq!(fit(saved(0, 1000)), None, "queued events are never dropped");
    }
}
