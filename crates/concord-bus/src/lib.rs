//! The bus between Concord nodes.
//!
//! A node commits a change to the database, delivers it to its own sessions, then
//! publishes it here so that every other node delivers it to theirs. What crosses the
//! bus is plain data: who it is for ([`Audience`]), the event's name, the body's bytes
//! (for a dispatch, the JSON of the frame, serialized once by the publisher) and the
//! node it came from. The bus knows nothing of directories or frames; the node's
//! receiver (audience → local sessions) lives in the server.
//!
//! Two kinds of message travel: events, which a node needs only while it holds a
//! session in their audience, and directory changes (membership, roles, overrides),
//! which every node applies. A node says what it needs with [`Bus::watch`]; a bus
//! delivers to a node every directory change and every event whose audience it
//! watches, and never a node's own messages back to it (the publisher has applied
//! and delivered them already).
//!
//! **Order.** Messages from one node on one route (every node, one server, one user)
//! reach another node in the order they were published; a broker does not order
//! different routes against each other. A directory change is causal: an event published by any node after
//! that node applied a change reaches every other node after the change (each message
//! carries the publisher's count of applied changes per origin; a receiver holds a
//! message back until it has applied as many, for at most [`Ordering::hold`]).
//!
//! Buses: [`LocalCluster`] (nodes in one process: the conformance reference and the
//! multi-node tests) and [`NatsBus`] (NATS core subjects, one per server and per user).
//! [`conformance`] holds the suite every bus passes.

pub mod conformance;
mod local;
mod nats;
mod order;
pub mod wire;

use std::{fmt, time::Duration};

use async_trait::async_trait;
use bytes::Bytes;
use concord_protocol::{ChannelId, ServerId, UserId};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

pub use local::{LocalCluster, LocalNode};
pub use nats::{NatsBus, NatsOptions, valid_prefix};
pub use order::Ordering;

/// One node of a cluster; fresh at each start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub Uuid);

impl NodeId {
    /// A new, random node id.
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }
}

impl Default for NodeId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Who a message is for. A node resolves it against its own directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Every node (directory changes; control messages such as closing a login).
    Everyone,
    /// Every member of a server.
    Server(ServerId),
    /// The members of `server` who may view `channel`.
    Channel {
        /// The channel's server (which subject carries it).
        server: ServerId,
        /// The channel.
        channel: ChannelId,
    },
    /// The members of `server` holding all of `permissions`.
    ServerPermission {
        /// Server.
        server: ServerId,
        /// Permission bits.
        permissions: u64,
    },
    /// Exactly these users (all their sessions).
    Users(Vec<UserId>),
    /// Everyone sharing a server with the user, the user excluded.
    CoMembers(UserId),
    /// One node, for what concerns that node alone (a session relayed through another
    /// node, say).
    Node(NodeId),
}

/// What a node watches: it receives the events of a server while it holds a session
/// of one of its members, and a user's events while it holds one of their sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interest {
    /// Events to a server's members, channels and roles.
    Server(ServerId),
    /// Events to one user.
    User(UserId),
    /// What is addressed to one node ([`Audience::Node`]): each node watches its own.
    Node(NodeId),
}

/// Whether a message is an event or a directory change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Delivered to the audience's sessions on nodes that watch it.
    Event,
    /// Applied by every node, in causal order with the events after it.
    Directory,
}

/// A message as its publisher hands it to the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Event or directory change.
    pub kind: Kind,
    /// Who it is for.
    pub audience: Audience,
    /// The event's name (`MESSAGE_CREATE`) or the control message's.
    pub event: String,
    /// The body, opaque to the bus.
    pub body: Bytes,
    /// Sent to every node rather than to those watching its audience (see
    /// [`Outgoing::to_every_node`]).
    pub wide: bool,
}

impl Outgoing {
    /// An event for `audience`.
    pub fn event(audience: Audience, event: impl Into<String>, body: Bytes) -> Self {
        Self {
            kind: Kind::Event,
            audience,
            event: event.into(),
            body,
            wide: false,
        }
    }

    /// A directory change, for every node.
    pub fn directory(event: impl Into<String>, body: Bytes) -> Self {
        Self {
            kind: Kind::Directory,
            audience: Audience::Everyone,
            event: event.into(),
            body,
            wide: false,
        }
    }

    /// The same message, sent on the route every node receives, in causal order with
    /// the directory changes before it. For a server whose membership just changed:
    /// a node that has just learnt that one of its users joined may not be watching
    /// the server's own route yet, and would miss what follows on it.
    #[must_use]
    pub fn to_every_node(mut self) -> Self {
        self.wide = true;
        self
    }
}

/// A message as a node receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusMessage {
    /// The node that published it.
    pub origin: NodeId,
    /// Event or directory change.
    pub kind: Kind,
    /// For a directory change, how many changes the origin had published counting
    /// this one; for an event, how many events (zero from a node that does not number
    /// them). Only changes are held back by it ([`Ordering`]); an event's number lets
    /// a receiver count those that arrive after a later one ([`OrderCounts`]).
    pub seq: u64,
    /// The publisher's applied directory changes per origin when it published.
    pub deps: Vec<(NodeId, u64)>,
    /// Who it is for.
    pub audience: Audience,
    /// The event's name.
    pub event: String,
    /// The body.
    pub body: Bytes,
}

/// Why the bus refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// The bus was closed.
    #[error("the bus is closed")]
    Closed,
    /// The broker could not be reached or refused.
    #[error("bus unavailable: {0}")]
    Unavailable(String),
    /// A message too large for the broker.
    #[error("message of {0} bytes is over the bus's limit")]
    TooLarge(usize),
    /// Did not complete in time.
    #[error("bus timed out")]
    Timeout,
}

/// The node's stream of received messages, in delivery order.
#[derive(Debug)]
pub struct Inbox {
    receiver: mpsc::Receiver<BusMessage>,
}

impl Inbox {
    /// The next message; `None` once the bus is closed.
    pub async fn recv(&mut self) -> Option<BusMessage> {
        self.receiver.recv().await
    }

    /// A message if one is waiting.
    pub fn try_recv(&mut self) -> Option<BusMessage> {
        self.receiver.try_recv().ok()
    }
}

/// What a node's receive side counted of the order messages arrived in
/// ([`Bus::order_counts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OrderCounts {
    /// Messages delivered without a directory change published before them, once held
    /// as long as allowed (the change was lost or late).
    pub released_early: u64,
    /// Events that arrived after a later event of the same origin (on another
    /// subject), delivered as they came.
    pub reordered: u64,
}

/// A node's link to the broker ([`Bus::link`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Link {
    /// The link is lost now: nothing published meanwhile reaches this node, and the
    /// other nodes do not hear from it.
    pub cut_off: bool,
    /// How many times it was lost so far.
    pub losses: u64,
}

/// How many received messages may wait for the node's receiver before the bus itself
/// waits (and, for NATS, the broker's per-subscription buffer takes the rest).
pub const INBOX_CAPACITY: usize = 16 * 1024;

/// Carries messages between the nodes of a cluster.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// This node.
    fn node(&self) -> NodeId;

    /// Publishes one message to the other nodes. Messages of one node are received in
    /// the order their `publish` calls completed.
    ///
    /// # Errors
    /// When the broker is unreachable or refuses; the message was not sent.
    async fn publish(&self, message: Outgoing) -> Result<(), BusError>;

    /// Starts receiving what `interest` covers. Counted: as many
    /// [`Bus::unwatch`] calls stop it.
    ///
    /// # Errors
    /// When the broker cannot be told.
    async fn watch(&self, interest: Interest) -> Result<(), BusError>;

    /// Undoes one [`Bus::watch`].
    ///
    /// # Errors
    /// When the broker cannot be told.
    async fn unwatch(&self, interest: Interest) -> Result<(), BusError>;

    /// Returns once every watch started before the call is in effect: any message
    /// published anywhere after `sync` returns, for an audience watched by then,
    /// reaches this node.
    ///
    /// # Errors
    /// When the broker does not answer.
    async fn sync(&self) -> Result<(), BusError>;

    /// Stops receiving and publishing; the inbox ends.
    async fn close(&self);

    /// This node's link to the broker, as it changes. A bus without a broker (in
    /// process) never loses it: the receiver never changes.
    fn link(&self) -> watch::Receiver<Link> {
        watch::channel(Link::default()).1
    }

    /// What this node's receive side counted so far of the order messages came in.
    fn order_counts(&self) -> OrderCounts {
        OrderCounts::default()
    }
}

/// How long [`Bus::sync`] and a publish may take before they fail.
pub const BROKER_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a bus carries a message: to every node, or to the nodes watching one
/// interest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Route {
    All,
    To(Interest),
}

/// Up to this many users, an [`Audience::Users`] message goes to each user's route
/// (one copy each, narrowed to that user); beyond, to every node.
const USERS_SPLIT: usize = 4;

/// The copies of one message `origin` publishes, each with its route: stamped with
/// its sequence number and dependencies ([`Ordering`]), and its audience narrowed to
/// the route where the route is one user's.
pub(crate) fn copies(
    message: &Outgoing,
    origin: NodeId,
    (seq, deps): (u64, Vec<(NodeId, u64)>),
) -> Vec<(Route, BusMessage)> {
    routes(message)
        .into_iter()
        .map(|(route, audience)| {
            let copy = BusMessage {
                origin,
                kind: message.kind,
                seq,
                deps: deps.clone(),
                audience,
                event: message.event.clone(),
                body: message.body.clone(),
            };
            (route, copy)
        })
        .collect()
}

/// The routes of one message, each with the audience its copy carries.
fn routes(message: &Outgoing) -> Vec<(Route, Audience)> {
    let audience = &message.audience;
    if message.kind == Kind::Directory || message.wide {
        return vec![(Route::All, audience.clone())];
    }
    match audience {
        Audience::Everyone | Audience::CoMembers(_) => vec![(Route::All, audience.clone())],
        Audience::Server(server)
        | Audience::Channel { server, .. }
        | Audience::ServerPermission { server, .. } => {
            vec![(Route::To(Interest::Server(*server)), audience.clone())]
        }
        Audience::Users(users) if users.len() <= USERS_SPLIT => {
            let mut users = users.clone();
            users.sort_unstable();
            users.dedup();
            users
                .into_iter()
                .map(|user| (Route::To(Interest::User(user)), Audience::Users(vec![user])))
                .collect()
        }
        Audience::Users(_) => vec![(Route::All, audience.clone())],
        Audience::Node(node) => vec![(Route::To(Interest::Node(*node)), audience.clone())],
    }
}
