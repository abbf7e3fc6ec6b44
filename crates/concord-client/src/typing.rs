//! Who is typing where: a user counts as typing in a channel for 10 seconds after
//! their last `TYPING_START` there (`gateway.md`), or until their message arrives.
//!
//! ```
//! use concord_client::typing::TypingState;
//!
//! let mut typing = TypingState::new();
//! // Feed it every event: `typing.handle(&event)` in the event loop.
//! # let channel = concord_client::protocol::ChannelId::new();
//! assert!(typing.typing_in(channel).is_empty());
//! ```

use std::{collections::HashMap, time::Duration};

use concord_protocol::{ChannelId, GatewayEvent, UserId};
use tokio::time::Instant;

/// How long a `TYPING_START` holds.
pub const TYPING_TTL: Duration = Duration::from_secs(10);

/// The typing users of every channel, fed by [`TypingState::handle`]. Time is
/// tokio's clock, so that tests can run it under virtual time. Entries are dropped
/// as they expire: the state holds only users typing now.
#[derive(Debug, Default, Clone)]
pub struct TypingState {
    /// (channel, user) → when their typing ends.
    until: HashMap<(ChannelId, UserId), Instant>,
}

impl TypingState {
    /// Nobody typing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes in one event: `TYPING_START` starts (or extends) a user's typing;
    /// `MESSAGE_CREATE` and `THREAD_MESSAGE_CREATE` end their author's typing in
    /// that channel. Other events are ignored.
    pub fn handle(&mut self, event: &GatewayEvent) {
        let now = Instant::now();
        self.prune(now);
        match event {
            GatewayEvent::TypingStart(typing) => {
                self.until
                    .insert((typing.channel_id, typing.user_id), now + TYPING_TTL);
            }
            GatewayEvent::MessageCreate(message) | GatewayEvent::ThreadMessageCreate(message) => {
                if let Some(author) = message.author_id {
                    self.until.remove(&(message.channel_id, author));
                }
            }
            _ => {}
        }
    }

    /// Whether `user` is typing in `channel` now.
    pub fn is_typing(&self, channel: ChannelId, user: UserId) -> bool {
        self.until
            .get(&(channel, user))
            .is_some_and(|until| *until > Instant::now())
    }

    /// The users typing in `channel` now, in no particular order.
    pub fn typing_in(&self, channel: ChannelId) -> Vec<UserId> {
        let now = Instant::now();
        self.until
            .iter()
            .filter(|((c, _), until)| *c == channel && **until > now)
            .map(|((_, user), _)| *user)
            .collect()
    }

    /// How many (channel, user) pairs are held, expired ones not yet dropped
    /// included.
    pub fn len(&self) -> usize {
        self.until.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }

    fn prune(&mut self, now: Instant) {
        self.until.retain(|_, until| *until > now);
    }
}
