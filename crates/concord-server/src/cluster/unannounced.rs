//! Messages a dead node stored but never announced.
//!
//! A node commits a post's row, delivers the event to its own sessions, queues it for
//! the bus and answers once the bus's client has taken it (which writes it to NATS a
//! moment later). Killed between the commit and that write, it leaves a message in the
//! history that no live session heard of, answered or not. Each message row names the
//! node that accepted it (`messages.node_id`, `dm_messages.node_id`), and each node
//! remembers the ids of the messages it has had from the others lately; when a node is
//! taken for dead, every survivor reads what that node stored in the last moments (a
//! range of time-ordered ids) and announces, to its own sessions only, each message it
//! never had. The same memory drops a message that arrives twice: a node taken for
//! dead whose link comes back still sends what it had queued, after the others have
//! announced it for it. A direct message travels as one copy per participant (each
//! user's subject), so it is remembered per participant.

use std::{
    collections::{HashSet, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use concord_protocol::{Event, MessageId, UserId};
use serde::Deserialize;

use crate::bus::{Audience, BusMessage, Events};

/// How many ids a node remembers at most (about 100 bytes each). Past it the oldest go,
/// and messages older than they are no longer announced for a dead node.
const REMEMBERED: usize = 200_000;

/// Rows read for one dead node at most.
const READ_LIMIT: i64 = 10_000;

/// Tries at reading a dead node's messages before giving up (a second apart).
const READ_TRIES: u32 = 3;

/// The message ids a node had from the others lately.
#[derive(Debug)]
pub struct Announced {
    /// How far back a dead node's messages are read: its silence before it was taken
    /// for dead, and more.
    window: Duration,
    capacity: usize,
    seen: Mutex<Seen>,
}

/// A message, and for a direct message the participant its copy is for.
type Key = (MessageId, Option<UserId>);

#[derive(Debug)]
struct Seen {
    ids: HashSet<Key>,
    order: VecDeque<(Instant, Key)>,
    /// Unix milliseconds from which this node can tell what it had: since it started
    /// (or started over), and past every id it has forgotten.
    from_ms: u64,
}

impl Announced {
    /// Remembering ids for twice `window`, the span read back for a dead node.
    pub fn new(window: Duration) -> Self {
        Self::with_capacity(window, REMEMBERED)
    }

    fn with_capacity(window: Duration, capacity: usize) -> Self {
        Self {
            window,
            capacity,
            seen: Mutex::new(Seen {
                ids: HashSet::new(),
                order: VecDeque::new(),
                from_ms: unix_ms(SystemTime::now()),
            }),
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records that message `id` was announced here (to participant `to`, for a direct
    /// message); false when it already was.
    pub fn first(&self, id: MessageId, to: Option<UserId>) -> bool {
        let now = Instant::now();
        let mut seen = self.seen();
        while let Some(&(at, old)) = seen.order.front() {
            if seen.order.len() < self.capacity && now.duration_since(at) < self.window * 2 {
                break;
            }
            seen.order.pop_front();
            seen.ids.remove(&old);
            if let Some(ms) = id_ms(old.0) {
                seen.from_ms = seen.from_ms.max(ms + 1);
            }
        }
        if !seen.ids.insert((id, to)) {
            return false;
        }
        seen.order.push_back((now, (id, to)));
        true
    }

    /// Forgets everything: the node starts over, its sessions closed, and what was
    /// published before now is no longer its to announce.
    pub(crate) fn start_over(&self) {
        let mut seen = self.seen();
        seen.ids.clear();
        seen.order.clear();
        seen.from_ms = unix_ms(SystemTime::now());
    }

    /// The first id a dead node's messages are read from: `window` back, and never
    /// before what this node can tell it had.
    fn read_from(&self) -> MessageId {
        let back = unix_ms(
            SystemTime::now()
                .checked_sub(self.window)
                .unwrap_or(SystemTime::UNIX_EPOCH),
        );
        let from = back.max(self.seen().from_ms);
        MessageId::from_uuid(uuid::Builder::from_unix_timestamp_millis(from, &[0; 10]).into_uuid())
    }
}

/// The message a MESSAGE_CREATE, THREAD_MESSAGE_CREATE or DM_MESSAGE_CREATE from
/// another node is of (a direct message's id taken as a message id: both are
/// time-ordered UUIDs, never equal), with the participants a direct message's copy is
/// for (none for a channel's message); `None` for any other message.
pub fn message_of(message: &BusMessage) -> Option<(MessageId, &[UserId])> {
    #[derive(Deserialize)]
    struct Frame {
        d: Row,
    }
    #[derive(Deserialize)]
    struct Row {
        id: MessageId,
    }
    let id = |payload: &concord_gateway::Payload| {
        serde_json::from_slice::<Frame>(payload.json_bytes())
            .ok()
            .map(|frame| frame.d.id)
    };
    match message {
        BusMessage::Dispatch {
            event: Event::MessageCreate | Event::ThreadMessageCreate,
            payload,
            ..
        } => id(payload).map(|id| (id, &[][..])),
        BusMessage::Dispatch {
            event: Event::DmMessageCreate,
            audience: Audience::Users(users),
            payload,
        } => id(payload).map(|id| (id, users.as_slice())),
        _ => None,
    }
}

/// Records `message` (see [`message_of`]) as announced here; false when it is a
/// message already announced, to everyone its copy is for.
pub fn first_time(announced: &Announced, message: &BusMessage) -> bool {
    match message_of(message) {
        None => true,
        Some((id, [])) => announced.first(id, None),
        Some((id, to)) => to
            .iter()
            .fold(false, |new, user| announced.first(id, Some(*user)) | new),
    }
}

/// Announces to this node's sessions each message `dead` stored lately that this node
/// never had (see the module's introduction).
pub(crate) async fn announce_for(
    dead: concord_bus::NodeId,
    announced: Arc<Announced>,
    store: Arc<dyn concord_store::Store>,
    events: Events,
    metrics: Arc<crate::metrics::Metrics>,
) {
    let from = announced.read_from();
    let Some((stored, direct)) = read(dead, from, store.as_ref()).await else {
        return;
    };
    let mut missed = 0_u64;
    // Newest first as read: announced oldest first.
    for message in stored.into_iter().rev() {
        if !announced.first(message.id, None) {
            continue;
        }
        missed += 1;
        metrics.bus("announced_for_dead_node");
        let event = if message.thread_id.is_some() {
            Event::ThreadMessageCreate
        } else {
            Event::MessageCreate
        };
        events.dispatch_here(Audience::Channel(message.channel_id), event, &message);
    }
    let mut pairs = std::collections::HashMap::new();
    for message in direct.into_iter().rev() {
        let pair = match pairs.get(&message.channel_id) {
            Some(pair) => pair,
            None => match store.dm_channel(message.channel_id).await {
                Ok(Some(channel)) => pairs
                    .entry(message.channel_id)
                    .or_insert(vec![channel.user_a, channel.user_b]),
                Ok(None) => continue,
                Err(err) => {
                    tracing::error!(node = %dead, error = %err, "a dead node's direct message not announced: its channel not read");
                    continue;
                }
            },
        };
        let unheard: Vec<UserId> = pair
            .iter()
            .copied()
            .filter(|user| announced.first(message.id.cast(), Some(*user)))
            .collect();
        if unheard.is_empty() {
            continue;
        }
        missed += 1;
        metrics.bus("announced_for_dead_node");
        events.dispatch_here(Audience::Users(unheard), Event::DmMessageCreate, &message);
    }
    if missed > 0 {
        tracing::warn!(node = %dead, messages = missed, "announced messages a dead node stored and never published");
    }
}

/// What `dead` stored from `from` on, channel messages and direct messages, newest
/// first; `None` when the database would not answer.
async fn read(
    dead: concord_bus::NodeId,
    from: MessageId,
    store: &dyn concord_store::Store,
) -> Option<(
    Vec<concord_protocol::Message>,
    Vec<concord_protocol::DirectMessage>,
)> {
    let mut tries = 0;
    loop {
        tries += 1;
        let read = async {
            Ok::<_, concord_store::StoreError>((
                store.messages_of_node(dead.0, from, READ_LIMIT).await?,
                store
                    .dm_messages_of_node(dead.0, from.get(), READ_LIMIT)
                    .await?,
            ))
        };
        match read.await {
            Ok((stored, direct)) => {
                if stored.len() as i64 >= READ_LIMIT || direct.len() as i64 >= READ_LIMIT {
                    tracing::warn!(node = %dead, "a dead node stored more lately than is read back: only the newest are checked");
                }
                return Some((stored, direct));
            }
            Err(err) if tries < READ_TRIES => {
                tracing::warn!(node = %dead, error = %err, "a dead node's messages not read; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(err) => {
                tracing::error!(node = %dead, error = %err, "a dead node's messages not read: what it never announced stays unannounced");
                return None;
            }
        }
    }
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The millisecond a time-ordered id was made in; `None` for an id of another kind.
fn id_ms(id: MessageId) -> Option<u64> {
    let (secs, nanos) = id.get().get_timestamp()?.to_unix();
    Some(secs * 1_000 + u64::from(nanos / 1_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_in(ms_from_now: u64) -> MessageId {
        let ms = unix_ms(SystemTime::now()) + ms_from_now;
        MessageId::from_uuid(uuid::Builder::from_unix_timestamp_millis(ms, &[7; 10]).into_uuid())
    }

    #[test]
    fn an_id_counts_once_and_forgotten_ids_move_the_read_bound() {
        let announced = Announced::with_capacity(Duration::from_secs(60), 2);
        let fresh = MessageId::new();
        assert!(announced.first(fresh, None));
        assert!(!announced.first(fresh, None), "the same id twice");
        assert!(announced.read_from() <= fresh, "a fresh id is read back");
        let (a, b, c) = (id_in(1_000), id_in(2_000), id_in(3_000));
        assert!(announced.first(a, None));
        assert!(announced.read_from() <= fresh, "nothing forgotten yet");
        // Room for two: `fresh` goes, and the bound moves past it, not past `a`.
        assert!(announced.first(b, None));
        let from = announced.read_from();
        assert!(fresh < from && from <= a, "{fresh} < {from} <= {a}");
        assert!(announced.first(c, None));
        let from = announced.read_from();
        assert!(a < from && from <= b, "{a} < {from} <= {b}");
        assert!(announced.first(a, None), "a forgotten id counts again");
        announced.start_over();
        assert!(announced.read_from() < a, "starting over reads from now");
        assert!(announced.first(b, None), "a node that started over forgets");
    }

    #[test]
    fn only_message_creations_name_a_message() {
        let id = MessageId::new();
        let create = BusMessage::Dispatch {
            audience: Audience::Server(concord_protocol::ServerId::new()),
            event: Event::MessageCreate,
            payload: concord_gateway::Payload::dispatch(
                Event::MessageCreate,
                &serde_json::json!({"id": id, "content": "hi"}),
            )
            .unwrap(),
        };
        assert_eq!(message_of(&create), Some((id, &[][..])));
        let typing = BusMessage::Dispatch {
            audience: Audience::Server(concord_protocol::ServerId::new()),
            event: Event::TypingStart,
            payload: concord_gateway::Payload::dispatch(
                Event::TypingStart,
                &serde_json::json!({"id": id}),
            )
            .unwrap(),
        };
        assert_eq!(message_of(&typing), None);
    }

    /// A direct message comes as one copy per participant (each user's subject): each
    /// copy is new once, and only a copy seen before is dropped.
    #[test]
    fn each_participants_copy_of_a_direct_message_counts_once() {
        let announced = Announced::new(Duration::from_secs(60));
        let (id, alice, dave) = (MessageId::new(), UserId::new(), UserId::new());
        let copy = |to: UserId| BusMessage::Dispatch {
            audience: Audience::Users(vec![to]),
            event: Event::DmMessageCreate,
            payload: concord_gateway::Payload::dispatch(
                Event::DmMessageCreate,
                &serde_json::json!({"id": id, "content": "hi"}),
            )
            .unwrap(),
        };
        assert!(first_time(&announced, &copy(alice)));
        assert!(
            first_time(&announced, &copy(dave)),
            "dave's copy is his own"
        );
        assert!(!first_time(&announced, &copy(dave)), "the same copy twice");
        let both = BusMessage::Dispatch {
            audience: Audience::Users(vec![alice, dave]),
            event: Event::DmMessageCreate,
            payload: concord_gateway::Payload::dispatch(
                Event::DmMessageCreate,
                &serde_json::json!({"id": id}),
            )
            .unwrap(),
        };
        assert!(!first_time(&announced, &both));
    }
}
