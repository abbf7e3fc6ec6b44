//! The bus: how events and directory changes reach every node's Hub.
//!
//! A domain service commits to the store, then publishes. Each node receives every
//! message in publish order, applies directory changes to its in-memory directory and
//! resolves dispatch audiences against it, then queues the payload on its local
//! sessions. [`LocalBus`] is the single-node bus (delivery happens inside `publish`);
//! a networked bus (NATS) implements the same trait.

use std::sync::Arc;

use concord_gateway::{Hub, Payload};
use concord_protocol::{ChannelId, Dispatch, Event, ServerId, UserId};
use serde::Serialize;

use crate::{
    directory::{Directory, DirectoryChange},
    perms::Permissions,
};

/// Who an event is for. Resolved on each node from its directory, at delivery time.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Audience {
    /// Every member of a server.
    Server(ServerId),
    /// Members of the channel's server who may VIEW it.
    Channel(ChannelId),
    /// Members of a server holding a server-level permission.
    ServerPermission(ServerId, Permissions),
    /// Exactly these users (all their sessions).
    Users(Vec<UserId>),
    /// Everyone sharing a server with the user, excluding the user.
    CoMembers(UserId),
}

/// One message on the bus.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum BusMessage {
    /// Update every node's directory.
    Directory(DirectoryChange),
    /// Deliver a serialized frame to an audience.
    Dispatch {
        /// Recipients.
        audience: Audience,
        /// The frame, serialized once.
        payload: Payload,
    },
    /// Close every session of a user whose credentials were revoked or disabled.
    CloseSessions {
        /// The user.
        user: UserId,
    },
}

/// Carries [`BusMessage`]s to every node, in order.
pub trait Bus: Send + Sync + 'static {
    /// Publishes one message.
    fn publish(&self, message: BusMessage);
}

/// What one node does with each bus message.
#[derive(Debug, Clone)]
pub struct Fanout {
    directory: Arc<Directory>,
    hub: Arc<Hub>,
}

impl Fanout {
    /// A node's receiver over its directory and hub.
    pub fn new(directory: Arc<Directory>, hub: Arc<Hub>) -> Self {
        Self { directory, hub }
    }

    /// Applies or delivers one message on this node.
    pub fn receive(&self, message: &BusMessage) {
        match message {
            BusMessage::Directory(change) => self.directory.apply(change),
            BusMessage::CloseSessions { user } => {
                self.hub
                    .close_user(*user, concord_gateway::CloseReason::Revoked);
            }
            BusMessage::Dispatch { audience, payload } => {
                match audience {
                    Audience::Server(server) => self
                        .hub
                        .send_to_users(self.directory.members(*server), payload),
                    Audience::Channel(channel) => self
                        .hub
                        .send_to_users(self.directory.viewers(*channel).iter().copied(), payload),
                    Audience::ServerPermission(server, bit) => self
                        .hub
                        .send_to_users(self.directory.members_with(*server, *bit), payload),
                    Audience::Users(users) => {
                        let mut users = users.clone();
                        users.sort_unstable();
                        users.dedup();
                        self.hub.send_to_users(users, payload)
                    }
                    Audience::CoMembers(user) => self
                        .hub
                        .send_to_users(self.directory.co_members(*user), payload),
                };
            }
        }
    }
}

/// The in-process bus of a single node.
#[derive(Debug, Clone)]
pub struct LocalBus {
    node: Fanout,
}

impl LocalBus {
    /// A bus delivering to this one node.
    pub fn new(node: Fanout) -> Self {
        Self { node }
    }
}

impl Bus for LocalBus {
    fn publish(&self, message: BusMessage) {
        self.node.receive(&message);
    }
}

/// The domain's handle for publishing: serializes each event once.
#[derive(Clone)]
pub struct Events {
    bus: Arc<dyn Bus>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

impl Events {
    /// Publishing through `bus`.
    pub fn new(bus: Arc<dyn Bus>) -> Self {
        Self { bus }
    }

    /// Publishes event `t` with payload `d` to `audience` (one serialization).
    pub fn dispatch<T: Serialize + ?Sized>(&self, audience: Audience, t: Event, d: &T) {
        match Payload::json(&Dispatch::new(t, d)) {
            Ok(payload) => self.bus.publish(BusMessage::Dispatch { audience, payload }),
            Err(err) => tracing::error!(event = t.as_str(), error = %err, "event not serializable"),
        }
    }

    /// Closes every session of `user` on every node (revoked, disabled, deleted).
    pub fn close_sessions(&self, user: UserId) {
        self.bus.publish(BusMessage::CloseSessions { user });
    }

    /// Publishes a directory change.
    pub fn change(&self, change: DirectoryChange) {
        self.bus.publish(BusMessage::Directory(change));
    }
}
