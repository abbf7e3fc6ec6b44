//! Typed ids: a UUID that knows what it names, so a `ChannelId` cannot be passed where a
//! `UserId` is wanted.

use std::{
    cmp::Ordering,
    fmt,
    hash::{Hash, Hasher},
    marker::PhantomData,
    str::FromStr,
};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// A UUID tagged with the kind of thing it identifies. On the wire it is a lowercase,
/// hyphenated UUID string.
pub struct Id<T> {
    value: Uuid,
    kind: PhantomData<fn() -> T>,
}

impl<T> Id<T> {
    /// Wraps an existing UUID.
    pub const fn from_uuid(value: Uuid) -> Self {
        Self {
            value,
            kind: PhantomData,
        }
    }

    /// A new id, time-ordered (UUIDv7) so that fresh rows land at the end of indexes.
    pub fn new() -> Self {
        Self::from_uuid(Uuid::now_v7())
    }

    /// The UUID inside.
    pub const fn get(self) -> Uuid {
        self.value
    }

    /// Reinterprets the id as naming another kind (e.g. a bot's user).
    pub const fn cast<U>(self) -> Id<U> {
        Id::from_uuid(self.value)
    }
}

impl<T> Default for Id<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for Id<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Id<T> {}
impl<T> PartialEq for Id<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}
impl<T> Eq for Id<T> {}
impl<T> PartialOrd for Id<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Id<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.value.cmp(&other.value)
    }
}
impl<T> Hash for Id<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.value.hash(state);
    }
}
impl<T> fmt::Debug for Id<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.value)
    }
}
impl<T> fmt::Display for Id<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.value.hyphenated(), f)
    }
}
impl<T> FromStr for Id<T> {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self::from_uuid)
    }
}
impl<T> From<Uuid> for Id<T> {
    fn from(value: Uuid) -> Self {
        Self::from_uuid(value)
    }
}
impl<T> Serialize for Id<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}
impl<'de, T> Deserialize<'de> for Id<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Uuid::deserialize(deserializer).map(Self::from_uuid)
    }
}

/// Marker types for [`Id`].
pub mod marker {
    /// A user account (humans and bots alike).
    #[derive(Debug)]
    pub struct User;
    /// A server (a community with members and channels).
    #[derive(Debug)]
    pub struct Server;
    /// A server channel (text or voice).
    #[derive(Debug)]
    pub struct Channel;
    /// A server-channel message.
    #[derive(Debug)]
    pub struct Message;
    /// A direct-message channel between two users.
    #[derive(Debug)]
    pub struct DmChannel;
    /// A direct message.
    #[derive(Debug)]
    pub struct DirectMessage;
    /// A role within a server.
    #[derive(Debug)]
    pub struct Role;
    /// A channel permission override.
    #[derive(Debug)]
    pub struct Override;
    /// A bot registration.
    #[derive(Debug)]
    pub struct Bot;
    /// A poll.
    #[derive(Debug)]
    pub struct Poll;
    /// A poll option.
    #[derive(Debug)]
    pub struct PollOption;
    /// A scheduled server event.
    #[derive(Debug)]
    pub struct Event;
    // ---- invites and moderation ----
    /// A server invite.
    #[derive(Debug)]
    pub struct Invite;
    // ---- custom emojis ----
    /// A server's custom emoji.
    #[derive(Debug)]
    pub struct CustomEmoji;
}

/// Id of a user.
pub type UserId = Id<marker::User>;
/// Id of a server.
pub type ServerId = Id<marker::Server>;
/// Id of a server channel.
pub type ChannelId = Id<marker::Channel>;
/// Id of a server-channel message.
pub type MessageId = Id<marker::Message>;
/// Id of a DM channel.
pub type DmChannelId = Id<marker::DmChannel>;
/// Id of a direct message.
pub type DirectMessageId = Id<marker::DirectMessage>;
/// Id of a role.
pub type RoleId = Id<marker::Role>;
/// Id of a channel override.
pub type OverrideId = Id<marker::Override>;
/// Id of a bot.
pub type BotId = Id<marker::Bot>;
/// Id of a poll.
pub type PollId = Id<marker::Poll>;
/// Id of a poll option.
pub type PollOptionId = Id<marker::PollOption>;
/// Id of a scheduled event.
pub type EventId = Id<marker::Event>;
// ---- invites and moderation ----
/// Id of a server invite.
pub type InviteId = Id<marker::Invite>;
// ---- custom emojis ----
/// Id of a custom emoji.
pub type CustomEmojiId = Id<marker::CustomEmoji>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_lowercase_hyphenated_string() {
        let id: UserId = "0192F4C8-1111-7000-8000-00000000000A".parse().unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"0192f4c8-1111-7000-8000-00000000000a\"");
        let back: UserId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
    }

    #[test]
    fn rejects_non_uuid() {
        assert!(serde_json::from_str::<UserId>("\"nope\"").is_err());
        assert!("nope".parse::<ChannelId>().is_err());
    }
}
