//! Causal order of directory changes, shared by every bus.
//!
//! Each node counts the directory changes it has published, and the ones it has
//! received from each other node. A message carries its publisher's counts at the
//! moment of publishing; a receiver holds it back until it has received as many
//! changes from each of those nodes, so that an event never overtakes a membership or
//! permission change its publisher had seen (the event and the change travel on
//! different subjects, which a broker does not order against each other).
//!
//! A change lost by the broker must not stall a node forever: a message held longer
//! than [`Ordering::hold`] is delivered anyway, and counted.
//!
//! Every directory change travels on the route every node receives (`.all`), in order
//! per origin, and so does every message for every node (heartbeats, signals). So a
//! message from X that came that way, carrying X's own count c, tells the receiver it
//! has had all of X's changes up to c it will ever get: those it did not receive
//! predate its subscription, and its directory, loaded from the database after
//! subscribing, already holds them. That is how a node learns another's count, and
//! why such a message's dependency on its own origin counts as met even from a node
//! never heard from. A message on another route (a server's, a user's) from an origin
//! not heard from on the common route yet waits for it (each node says it lives on
//! it every heartbeat, and asks the others at start): its origin's change may still
//! be on its way. A dependency on a third node not heard from counts as met: that
//! node may be long gone, and its changes are then in the database.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering as Atomic},
    },
    time::Duration,
};

use tokio::{sync::mpsc, time::Instant};

use crate::{BusMessage, Kind, NodeId};

/// How long a node keeps counting an origin it has received no change from.
const FORGET: Duration = Duration::from_secs(600);

/// Counts of one node, shared by its publish side and its receive loop.
#[derive(Debug)]
pub struct Ordering {
    node: NodeId,
    hold: Duration,
    published: AtomicU64,
    /// Events this node published (each event's number, for receivers to notice one
    /// overtaken by a later one).
    events: AtomicU64,
    /// Per origin: changes received, and when the last one came.
    received: Mutex<HashMap<NodeId, (u64, Instant)>>,
    released_early: AtomicU64,
    reordered: AtomicU64,
}

impl Ordering {
    /// Counts for `node`, holding a message back at most `hold`.
    pub fn new(node: NodeId, hold: Duration) -> Arc<Self> {
        Arc::new(Self {
            node,
            hold,
            published: AtomicU64::new(0),
            events: AtomicU64::new(0),
            received: Mutex::default(),
            released_early: AtomicU64::new(0),
            reordered: AtomicU64::new(0),
        })
    }

    /// The longest a received message waits for the directory changes before it.
    pub fn hold(&self) -> Duration {
        self.hold
    }

    /// Messages delivered before the changes they depended on arrived (lost or late).
    pub fn released_early(&self) -> u64 {
        self.released_early.load(Atomic::Relaxed)
    }

    /// Events that arrived after a later event of the same origin. The broker keeps a
    /// publisher's order on each subject, but each subscription is read apart, so two
    /// events on different subjects (a server's and a user's, say) can swap on the
    /// way in; nothing holds them back, since no rule orders events among themselves.
    pub fn reordered(&self) -> u64 {
        self.reordered.load(Atomic::Relaxed)
    }

    /// What the receive side has counted so far.
    pub fn counts(&self) -> crate::OrderCounts {
        crate::OrderCounts {
            released_early: self.released_early(),
            reordered: self.reordered(),
        }
    }

    /// The sequence number and dependencies of a message this node publishes now.
    /// Call in publish order (the caller serializes its publishes).
    pub(crate) fn stamp(&self, kind: Kind) -> (u64, Vec<(NodeId, u64)>) {
        let own = match kind {
            Kind::Directory => self.published.fetch_add(1, Atomic::AcqRel) + 1,
            Kind::Event => self.published.load(Atomic::Acquire),
        };
        let mut received = self.received.lock().unwrap_or_else(|e| e.into_inner());
        // A node silent for long (stopped: node ids are fresh at each start) leaves
        // the stamps, so they do not grow with every restart in a cluster's life.
        received.retain(|_, (_, at)| at.elapsed() < FORGET);
        let mut deps = Vec::with_capacity(received.len() + 1);
        if own > 0 {
            deps.push((self.node, own));
        }
        deps.extend(received.iter().map(|(n, (c, _))| (*n, *c)));
        let seq = match kind {
            Kind::Directory => own,
            Kind::Event => self.events.fetch_add(1, Atomic::AcqRel) + 1,
        };
        (seq, deps)
    }

    fn met(&self, message: &BusMessage) -> bool {
        let received = self.received.lock().unwrap_or_else(|e| e.into_inner());
        let common = on_common_route(message);
        message.deps.iter().all(|(node, count)| {
            if *node == self.node {
                return true;
            }
            match received.get(node).map(|(count, _)| count) {
                // The message's own change is its dependency on its origin: the one
                // before it must have arrived.
                Some(have) if *node == message.origin && message.kind == Kind::Directory => {
                    *have + 1 >= *count
                }
                Some(have) => have >= count,
                // The first word from its origin on the common route: what came before
                // it that way predates this node (module docs).
                None if *node == message.origin => common,
                None => true,
            }
        })
    }

    fn delivered(&self, message: &BusMessage) {
        let count = if message.kind == Kind::Directory {
            message.seq
        } else if on_common_route(message) {
            // Everything the origin changed before this message came first.
            message
                .deps
                .iter()
                .find(|(node, _)| *node == message.origin)
                .map_or(0, |(_, count)| *count)
        } else {
            return;
        };
        let mut received = self.received.lock().unwrap_or_else(|e| e.into_inner());
        let (have, at) = received
            .entry(message.origin)
            .or_insert((0, Instant::now()));
        *have = (*have).max(count);
        *at = Instant::now();
    }
}

/// Whether `message` came on the route every node receives, in order with its
/// origin's directory changes.
fn on_common_route(message: &BusMessage) -> bool {
    message.kind == Kind::Directory || message.audience == crate::Audience::Everyone
}

/// Runs a node's receive side: takes messages as they arrive, holds each until its
/// dependencies are met (or [`Ordering::hold`] passed), and hands them to the inbox in
/// that order. Ends when `arrivals` closes or the inbox is dropped.
pub(crate) async fn run(
    order: Arc<Ordering>,
    mut arrivals: mpsc::Receiver<BusMessage>,
    inbox: mpsc::Sender<BusMessage>,
) {
    let mut held: VecDeque<(Instant, BusMessage)> = VecDeque::new();
    let mut latest = LatestEvents::default();
    loop {
        let deadline = held.front().map(|(at, _)| *at + order.hold);
        let arrival = tokio::select! {
            arrival = arrivals.recv() => match arrival {
                Some(message) => Some(message),
                None => break,
            },
            () = sleep_until(deadline) => None,
        };
        if let Some(message) = &arrival
            && latest.overtaken(message)
        {
            order.reordered.fetch_add(1, Atomic::Relaxed);
        }
        let mut ready = Vec::new();
        match arrival {
            Some(message) if held.is_empty() && order.met(&message) => ready.push(message),
            Some(message) => held.push_back((Instant::now(), message)),
            None => {
                // The oldest held message waited its time: out it goes, as if met.
                if let Some((_, message)) = held.pop_front() {
                    order.released_early.fetch_add(1, Atomic::Relaxed);
                    tracing::warn!(
                        origin = %message.origin,
                        event = %message.event,
                        "bus message delivered without the directory changes before it"
                    );
                    order.delivered(&message);
                    ready.push(message);
                }
            }
        }
        for message in &ready {
            order.delivered(message);
        }
        // Each delivery may meet what is held: scan until nothing more moves.
        while let Some(at) = held.iter().position(|(_, m)| order.met(m)) {
            let Some((_, message)) = held.remove(at) else {
                break;
            };
            order.delivered(&message);
            ready.push(message);
        }
        for message in ready {
            if inbox.send(message).await.is_err() {
                return;
            }
        }
    }
    // Arrivals ended: what is held goes out as it is.
    for (_, message) in held {
        if inbox.send(message).await.is_err() {
            return;
        }
    }
}

/// The latest event number received from each origin.
#[derive(Default)]
struct LatestEvents {
    by_origin: HashMap<NodeId, (u64, Instant)>,
    last_pruned: Option<Instant>,
}

impl LatestEvents {
    /// Whether `message` is an event that a later one of its origin arrived before.
    /// A node receives only the events of the subjects it watches, so gaps are
    /// normal; only a step back counts.
    fn overtaken(&mut self, message: &BusMessage) -> bool {
        if message.kind != Kind::Event || message.seq == 0 {
            // A change, or an event of a node that does not number them.
            return false;
        }
        let now = Instant::now();
        if self
            .last_pruned
            .is_none_or(|at| now.duration_since(at) > FORGET)
        {
            self.by_origin
                .retain(|_, (_, at)| now.duration_since(*at) < FORGET);
            self.last_pruned = Some(now);
        }
        let (latest, at) = self.by_origin.entry(message.origin).or_insert((0, now));
        *at = now;
        if message.seq < *latest {
            return true;
        }
        *latest = message.seq;
        false
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::Audience;

    fn message(origin: NodeId, kind: Kind, seq: u64, deps: Vec<(NodeId, u64)>) -> BusMessage {
        BusMessage {
            origin,
            kind,
            seq,
            deps,
            audience: Audience::Everyone,
            event: format!("{kind:?}-{seq}"),
            body: Bytes::new(),
        }
    }

    /// Lets the ordering task take what was sent, then moves virtual time by `d`
    /// and lets it act on that.
    async fn pass(d: Duration) {
        for _ in 0..8 {
            tokio::task::yield_now().await;
        }
        tokio::time::advance(d).await;
        for _ in 0..8 {
            tokio::task::yield_now().await;
        }
    }

    async fn arrive(arrivals: &mpsc::Sender<BusMessage>, message: BusMessage) {
        arrivals.send(message).await.unwrap();
    }

    fn start() -> (
        Arc<Ordering>,
        mpsc::Sender<BusMessage>,
        mpsc::Receiver<BusMessage>,
    ) {
        let order = Ordering::new(NodeId::new(), Duration::from_secs(2));
        let (arrivals, arriving) = mpsc::channel(16);
        let (inbox, receiver) = mpsc::channel(16);
        tokio::spawn(run(Arc::clone(&order), arriving, inbox));
        (order, arrivals, receiver)
    }

    #[tokio::test(start_paused = true)]
    async fn an_event_that_overtook_its_change_waits_for_it() {
        let (order, arrivals, mut inbox) = start();
        let (a, b) = (NodeId::new(), NodeId::new());
        // a's first change, seen by this node: a is known from now on.
        arrive(&arrivals, message(a, Kind::Directory, 1, vec![(a, 1)])).await;
        assert_eq!(inbox.recv().await.unwrap().seq, 1);
        // b saw a's second change and published; its event arrives first.
        arrive(&arrivals, message(b, Kind::Event, 0, vec![(a, 2)])).await;
        pass(Duration::from_millis(500)).await;
        assert!(inbox.try_recv().is_err(), "held");
        arrive(&arrivals, message(a, Kind::Directory, 2, vec![(a, 2)])).await;
        assert_eq!(inbox.recv().await.unwrap().kind, Kind::Directory);
        assert_eq!(inbox.recv().await.unwrap().kind, Kind::Event);
        assert_eq!(order.released_early(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_change_holds_what_follows_only_for_the_hold() {
        let (order, arrivals, mut inbox) = start();
        let a = NodeId::new();
        arrive(&arrivals, message(a, Kind::Directory, 1, vec![(a, 1)])).await;
        assert_eq!(inbox.recv().await.unwrap().seq, 1);
        // Change 2 is lost; change 3 and an event after it wait, then go, in order.
        arrive(&arrivals, message(a, Kind::Directory, 3, vec![(a, 3)])).await;
        arrive(&arrivals, message(a, Kind::Event, 0, vec![(a, 3)])).await;
        pass(Duration::from_millis(1900)).await;
        assert!(inbox.try_recv().is_err(), "held within the hold");
        pass(Duration::from_millis(200)).await;
        assert_eq!(inbox.try_recv().unwrap().seq, 3, "out once the hold passed");
        assert_eq!(inbox.recv().await.unwrap().kind, Kind::Event);
        assert_eq!(order.released_early(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn dependencies_on_unheard_third_nodes_and_on_itself_count_as_met() {
        let (order, arrivals, mut inbox) = start();
        let (stranger, b) = (NodeId::new(), NodeId::new());
        let own = order.node;
        arrive(
            &arrivals,
            message(b, Kind::Event, 0, vec![(stranger, 40), (own, 7)]),
        )
        .await;
        assert_eq!(inbox.recv().await.unwrap().origin, b);
    }

    #[tokio::test(start_paused = true)]
    async fn an_origin_is_known_from_its_first_word_on_the_common_route() {
        let (order, arrivals, mut inbox) = start();
        let a = NodeId::new();
        // a made 4 changes before this node subscribed (its directory has them), then
        // a 5th, on its way; an event that depends on it comes first on a server's
        // route: held, since a has not been heard on the common route yet.
        let mut event = message(a, Kind::Event, 0, vec![(a, 5)]);
        event.audience = Audience::Server(concord_protocol::ServerId::new());
        arrive(&arrivals, event).await;
        pass(Duration::from_millis(500)).await;
        assert!(inbox.try_recv().is_err(), "held");
        // The 5th change arrives: the first word from a on the common route. Both go,
        // in order.
        arrive(&arrivals, message(a, Kind::Directory, 5, vec![(a, 5)])).await;
        assert_eq!(inbox.recv().await.unwrap().kind, Kind::Directory);
        assert_eq!(inbox.recv().await.unwrap().kind, Kind::Event);

        // A heartbeat on the common route tells b's count: b's event after it goes at
        // once.
        let b = NodeId::new();
        arrive(&arrivals, message(b, Kind::Event, 0, vec![(b, 9)])).await;
        assert_eq!(inbox.recv().await.unwrap().origin, b);
        let mut event = message(b, Kind::Event, 0, vec![(b, 9)]);
        event.audience = Audience::Users(vec![concord_protocol::UserId::new()]);
        arrive(&arrivals, event).await;
        assert!(matches!(
            inbox.recv().await.unwrap().audience,
            Audience::Users(_)
        ));
        assert_eq!(order.released_early(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_origin_silent_for_long_leaves_the_stamps() {
        let order = Ordering::new(NodeId::new(), Duration::from_secs(1));
        let (old, recent) = (NodeId::new(), NodeId::new());
        order.delivered(&message(old, Kind::Directory, 3, vec![]));
        tokio::time::advance(FORGET - Duration::from_secs(1)).await;
        order.delivered(&message(recent, Kind::Directory, 1, vec![]));
        assert_eq!(order.stamp(Kind::Event).1.len(), 2);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(order.stamp(Kind::Event).1, vec![(recent, 1)]);
    }

    #[test]
    fn stamps_count_own_changes_and_events_apart_and_carry_what_was_received() {
        let order = Ordering::new(NodeId::new(), Duration::from_secs(1));
        assert_eq!(order.stamp(Kind::Event), (1, vec![]), "the first event");
        assert_eq!(order.stamp(Kind::Directory), (1, vec![(order.node, 1)]));
        let other = NodeId::new();
        order.delivered(&message(other, Kind::Directory, 5, vec![]));
        let (seq, mut deps) = order.stamp(Kind::Event);
        deps.sort();
        let mut want = vec![(order.node, 1), (other, 5)];
        want.sort();
        assert_eq!((seq, deps), (2, want), "the second event");
    }

    #[tokio::test(start_paused = true)]
    async fn an_event_overtaken_by_a_later_one_of_its_origin_is_counted_and_delivered() {
        let (order, arrivals, mut inbox) = start();
        let (a, b) = (NodeId::new(), NodeId::new());
        let event = |origin, seq| {
            let mut m = message(origin, Kind::Event, seq, vec![]);
            m.audience = Audience::Server(concord_protocol::ServerId::new());
            m
        };
        // a's events 1, 4 and 7 (the others went to subjects this node does not
        // watch: gaps are normal); then 6, which 7 overtook; b's own numbering apart;
        // a node that does not number its events (0) is not counted.
        for (origin, seq) in [(a, 1), (a, 4), (b, 2), (a, 7), (a, 6), (b, 3), (b, 0)] {
            arrive(&arrivals, event(origin, seq)).await;
            assert_eq!(inbox.recv().await.unwrap().seq, seq, "delivered as it came");
        }
        assert_eq!(order.reordered(), 1);
        assert_eq!(
            order.counts(),
            crate::OrderCounts {
                released_early: 0,
                reordered: 1
            }
        );
    }
}
