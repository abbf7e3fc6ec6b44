//! The suite every bus passes. A bus's tests name a [`Cluster`] and expand
//! [`bus_conformance_tests!`](crate::bus_conformance_tests) over it; each case makes its
//! own cluster (for NATS: its own subject prefix), so runs never see each other.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use concord_protocol::{ServerId, UserId};

use crate::{Audience, Bus, BusError, BusMessage, Inbox, Interest, Kind, Outgoing};

/// Makes the nodes of one fresh cluster.
#[async_trait]
pub trait Cluster: Send + Sync {
    /// A node's bus handle.
    type Node: Bus;
    /// Adds a node to the cluster.
    async fn join(&self) -> (Self::Node, Inbox);
}

#[async_trait]
impl Cluster for crate::LocalCluster {
    type Node = crate::LocalNode;
    async fn join(&self) -> (Self::Node, Inbox) {
        crate::LocalCluster::join(self)
    }
}

/// How long a case waits for a message it expects (the broker is on loopback).
const EXPECT: Duration = Duration::from_secs(10);
async fn next(inbox: &mut Inbox) -> BusMessage {
    tokio::time::timeout(EXPECT, inbox.recv())
        .await
        .expect("a message within the wait")
        .expect("the inbox is open")
}

/// Before a case checks that `node` got nothing more: a round trip through the
/// broker (whatever it sent the node before is in the node's socket), then turns for
/// the node's tasks to carry it to the inbox. No wall-clock wait.
async fn settle(node: &impl Bus) {
    node.sync().await.expect("sync");
    for _ in 0..32 {
        tokio::task::yield_now().await;
    }
}

/// The next `n` messages (which must be all there is), sorted by event name.
async fn take(node: &impl Bus, inbox: &mut Inbox, n: usize) -> Vec<BusMessage> {
    let mut got = Vec::with_capacity(n);
    for _ in 0..n {
        got.push(next(inbox).await);
    }
    settle(node).await;
    assert_eq!(inbox.try_recv(), None);
    got.sort_by(|x, y| x.event.cmp(&y.event));
    got
}

fn names(messages: &[BusMessage]) -> Vec<&str> {
    messages.iter().map(|m| m.event.as_str()).collect()
}

/// Waits for `marker`, failing on anything else before it, then checks nothing
/// follows.
async fn only(node: &impl Bus, inbox: &mut Inbox, marker: &str) {
    let got = next(inbox).await;
    assert_eq!(got.event, marker, "got {got:?} before the marker");
    settle(node).await;
    assert_eq!(inbox.try_recv(), None);
}

fn event(audience: Audience, name: &str) -> Outgoing {
    Outgoing::event(
        audience,
        name,
        Bytes::from(format!("{{\"name\":\"{name}\"}}")),
    )
}

/// A server's events reach the nodes watching it, with origin, name, audience and
/// body intact, and not the others; the publisher never gets its own message.
pub async fn events_reach_the_watching_nodes_only<C: Cluster>(cluster: C) {
    let (a, mut a_in) = cluster.join().await;
    let (b, mut b_in) = cluster.join().await;
    let (c, mut c_in) = cluster.join().await;
    let server = ServerId::new();
    b.watch(Interest::Server(server)).await.unwrap();
    b.sync().await.unwrap();
    a.publish(event(Audience::Server(server), "MESSAGE_CREATE"))
        .await
        .unwrap();
    a.publish(Outgoing::directory("marker", Bytes::new()))
        .await
        .unwrap();
    // Different routes: no order between the two.
    let got = take(&b, &mut b_in, 2).await;
    assert_eq!(names(&got), ["MESSAGE_CREATE", "marker"]);
    let got = &got[0];
    assert_eq!(got.origin, a.node());
    assert_eq!(got.kind, Kind::Event);
    assert_eq!(got.audience, Audience::Server(server));
    assert_eq!(&got.body[..], b"{\"name\":\"MESSAGE_CREATE\"}");
    only(&c, &mut c_in, "marker").await;
    settle(&a).await;
    assert_eq!(a_in.try_recv(), None, "no echo to the publisher");
}

/// Directory changes reach every node whatever it watches, numbered per origin.
pub async fn directory_changes_reach_every_node<C: Cluster>(cluster: C) {
    let (a, _a_in) = cluster.join().await;
    let (_b, mut b_in) = cluster.join().await;
    let (_c, mut c_in) = cluster.join().await;
    for n in 1..=3 {
        a.publish(Outgoing::directory(format!("change-{n}"), Bytes::new()))
            .await
            .unwrap();
    }
    for inbox in [&mut b_in, &mut c_in] {
        for n in 1..=3u64 {
            let got = next(inbox).await;
            assert_eq!((got.kind, got.seq), (Kind::Directory, n));
            assert_eq!(got.event, format!("change-{n}"));
            assert_eq!(got.audience, Audience::Everyone);
        }
    }
}

/// One node's messages to one audience arrive in the order it published them.
pub async fn one_publishers_messages_keep_their_order<C: Cluster>(cluster: C) {
    let (a, _a_in) = cluster.join().await;
    let (b, mut b_in) = cluster.join().await;
    let server = ServerId::new();
    b.watch(Interest::Server(server)).await.unwrap();
    b.sync().await.unwrap();
    for n in 0..500 {
        a.publish(event(Audience::Server(server), &n.to_string()))
            .await
            .unwrap();
    }
    for n in 0..500 {
        assert_eq!(next(&mut b_in).await.event, n.to_string());
    }
}

/// An event published after its publisher received a directory change reaches a
/// third node after that change, every time.
pub async fn an_event_never_overtakes_a_change_its_publisher_had_seen<C: Cluster>(cluster: C) {
    let (a, _a_in) = cluster.join().await;
    let (b, mut b_in) = cluster.join().await;
    let (c, mut c_in) = cluster.join().await;
    let server = ServerId::new();
    c.watch(Interest::Server(server)).await.unwrap();
    c.sync().await.unwrap();
    for round in 0..50 {
        let name = format!("join-{round}");
        a.publish(Outgoing::directory(name.clone(), Bytes::new()))
            .await
            .unwrap();
        // b acts on the change as soon as it has it.
        assert_eq!(next(&mut b_in).await.event, name);
        b.publish(event(Audience::Server(server), &format!("after-{round}")))
            .await
            .unwrap();
        assert_eq!(next(&mut c_in).await.event, name);
        assert_eq!(next(&mut c_in).await.event, format!("after-{round}"));
    }
}

/// Watches are counted; once the last is undone, the node gets nothing more.
pub async fn watches_are_counted_and_undone<C: Cluster>(cluster: C) {
    let (a, _a_in) = cluster.join().await;
    let (b, mut b_in) = cluster.join().await;
    let user = UserId::new();
    b.watch(Interest::User(user)).await.unwrap();
    b.watch(Interest::User(user)).await.unwrap();
    b.unwatch(Interest::User(user)).await.unwrap();
    b.sync().await.unwrap();
    a.publish(event(Audience::Users(vec![user]), "still"))
        .await
        .unwrap();
    assert_eq!(next(&mut b_in).await.event, "still");
    b.unwatch(Interest::User(user)).await.unwrap();
    b.sync().await.unwrap();
    a.publish(event(Audience::Users(vec![user]), "gone"))
        .await
        .unwrap();
    a.publish(Outgoing::directory("marker", Bytes::new()))
        .await
        .unwrap();
    only(&b, &mut b_in, "marker").await;
}

/// A message for a few users reaches each of their nodes narrowed to the users that
/// node watches; one for many users reaches every node with the whole list.
pub async fn user_audiences_reach_the_users_nodes<C: Cluster>(cluster: C) {
    let (a, _a_in) = cluster.join().await;
    let (b, mut b_in) = cluster.join().await;
    let (c, mut c_in) = cluster.join().await;
    let (u, v, w) = (UserId::new(), UserId::new(), UserId::new());
    b.watch(Interest::User(u)).await.unwrap();
    b.watch(Interest::User(v)).await.unwrap();
    c.watch(Interest::User(w)).await.unwrap();
    b.sync().await.unwrap();
    c.sync().await.unwrap();
    a.publish(event(Audience::Users(vec![u, v, u]), "dm"))
        .await
        .unwrap();
    a.publish(Outgoing::directory("marker", Bytes::new()))
        .await
        .unwrap();
    let got = take(&b, &mut b_in, 3).await;
    assert_eq!(names(&got), ["dm", "dm", "marker"]);
    let mut got: Vec<String> = got[..2]
        .iter()
        .map(|m| format!("{:?}", m.audience))
        .collect();
    got.sort();
    let mut want = vec![
        format!("{:?}", Audience::Users(vec![u])),
        format!("{:?}", Audience::Users(vec![v])),
    ];
    want.sort();
    assert_eq!(got, want);
    only(&c, &mut c_in, "marker").await;
    let many: Vec<UserId> = (0..10).map(|_| UserId::new()).chain([w]).collect();
    a.publish(event(Audience::Users(many.clone()), "many"))
        .await
        .unwrap();
    for inbox in [&mut b_in, &mut c_in] {
        let got = next(inbox).await;
        assert_eq!(got.audience, Audience::Users(many.clone()));
    }
}

/// A server's event sent to every node reaches a node that does not watch the
/// server, after the directory change its publisher had seen.
pub async fn a_wide_event_reaches_every_node_in_causal_order<C: Cluster>(cluster: C) {
    let (a, _a_in) = cluster.join().await;
    let (b, mut b_in) = cluster.join().await;
    let (_c, mut c_in) = cluster.join().await;
    let server = ServerId::new();
    a.publish(Outgoing::directory("joined", Bytes::new()))
        .await
        .unwrap();
    assert_eq!(next(&mut b_in).await.event, "joined");
    b.publish(event(Audience::Server(server), "MESSAGE_CREATE").to_every_node())
        .await
        .unwrap();
    assert_eq!(next(&mut c_in).await.event, "joined");
    let got = next(&mut c_in).await;
    assert_eq!(
        (got.event.as_str(), got.audience),
        ("MESSAGE_CREATE", Audience::Server(server))
    );
}

/// A closed node refuses to publish and its inbox ends.
pub async fn a_closed_node_refuses_and_its_inbox_ends<C: Cluster>(cluster: C) {
    let (a, mut a_in) = cluster.join().await;
    a.close().await;
    assert!(matches!(
        a.publish(Outgoing::directory("late", Bytes::new())).await,
        Err(BusError::Closed)
    ));
    assert_eq!(
        tokio::time::timeout(EXPECT, a_in.recv())
            .await
            .expect("ends"),
        None
    );
}

/// A message to one node reaches that node alone, once it watches its own route, in
/// order with the rest of its publisher's messages on that route.
pub async fn a_node_message_reaches_that_node_only<C: Cluster>(cluster: C) {
    let (a, _a_in) = cluster.join().await;
    let (b, mut b_in) = cluster.join().await;
    let (c, mut c_in) = cluster.join().await;
    b.watch(Interest::Node(b.node())).await.unwrap();
    c.watch(Interest::Node(c.node())).await.unwrap();
    b.sync().await.unwrap();
    c.sync().await.unwrap();
    for n in 0..5 {
        a.publish(event(Audience::Node(b.node()), &format!("to-b-{n}")))
            .await
            .unwrap();
    }
    for n in 0..5 {
        let got = next(&mut b_in).await;
        assert_eq!(got.event, format!("to-b-{n}"));
        assert_eq!(got.audience, Audience::Node(b.node()));
        assert_eq!(got.origin, a.node());
    }
    a.publish(Outgoing::directory("marker", Bytes::new()))
        .await
        .unwrap();
    only(&c, &mut c_in, "marker").await;
    only(&b, &mut b_in, "marker").await;
}

/// Expands the suite into `#[tokio::test]`s, each calling `$cluster` for a fresh
/// cluster.
#[macro_export]
macro_rules! bus_conformance_tests {
    ($cluster:expr) => {
        $crate::bus_conformance_tests!(@cases $cluster;
            events_reach_the_watching_nodes_only,
            directory_changes_reach_every_node,
            one_publishers_messages_keep_their_order,
            an_event_never_overtakes_a_change_its_publisher_had_seen,
            watches_are_counted_and_undone,
            user_audiences_reach_the_users_nodes,
            a_wide_event_reaches_every_node_in_causal_order,
            a_closed_node_refuses_and_its_inbox_ends,
            a_node_message_reaches_that_node_only,
        );
    };
    (@cases $cluster:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                $crate::conformance::$case($cluster).await;
            }
        )*
    };
}

#[cfg(test)]
mod local {
    crate::bus_conformance_tests!(crate::LocalCluster::new());
}
