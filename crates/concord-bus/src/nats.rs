//! The bus over NATS core.
//!
//! Subjects, under a prefix shared by the cluster (`concord` by default):
//! `<prefix>.all` carries directory changes and messages for every node;
//! `<prefix>.s.<server>` the events of one server; `<prefix>.u.<user>` the events of
//! one user. A node subscribes to `.all` for its life and to a server's or user's
//! subject while it watches it, so it receives only what its sessions need. Each
//! message is decoded once per node, whatever the number of its recipients there.
//!
//! NATS core delivers at most once: a message published while a node is cut off from
//! the broker is lost for that node (its clients see the gap as on any reconnect).
//! The broker itself is never the store of record; the database is.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering as Atomic},
    },
    time::Duration,
};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};

use crate::{
    BROKER_TIMEOUT, Bus, BusError, BusMessage, INBOX_CAPACITY, Inbox, Interest, Link, NodeId,
    OrderCounts, Outgoing, Route, copies,
    order::{self, Ordering},
    wire,
};

/// The longest wait between two tries to reach NATS again.
const RECONNECT_MAX: Duration = Duration::from_secs(1);

/// How to reach NATS.
#[derive(Debug, Clone)]
pub struct NatsOptions {
    /// `nats://host:port`.
    pub url: String,
    /// The cluster's subject prefix: letters, digits, `-` and `_`, dot-separated.
    pub prefix: String,
    /// How long a received message waits for directory changes before it.
    pub hold: Duration,
    /// The connection's name as the broker shows it.
    pub name: String,
    /// How often the client pings the broker when nothing else came from it: a link
    /// that fell silent (no close, no reset) is taken for lost after three unanswered.
    pub ping: Duration,
}

impl NatsOptions {
    /// Defaults for `url`: prefix `concord`, hold 2 s, ping every 2 s.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "concord".into(),
            hold: Duration::from_secs(2),
            name: "concord".into(),
            ping: Duration::from_secs(2),
        }
    }
}

/// One node's connection to the NATS bus.
#[derive(Debug)]
pub struct NatsBus {
    node: NodeId,
    client: async_nats::Client,
    prefix: String,
    order: Arc<Ordering>,
    arrivals: mpsc::Sender<BusMessage>,
    publishing: tokio::sync::Mutex<()>,
    watching: tokio::sync::Mutex<HashMap<Interest, Watch>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    closed: AtomicBool,
    /// The connection to NATS as its events tell it.
    link: watch::Receiver<Link>,
}

#[derive(Debug)]
struct Watch {
    count: usize,
    forwarder: JoinHandle<()>,
}

/// Whether `prefix` can start NATS subjects: letters, digits, `-` and `_`, in
/// dot-separated non-empty parts.
pub fn valid_prefix(prefix: &str) -> bool {
    !prefix.is_empty()
        && prefix.split('.').all(|token| {
            !token.is_empty()
                && token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

impl NatsBus {
    /// Connects, subscribes to the cluster-wide subject and returns the node's handle
    /// and inbox.
    ///
    /// # Errors
    /// When the prefix is not a valid subject prefix or the broker cannot be reached.
    pub async fn connect(options: NatsOptions) -> Result<(Self, Inbox), BusError> {
        if !valid_prefix(&options.prefix) {
            return Err(BusError::Unavailable(format!(
                "invalid subject prefix {:?}",
                options.prefix
            )));
        }
        let (link_tx, link) = watch::channel(Link::default());
        let link_tx = Arc::new(link_tx);
        let client = async_nats::ConnectOptions::new()
            .name(options.name.clone())
            .ping_interval(options.ping)
            // A node cut off misses everything published meanwhile and starts over once
            // back: it tries again at least every second (the client's default backs
            // off to 4 s).
            .reconnect_delay_callback(|attempts| {
                let exponent = u32::try_from(attempts).unwrap_or(u32::MAX);
                Duration::from_millis(2_u64.saturating_pow(exponent)).min(RECONNECT_MAX)
            })
            .event_callback(move |event| {
                let link = Arc::clone(&link_tx);
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            link.send_if_modified(|l| std::mem::replace(&mut l.cut_off, false));
                            tracing::info!("bus: connected to NATS");
                        }
                        async_nats::Event::Disconnected => {
                            link.send_modify(|l| {
                                l.cut_off = true;
                                l.losses += 1;
                            });
                            tracing::warn!("bus: disconnected from NATS; reconnecting");
                        }
                        other => tracing::warn!(event = %other, "bus: NATS"),
                    }
                }
            })
            .connect(options.url.as_str())
            .await
            .map_err(|e| BusError::Unavailable(e.to_string()))?;
        let node = NodeId::new();
        let order = Ordering::new(node, options.hold);
        let (arrivals, arriving) = mpsc::channel(INBOX_CAPACITY);
        let (inbox, receiver) = mpsc::channel(INBOX_CAPACITY);
        let ordering = tokio::spawn(order::run(Arc::clone(&order), arriving, inbox));
        let bus = Self {
            node,
            client,
            prefix: options.prefix,
            order,
            arrivals,
            publishing: tokio::sync::Mutex::new(()),
            watching: tokio::sync::Mutex::default(),
            tasks: Mutex::new(vec![ordering]),
            closed: AtomicBool::new(false),
            link,
        };
        let all = bus.subscribe(Route::All).await?;
        bus.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(all);
        bus.sync().await?;
        Ok((bus, Inbox { receiver }))
    }

    /// The causal-order counters of this node.
    pub fn ordering(&self) -> &Ordering {
        &self.order
    }

    fn subject(&self, route: Route) -> String {
        match route {
            Route::All => format!("{}.all", self.prefix),
            Route::To(Interest::Server(server)) => {
                format!("{}.s.{}", self.prefix, server.get().simple())
            }
            Route::To(Interest::User(user)) => {
                format!("{}.u.{}", self.prefix, user.get().simple())
            }
            Route::To(Interest::Node(node)) => format!("{}.n.{}", self.prefix, node.0.simple()),
        }
    }

    /// Subscribes to `route` and forwards what arrives, decoded once, to the
    /// ordering task. The subscription is sent to the broker before this returns.
    async fn subscribe(&self, route: Route) -> Result<JoinHandle<()>, BusError> {
        let mut subscriber = self
            .client
            .subscribe(self.subject(route))
            .await
            .map_err(|e| BusError::Unavailable(e.to_string()))?;
        let (node, arrivals) = (self.node, self.arrivals.clone());
        Ok(tokio::spawn(async move {
            while let Some(message) = subscriber.next().await {
                match wire::decode(&message.payload) {
                    Ok(message) if message.origin == node => {}
                    Ok(message) => {
                        if arrivals.send(message).await.is_err() {
                            return;
                        }
                    }
                    Err(err) => {
                        tracing::warn!(subject = %message.subject, error = %err, "bus: unreadable message dropped");
                    }
                }
            }
        }))
    }
}

#[async_trait]
impl Bus for NatsBus {
    fn node(&self) -> NodeId {
        self.node
    }

    async fn publish(&self, message: Outgoing) -> Result<(), BusError> {
        if self.closed.load(Atomic::Acquire) {
            return Err(BusError::Closed);
        }
        let max = self.client.server_info().max_payload;
        let _turn = self.publishing.lock().await;
        let stamp = self.order.stamp(message.kind);
        for (route, copy) in copies(&message, self.node, stamp) {
            let bytes = wire::encode(&copy);
            if max > 0 && bytes.len() > max {
                return Err(BusError::TooLarge(bytes.len()));
            }
            tokio::time::timeout(
                BROKER_TIMEOUT,
                self.client.publish(self.subject(route), bytes),
            )
            .await
            .map_err(|_| BusError::Timeout)?
            .map_err(|e| BusError::Unavailable(e.to_string()))?;
        }
        Ok(())
    }

    async fn watch(&self, interest: Interest) -> Result<(), BusError> {
        if self.closed.load(Atomic::Acquire) {
            return Err(BusError::Closed);
        }
        let mut watching = self.watching.lock().await;
        if let Some(watch) = watching.get_mut(&interest) {
            watch.count += 1;
            return Ok(());
        }
        let forwarder = self.subscribe(Route::To(interest)).await?;
        watching.insert(
            interest,
            Watch {
                count: 1,
                forwarder,
            },
        );
        Ok(())
    }

    async fn unwatch(&self, interest: Interest) -> Result<(), BusError> {
        let mut watching = self.watching.lock().await;
        if let Some(watch) = watching.get_mut(&interest) {
            watch.count -= 1;
            if watch.count == 0 {
                // Dropping the subscriber (with its task) unsubscribes.
                if let Some(watch) = watching.remove(&interest) {
                    watch.forwarder.abort();
                }
            }
        }
        Ok(())
    }

    async fn sync(&self) -> Result<(), BusError> {
        // `flush` only writes the buffer out; a round trip through the broker proves
        // it has processed every subscription sent before.
        let inbox = self.client.new_inbox();
        let mut echo = self
            .client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| BusError::Unavailable(e.to_string()))?;
        self.client
            .publish(inbox, Bytes::new())
            .await
            .map_err(|e| BusError::Unavailable(e.to_string()))?;
        match tokio::time::timeout(BROKER_TIMEOUT, echo.next()).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(BusError::Closed),
            Err(_) => Err(BusError::Timeout),
        }
    }

    async fn close(&self) {
        self.closed.store(true, Atomic::Release);
        for (_, watch) in self.watching.lock().await.drain() {
            watch.forwarder.abort();
        }
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
        let _ = self.client.flush().await;
    }

    fn link(&self) -> watch::Receiver<Link> {
        self.link.clone()
    }

    fn order_counts(&self) -> OrderCounts {
        self.order.counts()
    }
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;

    use super::{NatsBus, NatsOptions, valid_prefix};
    use crate::{Inbox, conformance::Cluster};

    /// A cluster of its own on the test NATS (`CONCORD_TEST_NATS_URL`, default
    /// `nats://127.0.0.1:4222`): a fresh subject prefix per case.
    struct NatsCluster {
        prefix: String,
    }

    impl NatsCluster {
        fn new() -> Self {
            Self {
                prefix: format!("concord-test.{}", uuid::Uuid::new_v4().simple()),
            }
        }
    }

    #[async_trait]
    impl Cluster for NatsCluster {
        type Node = NatsBus;
        async fn join(&self) -> (NatsBus, Inbox) {
            let url = std::env::var("CONCORD_TEST_NATS_URL")
                .unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
            let mut options = NatsOptions::new(url);
            options.prefix.clone_from(&self.prefix);
            NatsBus::connect(options)
                .await
                .expect("NATS at CONCORD_TEST_NATS_URL (default 127.0.0.1:4222)")
        }
    }

    mod conformance {
        crate::bus_conformance_tests!(super::NatsCluster::new());
    }

    #[test]
    fn prefixes_are_subject_tokens_only() {
        for good in ["concord", "concord.prod", "a-b_c.d1"] {
            assert!(valid_prefix(good), "{good}");
        }
        for bad in ["", ".", "a..b", "a.*", "a.>", "a b", "a.", "ü"] {
            assert!(!valid_prefix(bad), "{bad}");
        }
    }
}
