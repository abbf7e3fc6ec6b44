//! What a node publishes and how it receives: events and directory changes for its
//! Hub.
//!
//! A domain service commits to the store, then publishes through [`Events`]: the
//! message is delivered on this node at once (directory changes applied, dispatch
//! audiences resolved against the directory and queued on local sessions), then, on
//! a node of a cluster, handed to [`crate::cluster`] for the others, whose
//! [`Fanout`] receives it the same way. A single node has no bus beyond this.

use std::{
    collections::HashMap,
    ops::Range,
    sync::{Arc, Mutex},
    time::Duration,
};

use concord_gateway::{FrameBatch, Frames, Hub, Payload};
use concord_protocol::{ChannelId, Event, ServerId, UserId};
use serde::Serialize;

use crate::{
    directory::{Directory, DirectoryChange},
    families::Families,
    metrics::Metrics,
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
        /// Which event the frame is (for metrics; the frame names it too).
        event: Event,
        /// The frame, serialized once.
        payload: Payload,
    },
    /// Close every session of a user whose credentials were revoked or disabled.
    CloseSessions {
        /// The user.
        user: UserId,
    },
    /// Close the sessions one login opened (logged out, or one of its refresh tokens
    /// reused): `family` is its refresh session's id.
    CloseFamily {
        /// The login.
        family: uuid::Uuid,
    },
    /// Deliver an event whose payload depends on the recipient (a poll shows each
    /// viewer their own vote): the audience is resolved as for
    /// [`BusMessage::Dispatch`], then each recipient listed in a variant gets that
    /// variant's frame and everyone else the default. Listing a user never adds them
    /// to the audience.
    DispatchEach {
        /// Recipients.
        audience: Audience,
        /// Which event the frames are.
        event: Event,
        /// The frame of recipients not listed in any variant.
        default: Payload,
        /// Frames for particular users; a user is listed in at most one.
        variants: Vec<Variant>,
    },
    /// Drop what every node's cache holds of rows that just changed.
    Forget(Cached),
}

/// Rows a node keeps in memory, which a change made through any node makes stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "cache", rename_all = "snake_case")]
pub enum Cached {
    /// A server's automod settings and words.
    Automod {
        /// The server.
        server: ServerId,
    },
    /// A server's webhooks.
    Webhooks {
        /// The server.
        server: ServerId,
    },
    /// Every server's webhooks (rows went by cascade).
    AllWebhooks,
}

/// The node's caches of stored rows, as [`BusMessage::Forget`] reaches them.
#[derive(Clone)]
pub struct Caches {
    /// Automod rules per server.
    pub automod: Arc<crate::automod::AutomodRules>,
    /// Webhook delivery, with its targets per server.
    pub webhooks: crate::webhooks::Webhooks,
}

impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches").finish_non_exhaustive()
    }
}

impl Caches {
    fn forget_all(&self) {
        self.automod.invalidate_all();
        self.webhooks.invalidate_all();
    }

    fn forget(&self, cached: Cached) {
        match cached {
            Cached::Automod { server } => self.automod.invalidate(server),
            Cached::Webhooks { server } => self.webhooks.invalidate(server),
            Cached::AllWebhooks => self.webhooks.invalidate_all(),
        }
    }
}

/// One recipient-specific frame of a [`BusMessage::DispatchEach`].
#[derive(Debug, Clone)]
pub struct Variant {
    /// Who gets this frame instead of the default, if they are in the audience.
    pub users: Vec<UserId>,
    /// The frame, serialized once.
    pub payload: Payload,
}

/// What one node does with each bus message.
#[derive(Debug, Clone)]
pub struct Fanout {
    directory: Arc<Directory>,
    hub: Arc<Hub>,
    families: Arc<Families>,
    presence: Arc<PresenceTicks>,
    metrics: Arc<Metrics>,
    interests: Option<crate::cluster::Interests>,
    caches: Option<Caches>,
}

/// Presence announcements waiting for the next tick.
///
/// When a big community comes online, every connect announces itself to every
/// co-member: N² frames. Delivered one by one that is N² queue pushes, wake-ups and
/// socket writes. Collected for a short tick instead, each recipient gets all of a
/// tick's announcements as one shared queue entry and one write.
#[derive(Debug)]
struct PresenceTicks {
    tick: Duration,
    pending: Mutex<Vec<Announcement>>,
}

/// One presence announcement waiting for its tick.
#[derive(Debug)]
struct Announcement {
    subject: UserId,
    event: Event,
    payload: Payload,
}

impl Fanout {
    /// A node's receiver over its directory and hub; presence announcements are
    /// coalesced over `presence_tick` (zero delivers each at once). Deliveries are
    /// counted in `metrics`.
    pub fn new(
        directory: Arc<Directory>,
        hub: Arc<Hub>,
        families: Arc<Families>,
        presence_tick: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        let presence = Arc::new(PresenceTicks {
            tick: presence_tick,
            pending: Mutex::default(),
        });
        Self {
            directory,
            hub,
            families,
            presence,
            metrics,
            interests: None,
            caches: None,
        }
    }

    /// The same receiver, dropping from `caches` what [`BusMessage::Forget`] names.
    #[must_use]
    pub fn with_caches(mut self, caches: Caches) -> Self {
        self.caches = Some(caches);
        self
    }

    /// The same receiver, keeping `interests` in step with the directory changes it
    /// applies (a node of a cluster).
    #[must_use]
    pub fn with_interests(mut self, interests: crate::cluster::Interests) -> Self {
        self.interests = Some(interests);
        self
    }

    /// Begins reading the directory again (see [`Directory::begin_refresh`]): the
    /// snapshot given to [`Fanout::refresh`] or [`Fanout::start_over`] must be read
    /// after this call.
    pub fn begin_refresh(&self) {
        self.directory.begin_refresh();
    }

    /// Gives up a refresh begun (the snapshot could not be read): changes are no
    /// longer kept for it.
    pub fn abandon_refresh(&self) {
        self.directory.abandon_refresh();
    }

    /// Replaces the directory with `snapshot` (and what was applied while it was
    /// read), keeps what is watched in step with it and empties the caches. Sessions
    /// go on, each seeing from now on what the new directory lets it see, but those of
    /// a user whose servers were not what this node held (a join or a kick it never
    /// heard of): they missed the events that told their clients, so they are closed,
    /// not resumable (1011), and their clients get a READY as things are now.
    pub fn refresh(
        &self,
        snapshot: concord_store::DirectorySnapshot,
    ) -> Result<(), crate::directory::RefreshError> {
        let moved = self.directory.finish_refresh(snapshot)?;
        if let Some(interests) = &self.interests {
            interests.resync();
        }
        if let Some(caches) = &self.caches {
            caches.forget_all();
        }
        let mut closed = 0;
        for user in moved {
            if self.hub.user_session_count(user) > 0 {
                closed += 1;
                self.hub
                    .close_user(user, concord_gateway::CloseReason::Internal);
            }
        }
        if closed > 0 {
            tracing::warn!(
                users = closed,
                "directory read again: memberships this node never heard of; those users' sessions closed to start over"
            );
        }
        Ok(())
    }

    /// Starts over from `snapshot` after this node may have missed messages (its link
    /// to the bus was lost): [`Fanout::refresh`], then every session is closed, not
    /// resumable (1011), since what it missed cannot be replayed; its client
    /// reconnects and gets a READY as things are now.
    pub fn start_over(
        &self,
        snapshot: concord_store::DirectorySnapshot,
    ) -> Result<(), crate::directory::RefreshError> {
        self.refresh(snapshot)?;
        self.close_all();
        Ok(())
    }

    /// Closes every session, not resumable (1011): they missed events.
    pub fn close_all(&self) {
        self.hub.close_all(concord_gateway::CloseReason::Internal);
    }

    /// Applies or delivers one message on this node.
    pub fn receive(&self, message: &BusMessage) {
        match message {
            BusMessage::Directory(change) => {
                self.directory.apply(change);
                if let Some(interests) = &self.interests {
                    interests.directory_changed(change);
                }
            }
            BusMessage::CloseSessions { user } => {
                self.hub
                    .close_user(*user, concord_gateway::CloseReason::Revoked);
            }
            BusMessage::CloseFamily { family } => self.families.end(*family, &self.hub),
            BusMessage::Forget(cached) => {
                if let Some(caches) = &self.caches {
                    caches.forget(*cached);
                }
            }
            BusMessage::DispatchEach {
                audience,
                event,
                default,
                variants,
            } => self.deliver_each(audience, *event, default, variants),
            BusMessage::Dispatch {
                audience: Audience::CoMembers(user),
                event,
                payload,
            } => {
                self.announce(Announcement {
                    subject: *user,
                    event: *event,
                    payload: payload.clone(),
                });
            }
            BusMessage::Dispatch {
                audience,
                event,
                payload,
            } => {
                let delivery = match audience {
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
                self.metrics.delivered(*event, delivery);
            }
        }
    }

    /// The users `audience` names now, each once.
    fn recipients(&self, audience: &Audience) -> Vec<UserId> {
        match audience {
            Audience::Server(server) => self.directory.members(*server),
            Audience::Channel(channel) => self.directory.viewers(*channel).to_vec(),
            Audience::ServerPermission(server, bit) => self.directory.members_with(*server, *bit),
            Audience::Users(users) => {
                let mut users = users.clone();
                users.sort_unstable();
                users.dedup();
                users
            }
            Audience::CoMembers(user) => self.directory.co_members(*user),
        }
    }

    /// Delivers a [`BusMessage::DispatchEach`]: one queue push per session as for any
    /// dispatch, each recipient's frame picked from a map of the listed users.
    fn deliver_each(
        &self,
        audience: &Audience,
        event: Event,
        default: &Payload,
        variants: &[Variant],
    ) {
        let recipients = self.recipients(audience);
        let listed: HashMap<UserId, usize> = variants
            .iter()
            .enumerate()
            .flat_map(|(at, variant)| variant.users.iter().map(move |user| (*user, at)))
            .collect();
        let mut groups: Vec<Vec<UserId>> = vec![Vec::new(); variants.len()];
        let mut rest = Vec::with_capacity(recipients.len());
        for user in recipients {
            match listed.get(&user) {
                Some(&at) => groups[at].push(user),
                None => rest.push(user),
            }
        }
        self.metrics
            .delivered(event, self.hub.send_to_users(rest, default));
        for (group, variant) in groups.into_iter().zip(variants) {
            if !group.is_empty() {
                self.metrics
                    .delivered(event, self.hub.send_to_users(group, &variant.payload));
            }
        }
    }

    fn announce(&self, announcement: Announcement) {
        // Outside a runtime (nothing could run the tick) or with ticks off: at once.
        let runtime = match tokio::runtime::Handle::try_current() {
            Ok(runtime) if !self.presence.tick.is_zero() => runtime,
            _ => {
                let delivery = self.hub.send_to_users(
                    self.directory.co_members(announcement.subject),
                    &announcement.payload,
                );
                self.metrics.delivered(announcement.event, delivery);
                return;
            }
        };
        let first = {
            let mut pending = self
                .presence
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            pending.push(announcement);
            pending.len() == 1
        };
        if first {
            let node = self.clone();
            runtime.spawn(async move {
                tokio::time::sleep(node.presence.tick).await;
                node.flush_presence();
            });
        }
    }

    /// Delivers every pending announcement: per server of one-server subjects, one
    /// batch shared by all members (each subject gets the batch without its own
    /// frames); subjects in several servers one by one, deduplicated. A subject's
    /// frames keep their order; frames of different subjects need not.
    fn flush_presence(&self) {
        let pending = std::mem::take(
            &mut *self
                .presence
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        self.metrics.presence_batch(pending.len());
        let mut by_server: HashMap<ServerId, Vec<Announcement>> = HashMap::new();
        let mut order = Vec::new();
        for announcement in pending {
            match self.directory.servers_of(announcement.subject).as_slice() {
                [] => {}
                [server] => {
                    let group = by_server.entry(*server).or_default();
                    if group.is_empty() {
                        order.push(*server);
                    }
                    group.push(announcement);
                }
                _ => {
                    let delivery = self.hub.send_to_users(
                        self.directory.co_members(announcement.subject),
                        &announcement.payload,
                    );
                    self.metrics.delivered(announcement.event, delivery);
                }
            }
        }
        for server in order {
            let Some(mut group) = by_server.remove(&server) else {
                continue;
            };
            // Each subject's frames side by side (a stable sort keeps their order), so
            // that a subject gets the shared batch less one run of it.
            group.sort_by_key(|a| a.subject);
            let mut runs: HashMap<UserId, Range<usize>> = HashMap::new();
            for (at, a) in group.iter().enumerate() {
                runs.entry(a.subject).or_insert(at..at).end = at + 1;
            }
            let events: Vec<Event> = group.iter().map(|a| a.event).collect();
            let everyone = Arc::new(FrameBatch::new(
                group.into_iter().map(|a| a.payload).collect(),
            ));
            let members = self.directory.members(server);
            let delivery = self.hub.send_batch_to_users(
                members.iter().copied().filter(|m| !runs.contains_key(m)),
                &everyone,
            );
            let all = tally(&events);
            self.metrics.sessions_lost(delivery);
            for &(event, frames) in &all {
                self.metrics
                    .frames_delivered(event, delivery.queued * frames);
            }
            for (subject, run) in members
                .into_iter()
                .filter_map(|m| runs.remove(&m).map(|run| (m, run)))
            {
                if run.len() < everyone.frames().len() {
                    let own = tally(&events[run.clone()]);
                    let delivery = self
                        .hub
                        .send_frames_to_users([subject], &Frames::except(&everyone, run));
                    self.metrics.sessions_lost(delivery);
                    for &(event, frames) in &all {
                        let mine = own.iter().find(|(e, _)| *e == event).map_or(0, |o| o.1);
                        self.metrics
                            .frames_delivered(event, delivery.queued * (frames - mine));
                    }
                }
            }
        }
    }
}

/// How many of `events` are of each event (a tick's are almost always all one).
fn tally(events: &[Event]) -> Vec<(Event, usize)> {
    let mut counts: Vec<(Event, usize)> = Vec::with_capacity(1);
    for &event in events {
        match counts.iter_mut().find(|(e, _)| *e == event) {
            Some((_, n)) => *n += 1,
            None => counts.push((event, 1)),
        }
    }
    counts
}

/// The domain's handle for publishing: serializes each event once, delivers it to
/// this node's sessions at once, and hands it to the other nodes, if any.
#[derive(Clone)]
pub struct Events {
    node: Fanout,
    cluster: Option<crate::cluster::Cluster>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

impl Events {
    /// Publishing to this node's receiver, and through `cluster` to the other nodes;
    /// counted in `metrics`.
    pub fn new(
        node: Fanout,
        cluster: Option<crate::cluster::Cluster>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            node,
            cluster,
            metrics,
        }
    }

    /// The id written with a message this node stores, in a cluster: if the node dies
    /// before the message's event goes out, the others find it by this.
    pub fn node(&self) -> Option<uuid::Uuid> {
        self.cluster.as_ref().map(|cluster| cluster.node().0)
    }

    /// The node's cluster, when it has other nodes.
    pub fn cluster(&self) -> Option<&crate::cluster::Cluster> {
        self.cluster.as_ref()
    }

    fn publish(&self, message: BusMessage) {
        self.node.receive(&message);
        if let Some(cluster) = &self.cluster {
            cluster.send(&message);
        }
    }

    /// Publishes event `t` with payload `d` to `audience` (one serialization).
    pub fn dispatch<T: Serialize + ?Sized>(&self, audience: Audience, t: Event, d: &T) {
        if let Some(message) = self.dispatch_message(audience, t, d) {
            self.publish(message);
        }
    }

    /// Delivers event `t` with payload `d` to `audience` on this node only (presence,
    /// which each node derives for its own sessions from what the nodes tell each
    /// other).
    pub fn dispatch_here<T: Serialize + ?Sized>(&self, audience: Audience, t: Event, d: &T) {
        if let Some(message) = self.dispatch_message(audience, t, d) {
            self.node.receive(&message);
        }
    }

    fn dispatch_message<T: Serialize + ?Sized>(
        &self,
        audience: Audience,
        t: Event,
        d: &T,
    ) -> Option<BusMessage> {
        match Payload::dispatch(t, d) {
            Ok(payload) => {
                self.metrics.published(t);
                Some(BusMessage::Dispatch {
                    audience,
                    event: t,
                    payload,
                })
            }
            Err(err) => {
                tracing::error!(event = t.as_str(), error = %err, "event not serializable");
                None
            }
        }
    }

    /// Publishes event `t` to `audience` with a payload that depends on the recipient:
    /// each user of a variant who is in the audience gets that variant's payload, every
    /// other recipient `default`. Each payload is serialized once.
    pub fn dispatch_each<T: Serialize>(
        &self,
        audience: Audience,
        t: Event,
        default: &T,
        variants: Vec<(Vec<UserId>, T)>,
    ) {
        let serialized = Payload::dispatch(t, default).and_then(|default| {
            variants
                .into_iter()
                .map(|(users, d)| {
                    Payload::dispatch(t, &d).map(|payload| Variant { users, payload })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|variants| (default, variants))
        });
        match serialized {
            Ok((default, variants)) => {
                self.metrics.published(t);
                self.publish(BusMessage::DispatchEach {
                    audience,
                    event: t,
                    default,
                    variants,
                });
            }
            Err(err) => tracing::error!(event = t.as_str(), error = %err, "event not serializable"),
        }
    }

    /// Closes every session of `user` on every node (revoked, disabled, deleted).
    pub fn close_sessions(&self, user: UserId) {
        self.publish(BusMessage::CloseSessions { user });
    }

    /// Closes the sessions login `family` opened, on every node.
    pub fn close_family(&self, family: uuid::Uuid) {
        self.publish(BusMessage::CloseFamily { family });
    }

    /// Drops `cached` from every node's cache (the rows changed).
    pub fn forget(&self, cached: Cached) {
        self.publish(BusMessage::Forget(cached));
    }

    /// Publishes a directory change.
    pub fn change(&self, change: DirectoryChange) {
        self.publish(BusMessage::Directory(change));
    }
}

#[cfg(test)]
mod tests {
    use concord_gateway::QueueLimits;

    use super::*;

    fn texts(hub_entry: &concord_gateway::SessionEntry) -> Vec<String> {
        let mut drained = Vec::new();
        hub_entry.outbox.drain(&mut drained);
        drained
            .iter()
            .flat_map(Frames::iter)
            .map(|p| p.as_str().to_string())
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_tick_of_presence_reaches_each_co_member_once_and_never_its_subject() {
        let (directory, hub) = (Arc::new(Directory::new()), Arc::new(Hub::new()));
        let metrics = Arc::new(Metrics::new(Arc::clone(&hub)));
        let fanout = Fanout::new(
            Arc::clone(&directory),
            Arc::clone(&hub),
            Arc::default(),
            Duration::from_millis(20),
            Arc::clone(&metrics),
        );
        let (server, other) = (ServerId::new(), ServerId::new());
        let (a, b, c, d) = (UserId::new(), UserId::new(), UserId::new(), UserId::new());
        directory.apply(&DirectoryChange::ServerCreated { server, owner: a });
        directory.apply(&DirectoryChange::MemberAdded { server, user: b });
        directory.apply(&DirectoryChange::MemberAdded { server, user: c });
        // d shares only another server with c.
        directory.apply(&DirectoryChange::ServerCreated {
            server: other,
            owner: d,
        });
        directory.apply(&DirectoryChange::MemberAdded {
            server: other,
            user: c,
        });
        let sessions: Vec<_> = [a, b, c, d]
            .iter()
            .map(|u| hub.register(*u, QueueLimits::default()))
            .collect();
        let say = |who: UserId, text: &'static str| {
            fanout.receive(&BusMessage::Dispatch {
                audience: Audience::CoMembers(who),
                event: Event::PresenceUpdate,
                payload: Payload::text(text),
            });
        };
        say(a, "a-online");
        say(b, "b-online");
        say(c, "c-online");
        // A subject's second announcement in the tick, not next to its first.
        say(a, "a-idle");
        assert!(
            sessions.iter().all(|s| s.outbox.is_empty()),
            "held until the tick"
        );
        // Virtual time: sleeping past the tick lets the flush task run.
        tokio::time::sleep(Duration::from_millis(25)).await;
        // Order is kept per subject, not across subjects.
        let (ta, tb, tc, td) = (
            texts(&sessions[0]),
            texts(&sessions[1]),
            texts(&sessions[2]),
            texts(&sessions[3]),
        );
        let of_a = |v: &[String]| -> Vec<String> {
            v.iter().filter(|t| t.starts_with("a-")).cloned().collect()
        };
        assert_eq!(of_a(&tb), ["a-online", "a-idle"]);
        assert_eq!(of_a(&tc), ["a-online", "a-idle"]);
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        assert_eq!(sorted(ta), ["b-online", "c-online"]);
        assert_eq!(sorted(tb), ["a-idle", "a-online", "c-online"]);
        assert_eq!(sorted(tc), ["a-idle", "a-online", "b-online"]);
        assert_eq!(
            td,
            ["c-online"],
            "c is in two servers: delivered one by one"
        );
        // Every frame queued is counted once, batched or not.
        let counted = "concord_event_deliveries_total{event=\"PRESENCE_UPDATE\"} 9";
        let text = metrics.render();
        assert!(text.lines().any(|l| l == counted), "{text}");
    }

    #[test]
    fn dispatch_each_gives_listed_recipients_their_own_frame_and_no_one_else_any() {
        let (directory, hub) = (Arc::new(Directory::new()), Arc::new(Hub::new()));
        let metrics = Arc::new(Metrics::new(Arc::clone(&hub)));
        let fanout = Fanout::new(
            Arc::clone(&directory),
            Arc::clone(&hub),
            Arc::default(),
            Duration::ZERO,
            Arc::clone(&metrics),
        );
        let server = ServerId::new();
        let (a, b, c, outsider) = (UserId::new(), UserId::new(), UserId::new(), UserId::new());
        directory.apply(&DirectoryChange::ServerCreated { server, owner: a });
        directory.apply(&DirectoryChange::MemberAdded { server, user: b });
        directory.apply(&DirectoryChange::MemberAdded { server, user: c });
        let sessions: Vec<_> = [a, b, b, c, outsider]
            .iter()
            .map(|u| hub.register(*u, QueueLimits::default()))
            .collect();
        fanout.receive(&BusMessage::DispatchEach {
            audience: Audience::Server(server),
            event: Event::PollVote,
            default: Payload::text("default"),
            variants: vec![
                Variant {
                    users: vec![b],
                    payload: Payload::text("b's"),
                },
                // Listed, but not in the audience: gets nothing.
                Variant {
                    users: vec![outsider],
                    payload: Payload::text("outsider's"),
                },
            ],
        });
        let got: Vec<Vec<String>> = sessions.iter().map(|s| texts(s)).collect();
        assert_eq!(
            got,
            [
                vec!["default"],
                vec!["b's"],
                vec!["b's"],
                vec!["default"],
                vec![]
            ]
        );
        let counted = "concord_event_deliveries_total{event=\"POLL_VOTE\"} 4";
        let text = metrics.render();
        assert!(text.lines().any(|l| l == counted), "{text}");
    }

    #[test]
    fn without_a_runtime_presence_goes_out_at_once() {
        let (directory, hub) = (Arc::new(Directory::new()), Arc::new(Hub::new()));
        let metrics = Arc::new(Metrics::new(Arc::clone(&hub)));
        let fanout = Fanout::new(
            Arc::clone(&directory),
            Arc::clone(&hub),
            Arc::default(),
            Duration::from_millis(20),
            Arc::clone(&metrics),
        );
        let (server, a, b) = (ServerId::new(), UserId::new(), UserId::new());
        directory.apply(&DirectoryChange::ServerCreated { server, owner: a });
        directory.apply(&DirectoryChange::MemberAdded { server, user: b });
        let session = hub.register(b, QueueLimits::default());
        fanout.receive(&BusMessage::Dispatch {
            audience: Audience::CoMembers(a),
            event: Event::PresenceUpdate,
            payload: Payload::text("a-online"),
        });
        assert_eq!(texts(&session), ["a-online"]);
    }
}
