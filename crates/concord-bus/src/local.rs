//! Nodes in one process: the reference every bus is held to, and the multi-node
//! tests' bus. Messages go through the wire format as they would over a network.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::{
    Bus, BusError, BusMessage, INBOX_CAPACITY, Inbox, Interest, NodeId, OrderCounts, Outgoing,
    Route, copies,
    order::{self, Ordering},
    wire,
};

/// How long a local node holds a message for the changes before it.
const HOLD: Duration = Duration::from_secs(2);

/// A cluster of in-process nodes.
#[derive(Debug, Clone, Default)]
pub struct LocalCluster {
    members: Arc<Mutex<Vec<Member>>>,
}

#[derive(Debug)]
struct Member {
    node: NodeId,
    watching: HashMap<Interest, usize>,
    arrivals: mpsc::Sender<BusMessage>,
}

impl LocalCluster {
    /// An empty cluster.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a node: its bus handle and its inbox.
    pub fn join(&self) -> (LocalNode, Inbox) {
        let node = NodeId::new();
        let order = Ordering::new(node, HOLD);
        let (arrivals, arriving) = mpsc::channel(INBOX_CAPACITY);
        let (inbox, receiver) = mpsc::channel(INBOX_CAPACITY);
        tokio::spawn(order::run(Arc::clone(&order), arriving, inbox));
        self.lock().push(Member {
            node,
            watching: HashMap::new(),
            arrivals,
        });
        let handle = LocalNode {
            cluster: self.clone(),
            node,
            order,
            publishing: tokio::sync::Mutex::new(()),
        };
        (handle, Inbox { receiver })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Member>> {
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One node's handle on a [`LocalCluster`].
#[derive(Debug)]
pub struct LocalNode {
    cluster: LocalCluster,
    node: NodeId,
    order: Arc<Ordering>,
    publishing: tokio::sync::Mutex<()>,
}

impl LocalNode {
    /// The causal-order counters of this node.
    pub fn ordering(&self) -> &Ordering {
        &self.order
    }

    /// Changes what this node watches (`Closed` once it left the cluster).
    fn watching(&self, change: impl FnOnce(&mut HashMap<Interest, usize>)) -> Result<(), BusError> {
        let mut members = self.cluster.lock();
        let member = members
            .iter_mut()
            .find(|m| m.node == self.node)
            .ok_or(BusError::Closed)?;
        change(&mut member.watching);
        Ok(())
    }
}

#[async_trait]
impl Bus for LocalNode {
    fn node(&self) -> NodeId {
        self.node
    }

    async fn publish(&self, message: Outgoing) -> Result<(), BusError> {
        let _turn = self.publishing.lock().await;
        let stamp = self.order.stamp(message.kind);
        let mut sends = Vec::new();
        {
            let members = self.cluster.lock();
            if !members.iter().any(|m| m.node == self.node) {
                return Err(BusError::Closed);
            }
            for (route, copy) in copies(&message, self.node, stamp) {
                // Through the wire format, as a network bus would carry it.
                let copy = wire::decode(&wire::encode(&copy))
                    .map_err(|e| BusError::Unavailable(e.to_string()))?;
                for member in members.iter().filter(|m| m.node != self.node) {
                    let wanted = match route {
                        Route::All => true,
                        Route::To(interest) => member.watching.contains_key(&interest),
                    };
                    if wanted {
                        sends.push((member.arrivals.clone(), copy.clone()));
                    }
                }
            }
        }
        for (to, copy) in sends {
            // A node that left has dropped its receiver; nothing to deliver.
            let _ = to.send(copy).await;
        }
        Ok(())
    }

    async fn watch(&self, interest: Interest) -> Result<(), BusError> {
        self.watching(|watching| *watching.entry(interest).or_insert(0) += 1)
    }

    async fn unwatch(&self, interest: Interest) -> Result<(), BusError> {
        self.watching(|watching| {
            if let Some(count) = watching.get_mut(&interest) {
                *count -= 1;
                if *count == 0 {
                    watching.remove(&interest);
                }
            }
        })
    }

    async fn sync(&self) -> Result<(), BusError> {
        // Watching takes effect inside `watch`.
        Ok(())
    }

    async fn close(&self) {
        self.cluster.lock().retain(|m| m.node != self.node);
    }

    fn order_counts(&self) -> OrderCounts {
        self.order.counts()
    }
}
