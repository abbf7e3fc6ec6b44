//! RESUME on any node: the cluster's side of [`concord_gateway::RemoteSessions`].
//!
//! A node given a RESUME for a session it lacks asks every live node who holds it
//! ([`RelayMessage::Find`], on the common route; each answers on the asker's own
//! route, so the asker stops waiting as soon as the owner says so or everyone has said
//! no). It then opens a relay to the owner ([`RelayMessage::Open`], carrying the
//! client's RESUME, on the owner's route only). From then on the client's frames go to
//! the owner's route and the owner's frames to the client's node's, each in order (one
//! publisher, one route). The owner serves the session over a
//! [`concord_gateway::RelayedSocket`]; the client's node relays bytes to the
//! WebSocket (`concord_gateway` describes both ends).
//!
//! A relay ends with either connection, or with the other node: one that dies (silent
//! three heartbeats) or leaves has its relays cut on this node.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
};

use async_trait::async_trait;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use concord_bus::{Audience, Interest, NodeId, Outgoing};
use concord_gateway::{
    Found, Gateway, RelayLink, RelayedSocket, RemoteSessions, ToClient, ToOwner,
};
use concord_protocol::UserId;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{BARRIER_LIMIT, Cluster, RollCall, handoff::Whereabouts};

/// The event name relay messages travel under.
pub(super) const RELAY: &str = "@relay";

/// Messages of the owner's output waiting for the client's socket before the relay
/// counts as overflowed (4013): at most `OUTPUT_QUEUE × PIECE` bytes (4 MiB) per relay.
/// One message is usually one write of the owner's session (a linger's worth of
/// events), so this is rarely more than a few hundred kilobytes.
const OUTPUT_QUEUE: usize = 256;

/// The client's frames waiting for its session on the owner (at most 16 KiB each; the
/// session reads them as they come and rate-limits them itself).
const INPUT_QUEUE: usize = 64;

/// Most bytes of the owner's output in one bus message; more goes in pieces, which
/// the client's node joins.
const PIECE: usize = 16 * 1024;

/// How long a RESUME waits for a session its node is handing over to another.
const MOVING_LIMIT: std::time::Duration = std::time::Duration::from_secs(15);

/// What relays say on the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RelayMessage {
    /// Who holds `session` of `user`? (to every node)
    Find {
        ticket: Uuid,
        user: UserId,
        session: String,
    },
    /// The sender holds it.
    Here { ticket: Uuid },
    /// The sender does not.
    NotHere { ticket: Uuid },
    /// The sender is handing it over to another node: the answer comes later.
    Moving { ticket: Uuid },
    /// The sender handed it over to `owner`.
    Elsewhere { ticket: Uuid, owner: NodeId },
    /// Serve the session for a client on the sender: `resume` first.
    Open { relay: Uuid, resume: String },
    /// The client's frame, to the owner; `n` counts them from 0 per relay.
    FromClient { relay: Uuid, n: u32, frame: ToOwner },
    /// The owner's output, to the client's node; `n` counts them from 0 per relay.
    FromOwner { relay: Uuid, n: u32, out: ToClient },
}

impl RelayMessage {
    fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(64);
        let mut head = |tag: u8, id: &Uuid| {
            out.put_u8(tag);
            out.put_slice(id.as_bytes());
        };
        match self {
            Self::Find {
                ticket,
                user,
                session,
            } => {
                head(0, ticket);
                out.put_slice(user.get().as_bytes());
                out.put_slice(session.as_bytes());
            }
            Self::Here { ticket } => head(1, ticket),
            Self::NotHere { ticket } => head(2, ticket),
            Self::Moving { ticket } => head(10, ticket),
            Self::Elsewhere { ticket, owner } => {
                head(11, ticket);
                out.put_slice(owner.0.as_bytes());
            }
            Self::Open { relay, resume } => {
                head(3, relay);
                out.put_slice(resume.as_bytes());
            }
            Self::FromClient { relay, n, frame } => match frame {
                ToOwner::Text(text) => {
                    head(4, relay);
                    out.put_u32(*n);
                    out.put_slice(text.as_bytes());
                }
                ToOwner::Binary(bytes) => {
                    head(5, relay);
                    out.put_u32(*n);
                    out.put_slice(bytes);
                }
                ToOwner::Closed(code) => {
                    head(6, relay);
                    out.put_u32(*n);
                    if let Some(code) = code {
                        out.put_u16(*code);
                    }
                }
            },
            Self::FromOwner {
                relay,
                n,
                out: sent,
            } => match sent {
                ToClient::Bytes(bytes) => {
                    head(7, relay);
                    out.put_u32(*n);
                    out.put_slice(bytes);
                }
                ToClient::Close { code, reason } => {
                    head(8, relay);
                    out.put_u32(*n);
                    out.put_u16(*code);
                    out.put_slice(reason.as_bytes());
                }
                ToClient::HandBack => {
                    head(9, relay);
                    out.put_u32(*n);
                }
            },
        }
        out.freeze()
    }

    fn decode(mut body: Bytes) -> Result<Self, &'static str> {
        const SHORT: &str = "a relay message cut short";
        if body.len() < 17 {
            return Err(SHORT);
        }
        let tag = body.get_u8();
        let id = Uuid::from_slice(&body.split_to(16)).map_err(|_| SHORT)?;
        let text =
            |bytes: Bytes| String::from_utf8(bytes.to_vec()).map_err(|_| "relay text not UTF-8");
        // Frames either way are numbered.
        let n = if (4..=9).contains(&tag) {
            if body.len() < 4 {
                return Err(SHORT);
            }
            body.get_u32()
        } else {
            0
        };
        Ok(match tag {
            0 => {
                if body.len() < 16 {
                    return Err(SHORT);
                }
                let user = Uuid::from_slice(&body.split_to(16)).map_err(|_| SHORT)?;
                Self::Find {
                    ticket: id,
                    user: UserId::from_uuid(user),
                    session: text(body)?,
                }
            }
            1 => Self::Here { ticket: id },
            2 => Self::NotHere { ticket: id },
            3 => Self::Open {
                relay: id,
                resume: text(body)?,
            },
            4 => Self::FromClient {
                relay: id,
                n,
                frame: ToOwner::Text(text(body)?),
            },
            5 => Self::FromClient {
                relay: id,
                n,
                frame: ToOwner::Binary(body),
            },
            6 => Self::FromClient {
                relay: id,
                n,
                frame: ToOwner::Closed(match body.len() {
                    0 => None,
                    2 => Some(body.get_u16()),
                    _ => return Err("a relay close of the wrong length"),
                }),
            },
            7 => Self::FromOwner {
                relay: id,
                n,
                out: ToClient::Bytes(body),
            },
            8 => {
                if body.len() < 2 {
                    return Err(SHORT);
                }
                let code = body.get_u16();
                Self::FromOwner {
                    relay: id,
                    n,
                    out: ToClient::Close {
                        code,
                        reason: text(body)?,
                    },
                }
            }
            9 if body.is_empty() => Self::FromOwner {
                relay: id,
                n,
                out: ToClient::HandBack,
            },
            10 if body.is_empty() => Self::Moving { ticket: id },
            11 => Self::Elsewhere {
                ticket: id,
                owner: NodeId(Uuid::from_slice(&body).map_err(|_| SHORT)?),
            },
            _ => return Err("a relay message of an unknown kind"),
        })
    }
}

/// A relay from a client on this node to the session's owner.
struct ClientEnd {
    owner: NodeId,
    to_socket: mpsc::Sender<ToClient>,
    overflowed: Arc<AtomicBool>,
    /// Frames sent to the owner so far (the next one's number).
    sent: Arc<AtomicU32>,
    /// The number the owner's next message must carry.
    expected: u32,
}

/// A session this node serves for a client on another node.
struct OwnerEnd {
    client: NodeId,
    to_session: mpsc::Sender<ToOwner>,
    /// Messages sent to the client's node so far (the next one's number).
    sent: Arc<AtomicU32>,
    /// The number the client's next frame must carry.
    expected: u32,
}

/// This node's relays.
#[derive(Default)]
pub(super) struct Relays {
    table: Mutex<Table>,
    gateway: std::sync::OnceLock<Weak<Gateway>>,
    /// Set once this node watches its own route.
    route: tokio::sync::OnceCell<()>,
    /// The node is stopping: it no longer says it holds a session.
    leaving: AtomicBool,
}

#[derive(Default)]
struct Table {
    /// Open questions: the nodes yet to answer, and the asker.
    finds: RollCall<Uuid, NodeId>,
    /// Open questions a node answered with [`RelayMessage::Moving`].
    moving: std::collections::HashSet<Uuid>,
    /// Questions a node left or died before answering: the session may have moved
    /// meanwhile to a node that had already said it lacked it.
    orphaned: std::collections::HashSet<Uuid>,
    clients: HashMap<Uuid, ClientEnd>,
    owners: HashMap<Uuid, OwnerEnd>,
}

impl Relays {
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Cluster {
    /// Joins the gateway to the cluster: a RESUME for a session another node holds is
    /// relayed there, and this node serves its own sessions to the others' clients.
    pub fn connect_gateway(&self, gateway: &Arc<Gateway>) {
        let _ = self.relays.gateway.set(Arc::downgrade(gateway));
        gateway.set_remote(Arc::new(self.clone()));
    }

    /// The node stops: its clients' relays end (they reconnect and resume through
    /// another node), and it no longer claims sessions.
    pub fn end_relays(&self) {
        self.relays.leaving.store(true, Ordering::Release);
        self.relays.lock().clients.clear();
    }

    /// Every relay ends (this node's link to the bus was lost, and frames with it):
    /// clients here are told to reconnect, sessions served here for others' clients
    /// park.
    pub(super) fn cut_all_relays(&self) {
        let mut table = self.relays.lock();
        table.clients.clear();
        table.owners.clear();
    }

    /// Relays with `node` (dead or gone) end: its clients here are told to reconnect,
    /// the sessions served here for its clients park.
    pub(super) fn cut_relays(&self, node: NodeId) {
        let mut table = self.relays.lock();
        table.clients.retain(|_, end| end.owner != node);
        table.owners.retain(|_, end| end.client != node);
        let orphaned = table.finds.gone(node);
        table.orphaned.extend(orphaned);
    }

    /// Watches this node's own route (once).
    pub(super) async fn own_route(&self) -> bool {
        self.relays
            .route
            .get_or_try_init(|| async {
                self.bus.watch(Interest::Node(self.node)).await?;
                self.bus.sync().await
            })
            .await
            .is_ok()
    }

    fn send_relay(&self, audience: Audience, message: &RelayMessage) {
        self.enqueue(Outgoing::event(audience, RELAY, message.encode()));
    }

    /// The owner's output for a client on `to`, in pieces the bus takes, numbered
    /// with `sent`.
    fn to_client(&self, to: NodeId, relay: Uuid, sent: &AtomicU32, out: ToClient) {
        let send = |out| {
            let n = sent.fetch_add(1, Ordering::AcqRel);
            self.send_relay(
                Audience::Node(to),
                &RelayMessage::FromOwner { relay, n, out },
            );
        };
        match out {
            ToClient::Bytes(mut bytes) => {
                while !bytes.is_empty() {
                    send(ToClient::Bytes(bytes.split_to(bytes.len().min(PIECE))));
                }
            }
            close => send(close),
        }
    }

    /// A client's frame for its session on `to`, numbered with `sent`.
    fn to_owner(&self, to: NodeId, relay: Uuid, sent: &AtomicU32, frame: ToOwner) {
        let n = sent.fetch_add(1, Ordering::AcqRel);
        self.send_relay(
            Audience::Node(to),
            &RelayMessage::FromClient { relay, n, frame },
        );
    }

    /// A relay message from `origin`.
    pub(super) fn relay_in(&self, origin: NodeId, body: Bytes) -> Result<(), &'static str> {
        match RelayMessage::decode(body)? {
            RelayMessage::Find {
                ticket,
                user,
                session,
            } => self.find(origin, ticket, user, &session),
            RelayMessage::Here { ticket } => self.relays.lock().finds.settle(ticket, origin),
            RelayMessage::NotHere { ticket } => self.relays.lock().finds.answered(ticket, origin),
            RelayMessage::Moving { ticket } => {
                let mut table = self.relays.lock();
                if table.finds.is_open(&ticket) {
                    table.moving.insert(ticket);
                }
            }
            RelayMessage::Elsewhere { ticket, owner } => {
                self.relays.lock().finds.settle(ticket, owner);
            }
            RelayMessage::Open { relay, resume } => self.serve(origin, relay, resume),
            RelayMessage::FromClient { relay, n, frame } => {
                let mut table = self.relays.lock();
                let Some(end) = table
                    .owners
                    .get_mut(&relay)
                    .filter(|end| end.client == origin)
                else {
                    return Ok(());
                };
                let in_order = n == end.expected;
                end.expected = end.expected.wrapping_add(1);
                let closed = matches!(frame, ToOwner::Closed(_));
                let taken = in_order && end.to_session.try_send(frame).is_ok();
                if taken && !closed {
                    return Ok(());
                }
                // Closed; or a frame lost on the way (the bus gave up on one), or a
                // client flooding faster than its session reads: the session's socket
                // ends (it parks, resumable) and the client is sent on.
                let Some(end) = table.owners.remove(&relay) else {
                    return Ok(());
                };
                drop(table);
                if !taken {
                    let (code, reason) = if in_order {
                        (concord_protocol::CloseCode::RateLimited, "rate limited")
                    } else {
                        (concord_protocol::CloseCode::GoingAway, "relay interrupted")
                    };
                    let close = ToClient::Close {
                        code: code.code(),
                        reason: reason.into(),
                    };
                    self.to_client(origin, relay, &end.sent, close);
                }
            }
            RelayMessage::FromOwner { relay, n, out } => {
                let mut table = self.relays.lock();
                let Some(end) = table
                    .clients
                    .get_mut(&relay)
                    .filter(|end| end.owner == origin)
                else {
                    return Ok(());
                };
                let in_order = n == end.expected;
                end.expected = end.expected.wrapping_add(1);
                let last = !matches!(out, ToClient::Bytes(_));
                if !in_order {
                    // A piece lost on the way (the bus gave up on one): what follows
                    // cannot be trusted. The client is told to reconnect and resume
                    // (the owner's replay has everything), and the session parks.
                    if let Some(end) = table.clients.remove(&relay) {
                        drop(table);
                        self.to_owner(origin, relay, &end.sent, ToOwner::Closed(None));
                    }
                } else if end.to_socket.try_send(out).is_err() {
                    // The client reads too slowly: its relay ends (4013).
                    end.overflowed.store(true, Ordering::Release);
                    table.clients.remove(&relay);
                } else if last {
                    table.clients.remove(&relay);
                }
            }
        }
        Ok(())
    }

    /// Answers `asker`'s question: does this node hold the session?
    fn find(&self, asker: NodeId, ticket: Uuid, user: UserId, session: &str) {
        let holds = self
            .gateway()
            .is_some_and(|gateway| gateway.holds(session, user));
        let whereabouts = self.whereabouts(session, holds, asker, ticket);
        tracing::debug!(%ticket, %asker, holds, ?whereabouts, "asked for a v2 session");
        if let Some(whereabouts) = whereabouts {
            self.answer_find(asker, ticket, whereabouts);
            return;
        }
        let here = !self.relays.leaving.load(Ordering::Acquire) && holds;
        if !here {
            self.send_relay(Audience::Node(asker), &RelayMessage::NotHere { ticket });
            return;
        }
        // The client's frames will come on this node's route: watch it before saying
        // so.
        let cluster = self.clone();
        tokio::spawn(async move {
            let message = if cluster.own_route().await {
                RelayMessage::Here { ticket }
            } else {
                RelayMessage::NotHere { ticket }
            };
            cluster.send_relay(Audience::Node(asker), &message);
        });
    }

    /// This node's gateway, while it runs.
    pub(super) fn gateway(&self) -> Option<Arc<Gateway>> {
        self.relays.gateway.get().and_then(Weak::upgrade)
    }

    /// Answers `asker`'s question `ticket` (who holds a session?) for a session this
    /// node is handing over or handed over.
    pub(super) fn answer_find(&self, asker: NodeId, ticket: Uuid, whereabouts: Whereabouts) {
        let answer = match whereabouts {
            Whereabouts::Moving => RelayMessage::Moving { ticket },
            Whereabouts::On(owner) => RelayMessage::Elsewhere { ticket, owner },
            Whereabouts::Gone => RelayMessage::NotHere { ticket },
        };
        self.send_relay(Audience::Node(asker), &answer);
    }

    /// Serves a session for a client on `client`'s node.
    fn serve(&self, client: NodeId, relay: Uuid, resume: String) {
        let gateway = self.gateway();
        let Some(gateway) = gateway.filter(|_| !self.relays.leaving.load(Ordering::Acquire)) else {
            self.to_client(
                client,
                relay,
                &AtomicU32::new(0),
                ToClient::Close {
                    code: concord_protocol::CloseCode::GoingAway.code(),
                    reason: "node going away".into(),
                },
            );
            return;
        };
        let (to_session, from_client) = mpsc::channel(INPUT_QUEUE);
        let _ = to_session.try_send(ToOwner::Text(resume));
        let sent = Arc::new(AtomicU32::new(0));
        self.relays.lock().owners.insert(
            relay,
            OwnerEnd {
                client,
                to_session,
                sent: Arc::clone(&sent),
                expected: 0,
            },
        );
        let closed = Arc::new(AtomicBool::new(false));
        let sender = self.clone();
        let (sent_close, counter) = (Arc::clone(&closed), Arc::clone(&sent));
        let to_client = Box::new(move |out: ToClient| {
            if matches!(out, ToClient::Close { .. }) {
                sent_close.store(true, Ordering::Release);
            }
            sender.to_client(client, relay, &counter, out);
        });
        let cluster = self.clone();
        tokio::spawn(async move {
            let refused = gateway
                .serve_relayed(RelayedSocket::new(from_client, to_client))
                .await;
            let open = cluster.relays.lock().owners.remove(&relay).is_some();
            if !open || closed.load(Ordering::Acquire) {
                return;
            }
            let last = if refused {
                // The client's node serves the connection again.
                ToClient::HandBack
            } else {
                // Ended without a close of its own (another RESUME took the session):
                // the client's connection is dropped, as a socket of this node's is.
                ToClient::Close {
                    code: concord_gateway::DROPPED,
                    reason: String::new(),
                }
            };
            cluster.to_client(client, relay, &sent, last);
        });
    }
}

impl Cluster {
    /// Asks every live node who holds `session_id` of `user`: its owner, if one
    /// answered so, and whether a node left or died before answering. `None`: no
    /// other node is live.
    async fn find_owner(&self, session_id: &str, user: UserId) -> Option<(Option<NodeId>, bool)> {
        let ticket = Uuid::new_v4();
        let waited = self.barriers.lock().liveness.waited_for();
        if waited.is_empty() {
            return None;
        }
        let answer = self.relays.lock().finds.ask(ticket, waited);
        self.send_relay(
            Audience::Everyone,
            &RelayMessage::Find {
                ticket,
                user,
                session: session_id.to_owned(),
            },
        );
        let mut answer = answer;
        let mut found = tokio::time::timeout(BARRIER_LIMIT, &mut answer).await;
        if found.is_err() && self.relays.lock().moving.remove(&ticket) {
            // The session's node is handing it over: the new owner is named once it
            // holds the session.
            found = tokio::time::timeout(MOVING_LIMIT, &mut answer).await;
        }
        let mut table = self.relays.lock();
        let moving = table.moving.remove(&ticket);
        let orphaned = table.orphaned.remove(&ticket);
        tracing::debug!(%ticket, ?found, moving, orphaned, "asked who holds a v2 session");
        if let Ok(Ok(Some(owner))) = found {
            return Some((Some(owner), orphaned));
        }
        let mut silent = table.finds.withdraw(ticket);
        drop(table);
        if found.is_err() {
            self.metrics.bus("find_timeout");
            // A stopping node is waited for as before: it answers for the sessions on
            // their way to other nodes, and says when it leaves.
            self.not_draining(&mut silent);
        }
        if found.is_err() && !silent.is_empty() {
            // Most likely dead (killed, not stopped): the other questions waiting for
            // it end now, without its answer, and no question or write waits for it
            // until it is heard from again, as after a write's barrier. A dead node's
            // clients come to ask within a second or so of each other: they wait out
            // one timeout between them, not one each.
            {
                let mut guard = self.relays.lock();
                let table = &mut *guard;
                for node in &silent {
                    // A question answered "on its way" waits on for the session's owner.
                    table.finds.excuse(*node, &table.moving);
                }
            }
            self.skip_silent(&silent);
            tracing::debug!(
                nodes = silent.len(),
                "nodes did not answer who holds a session"
            );
        }
        Some((None, orphaned))
    }
}

#[async_trait]
impl RemoteSessions for Cluster {
    async fn open(&self, session_id: &str, user: UserId, resume: String) -> Option<Found> {
        if self.relays.leaving.load(Ordering::Acquire) || !self.own_route().await {
            return None;
        }
        let mut asked = 0;
        let owner = loop {
            asked += 1;
            let (owner, orphaned) = self.find_owner(session_id, user).await?;
            if let Some(owner) = owner {
                break owner;
            }
            // A node left without answering: a stopping node may have handed the
            // session to one that had already said it lacked it (this one, or
            // another: asked once more, that one names itself).
            if !orphaned || asked == 2 {
                return None;
            }
            if self
                .gateway()
                .is_some_and(|gateway| gateway.holds(session_id, user))
            {
                return Some(Found::Here);
            }
        };
        if owner == self.node {
            // A stopping node handed the session over to this one meanwhile.
            return Some(Found::Here);
        }
        let relay = Uuid::new_v4();
        let (to_socket, from_owner) = mpsc::channel(OUTPUT_QUEUE);
        let overflowed = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU32::new(0));
        self.relays.lock().clients.insert(
            relay,
            ClientEnd {
                owner,
                to_socket,
                overflowed: Arc::clone(&overflowed),
                sent: Arc::clone(&sent),
                expected: 0,
            },
        );
        self.send_relay(Audience::Node(owner), &RelayMessage::Open { relay, resume });
        tracing::debug!(%owner, "v2 session resumed through this node, served by its owner");
        let cluster = self.clone();
        Some(Found::Relay(RelayLink {
            from_owner,
            to_owner: Box::new(move |frame| {
                if matches!(frame, ToOwner::Closed(_)) {
                    cluster.relays.lock().clients.remove(&relay);
                }
                cluster.to_owner(owner, relay, &sent, frame);
            }),
            overflowed,
        }))
    }
}

#[cfg(test)]
mod tests {
    use concord_bus::Bus;

    use super::*;

    #[test]
    fn every_relay_message_reads_back_and_a_cut_one_is_refused() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let messages = [
            RelayMessage::Find {
                ticket: a,
                user: UserId::new(),
                session: "0123abcd".into(),
            },
            RelayMessage::Here { ticket: a },
            RelayMessage::NotHere { ticket: b },
            RelayMessage::Moving { ticket: a },
            RelayMessage::Elsewhere {
                ticket: b,
                owner: NodeId(Uuid::new_v4()),
            },
            RelayMessage::Open {
                relay: b,
                resume: r#"{"op":"RESUME","d":{"seq":3}}"#.into(),
            },
            RelayMessage::FromClient {
                relay: a,
                n: 7,
                frame: ToOwner::Text("{\"op\":\"HEARTBEAT\"}".into()),
            },
            RelayMessage::FromClient {
                relay: a,
                n: 14,
                frame: ToOwner::Binary(Bytes::from_static(&[0, 1, 2])),
            },
            RelayMessage::FromClient {
                relay: a,
                n: 21,
                frame: ToOwner::Closed(None),
            },
            RelayMessage::FromClient {
                relay: a,
                n: 28,
                frame: ToOwner::Closed(Some(1000)),
            },
            RelayMessage::FromOwner {
                relay: b,
                n: 35,
                out: ToClient::Bytes(Bytes::from_static(b"\x81\x02{}")),
            },
            RelayMessage::FromOwner {
                relay: b,
                n: 42,
                out: ToClient::Close {
                    code: 4006,
                    reason: "heartbeat timeout".into(),
                },
            },
            RelayMessage::FromOwner {
                relay: a,
                n: 49,
                out: ToClient::HandBack,
            },
        ];
        for message in messages {
            let bytes = message.encode();
            assert_eq!(RelayMessage::decode(bytes.clone()), Ok(message.clone()));
            for cut in [0, 1, 16] {
                assert!(RelayMessage::decode(bytes.slice(..cut)).is_err());
            }
            if (4..=9).contains(&bytes[0]) {
                assert!(
                    RelayMessage::decode(bytes.slice(..19)).is_err(),
                    "its number cut short"
                );
            }
            if bytes[0] == 11 {
                assert!(
                    RelayMessage::decode(bytes.slice(..20)).is_err(),
                    "its owner cut short"
                );
            }
        }
        let mut unknown = BytesMut::from(&RelayMessage::Here { ticket: a }.encode()[..]);
        unknown[0] = 42;
        assert!(RelayMessage::decode(unknown.freeze()).is_err());
    }

    /// A cluster node over an in-process bus, and another node of that bus watching
    /// its own route (the relay's other end, as the test plays it).
    async fn node_and_peer() -> (Cluster, concord_bus::LocalNode, concord_bus::Inbox) {
        let local = concord_bus::LocalCluster::new();
        let cluster = super::super::tests::node_on(&local).await;
        let (peer, peer_inbox) = local.join();
        peer.watch(Interest::Node(peer.node())).await.unwrap();
        peer.sync().await.unwrap();
        (cluster, peer, peer_inbox)
    }

    /// The next relay message `inbox` gets.
    async fn next_relay(inbox: &mut concord_bus::Inbox) -> RelayMessage {
        loop {
            let message = inbox.recv().await.expect("the bus is open");
            if message.event == RELAY {
                return RelayMessage::decode(message.body).unwrap();
            }
        }
    }

    #[tokio::test]
    async fn a_lost_piece_of_the_owners_output_ends_the_relay_and_parks_the_session() {
        let (cluster, owner, mut owner_in) = node_and_peer().await;
        let relay = Uuid::new_v4();
        let (to_socket, mut from_owner) = mpsc::channel(8);
        cluster.relays.lock().clients.insert(
            relay,
            ClientEnd {
                owner: owner.node(),
                to_socket,
                overflowed: Arc::default(),
                sent: Arc::new(AtomicU32::new(3)),
                expected: 0,
            },
        );
        let piece = |n| {
            let out = ToClient::Bytes(Bytes::from_static(b"\x81\x02{}"));
            RelayMessage::FromOwner { relay, n, out }.encode()
        };
        cluster.relay_in(owner.node(), piece(0)).unwrap();
        cluster.relay_in(owner.node(), piece(2)).unwrap();
        cluster.relay_in(owner.node(), piece(3)).unwrap();
        assert!(matches!(from_owner.recv().await, Some(ToClient::Bytes(_))));
        assert_eq!(from_owner.recv().await, None, "nothing after the gap");
        assert!(cluster.relays.lock().clients.is_empty());
        assert_eq!(
            next_relay(&mut owner_in).await,
            RelayMessage::FromClient {
                relay,
                n: 3,
                frame: ToOwner::Closed(None)
            },
            "the owner's socket ends: the session parks"
        );
    }

    #[tokio::test]
    async fn a_lost_client_frame_ends_the_sessions_socket_and_sends_the_client_on() {
        let (cluster, client, mut client_in) = node_and_peer().await;
        let relay = Uuid::new_v4();
        let (to_session, mut from_client) = mpsc::channel(8);
        cluster.relays.lock().owners.insert(
            relay,
            OwnerEnd {
                client: client.node(),
                to_session,
                sent: Arc::default(),
                expected: 0,
            },
        );
        let frame = |n| {
            let frame = ToOwner::Text("{\"op\":\"HEARTBEAT\"}".into());
            RelayMessage::FromClient { relay, n, frame }.encode()
        };
        cluster.relay_in(client.node(), frame(0)).unwrap();
        cluster.relay_in(client.node(), frame(1)).unwrap();
        cluster.relay_in(client.node(), frame(3)).unwrap();
        for _ in 0..2 {
            assert!(matches!(from_client.recv().await, Some(ToOwner::Text(_))));
        }
        assert_eq!(from_client.recv().await, None, "the session's socket ends");
        assert_eq!(
            next_relay(&mut client_in).await,
            RelayMessage::FromOwner {
                relay,
                n: 0,
                out: ToClient::Close {
                    code: 1001,
                    reason: "relay interrupted".into()
                }
            }
        );
    }
}
