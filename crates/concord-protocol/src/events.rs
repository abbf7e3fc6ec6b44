//! Payloads of gateway events and of client commands (`gateway.md` §3, §4, §7, §9).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    ChannelId, ChannelOverride, DmChannel, MessageId, Role, Server, ServerId, Status, User, UserId,
};

/// `READY`: the first frame of every session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ready {
    /// Own profile, with the effective status after this session is counted.
    pub user: User,
    /// The user's servers, oldest first.
    pub servers: Vec<Server>,
    /// DM channels, newest activity first, never-used last.
    pub dm_channels: Vec<DmChannel>,
    /// Unread counts of channels acked at least once (zeros omitted).
    pub unread_counts: Vec<UnreadCount>,
    /// Mention counts of server channels acked at least once (zeros omitted).
    pub mention_counts: Vec<MentionCount>,
    /// Roles per server (position DESC); servers without roles absent.
    pub server_roles: BTreeMap<ServerId, Vec<Role>>,
    /// Overrides per channel; channels without overrides absent.
    pub channel_overrides: BTreeMap<ChannelId, Vec<ChannelOverride>>,
}

/// One entry of `READY.unread_counts`. The id is a server channel or a DM channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnreadCount {
    /// Channel (server or DM).
    pub channel_id: uuid::Uuid,
    /// Unread messages.
    pub unread_count: i64,
}

/// One entry of `READY.mention_counts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MentionCount {
    /// Server channel.
    pub channel_id: ChannelId,
    /// Unread mentions.
    pub count: i64,
}

/// `PRESENCE_UPDATE` as dispatched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresenceUpdate {
    /// Whose presence.
    pub user_id: UserId,
    /// Effective status.
    pub status: Status,
    /// Custom status.
    pub custom_status: Option<String>,
    /// Activity.
    pub activity: Option<String>,
}

/// `TYPING_START` as dispatched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TypingStart {
    /// Who types.
    pub user_id: UserId,
    /// Their name.
    pub username: Option<String>,
    /// Where.
    pub channel_id: ChannelId,
    /// RFC 3339 with `+00:00` and nanoseconds.
    pub timestamp: String,
}

/// `MESSAGE_DELETE`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageDelete {
    /// The message.
    pub id: MessageId,
    /// Its channel.
    pub channel_id: ChannelId,
}

/// `VOICE_SIGNAL` as relayed to its target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoiceSignal {
    /// Sender.
    pub from_user_id: UserId,
    /// `offer`, `answer` or `candidate`.
    #[serde(rename = "type")]
    pub kind: String,
    /// SDP.
    pub sdp: Option<String>,
    /// ICE candidate.
    pub candidate: Option<String>,
    /// `voice` or `go_live` from the web client.
    pub stream_type: Option<String>,
}

/// Client command `PRESENCE_UPDATE`'s `d`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresenceCommand {
    /// Chosen status.
    pub status: Status,
    /// Custom status (null clears).
    pub custom_status: Option<String>,
    /// Activity (null clears).
    pub activity: Option<String>,
}

/// Client command `TYPING_START`'s `d`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TypingCommand {
    /// A server channel the sender may write in.
    pub channel_id: ChannelId,
}

/// Client command `VOICE_SIGNAL`'s `d`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoiceSignalCommand {
    /// Target user, in the same voice channel.
    pub to_user_id: UserId,
    /// `offer`, `answer` or `candidate`.
    #[serde(rename = "type")]
    pub kind: String,
    /// SDP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp: Option<String>,
    /// ICE candidate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<String>,
    /// Stream kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_type: Option<String>,
}
