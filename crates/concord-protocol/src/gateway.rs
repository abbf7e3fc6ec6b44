//! The gateway envelope, opcodes and event names (`gateway.md` §2, §7).

use serde::{Deserialize, Serialize};

use crate::Intents;

/// Opcodes of protocols v1 and v2. Clients' unknown ops make a frame unparseable
/// (ignored in v1, answered with ERROR in v2). A v1 session acts on the v1 client ops
/// only; the v2 ops (`HELLO` … `ERROR`) sent to a v1 session are ignored like any other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum Op {
    /// Server → client event, with `t` and `d`.
    Dispatch,
    /// Client → server keep-alive.
    Heartbeat,
    /// Server → client answer to a heartbeat; no `t`, no `d`.
    HeartbeatAck,
    /// Client → server presence change.
    PresenceUpdate,
    /// Client → server "I am typing".
    TypingStart,
    /// Client → server WebRTC signal to relay.
    VoiceSignal,
    /// v2, server → client, first frame: heartbeat interval and session id.
    Hello,
    /// v2, client → server: authenticate after the upgrade.
    Identify,
    /// v2, client → server: take over a dropped session and get what it missed.
    Resume,
    /// v2, server → client: the RESUME cannot be honoured; IDENTIFY afresh.
    InvalidSession,
    /// v2, server → client: reconnect and RESUME now (the node is draining).
    Reconnect,
    /// v2, server → client: a frame was refused, and why.
    Error,
    /// v2, client → server: open an audio stream in the caller's voice channel.
    MediaStart,
    /// v2, client → server: end the stream once its buffer has been released.
    MediaStop,
    /// v2, client → server: drop the stream's buffer and end it at once.
    MediaClear,
    /// v2, client → server: receive the voice channel's audio.
    MediaSubscribe,
    /// v2, client → server: stop receiving it.
    MediaUnsubscribe,
}

impl Op {
    /// The op spelled `name` (exact, upper snake case).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "DISPATCH" => Self::Dispatch,
            "HEARTBEAT" => Self::Heartbeat,
            "HEARTBEAT_ACK" => Self::HeartbeatAck,
            "PRESENCE_UPDATE" => Self::PresenceUpdate,
            "TYPING_START" => Self::TypingStart,
            "VOICE_SIGNAL" => Self::VoiceSignal,
            "HELLO" => Self::Hello,
            "IDENTIFY" => Self::Identify,
            "RESUME" => Self::Resume,
            "INVALID_SESSION" => Self::InvalidSession,
            "RECONNECT" => Self::Reconnect,
            "ERROR" => Self::Error,
            "MEDIA_START" => Self::MediaStart,
            "MEDIA_STOP" => Self::MediaStop,
            "MEDIA_CLEAR" => Self::MediaClear,
            "MEDIA_SUBSCRIBE" => Self::MediaSubscribe,
            "MEDIA_UNSUBSCRIBE" => Self::MediaUnsubscribe,
            _ => return None,
        })
    }

    /// The wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Dispatch => "DISPATCH",
            Self::Heartbeat => "HEARTBEAT",
            Self::HeartbeatAck => "HEARTBEAT_ACK",
            Self::PresenceUpdate => "PRESENCE_UPDATE",
            Self::TypingStart => "TYPING_START",
            Self::VoiceSignal => "VOICE_SIGNAL",
            Self::Hello => "HELLO",
            Self::Identify => "IDENTIFY",
            Self::Resume => "RESUME",
            Self::InvalidSession => "INVALID_SESSION",
            Self::Reconnect => "RECONNECT",
            Self::Error => "ERROR",
            Self::MediaStart => "MEDIA_START",
            Self::MediaStop => "MEDIA_STOP",
            Self::MediaClear => "MEDIA_CLEAR",
            Self::MediaSubscribe => "MEDIA_SUBSCRIBE",
            Self::MediaUnsubscribe => "MEDIA_UNSUBSCRIBE",
        }
    }
}

/// One frame as a client sends it. `t` is ignored by the server, `d` may be absent.
/// Unknown top-level keys are ignored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientFrame {
    /// The opcode.
    pub op: Op,
    /// Ignored by the server; the reference web client sends null.
    #[serde(default)]
    pub t: Option<String>,
    /// Payload, if any.
    #[serde(default)]
    pub d: Option<serde_json::Value>,
}

/// A server → client dispatch, borrowing its payload so that it is serialized once.
#[derive(Debug, Serialize)]
pub struct Dispatch<'a, T: Serialize + ?Sized> {
    /// Always `DISPATCH`.
    pub op: Op,
    /// The event name.
    pub t: &'a str,
    /// The payload.
    pub d: &'a T,
}

impl<'a, T: Serialize + ?Sized> Dispatch<'a, T> {
    /// A dispatch of event `t` with payload `d`.
    pub fn new(t: Event, d: &'a T) -> Self {
        Self {
            op: Op::Dispatch,
            t: t.as_str(),
            d,
        }
    }
}

/// A dispatch as a client reads it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerFrame {
    /// The opcode.
    pub op: Op,
    /// Event name, on dispatches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t: Option<String>,
    /// Payload, on dispatches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d: Option<serde_json::Value>,
}

/// The exact bytes of a v1 heartbeat acknowledgement.
pub const HEARTBEAT_ACK: &str = r#"{"op":"HEARTBEAT_ACK"}"#;

/// Event names of protocol v1 (`gateway.md` §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Event {
    /// First frame of a session.
    Ready,
    /// New channel message.
    MessageCreate,
    /// Edited channel message.
    MessageUpdate,
    /// Deleted channel message.
    MessageDelete,
    /// New thread reply.
    ThreadMessageCreate,
    /// A user's presence changed.
    PresenceUpdate,
    /// A user started typing.
    TypingStart,
    /// A user's voice state changed.
    VoiceStateUpdate,
    /// A relayed WebRTC signal.
    VoiceSignal,
    /// A DM channel was opened.
    DmChannelCreate,
    /// A direct message was sent.
    DmMessageCreate,
    /// A reaction was added.
    ReactionAdd,
    /// A reaction was removed.
    ReactionRemove,
    /// A poll got a vote (each recipient sees its own `user_vote`).
    PollVote,
    /// A message was pinned.
    MessagePin,
    /// A message was unpinned.
    MessageUnpin,
    /// A member was kicked.
    MemberKick,
    /// A user was banned.
    MemberBan,
    /// A ban was lifted.
    MemberUnban,
    /// A member was timed out.
    MemberTimeout,
    /// A timeout was lifted.
    MemberTimeoutRemove,
    /// A custom emoji was uploaded.
    CustomEmojiCreate,
    /// A custom emoji was deleted.
    CustomEmojiDelete,
    /// Someone went live in a voice channel.
    GoLiveStart,
    /// A Go Live session ended.
    GoLiveStop,
    /// A role was created.
    RoleCreate,
    /// A role changed.
    RoleUpdate,
    /// A role was deleted.
    RoleDelete,
    /// A member was given a role.
    MemberRoleAdd,
    /// A member lost a role.
    MemberRoleRemove,
    /// An invite was created (to members holding CREATE_INVITES).
    InviteCreate,
    /// An invite was deleted (to members holding CREATE_INVITES).
    InviteDelete,
    /// A channel override was created or changed.
    ChannelOverrideUpdate,
    /// A channel override was deleted.
    ChannelOverrideDelete,
    /// v2: a RESUME replayed what the session missed.
    Resumed,
    /// v2: a server's settings changed.
    ServerUpdate,
    /// v2: a server was deleted.
    ServerDelete,
    /// v2: a channel appeared (created, or the session may now view it).
    ChannelCreate,
    /// v2: a channel changed.
    ChannelUpdate,
    /// v2: a channel went away (deleted, or the session may no longer view it).
    ChannelDelete,
    /// v2: a user joined a server.
    MemberJoin,
    /// v2: a user left a server.
    MemberLeave,
    /// v2: the user's own profile changed.
    UserUpdate,
    /// v2: an audio stream began in the session's voice channel (subscribers, sender).
    MediaStarted,
    /// v2: an audio stream ended.
    MediaEnded,
}

impl Event {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "READY",
            Self::MessageCreate => "MESSAGE_CREATE",
            Self::MessageUpdate => "MESSAGE_UPDATE",
            Self::MessageDelete => "MESSAGE_DELETE",
            Self::ThreadMessageCreate => "THREAD_MESSAGE_CREATE",
            Self::PresenceUpdate => "PRESENCE_UPDATE",
            Self::TypingStart => "TYPING_START",
            Self::VoiceStateUpdate => "VOICE_STATE_UPDATE",
            Self::VoiceSignal => "VOICE_SIGNAL",
            Self::DmChannelCreate => "DM_CHANNEL_CREATE",
            Self::DmMessageCreate => "DM_MESSAGE_CREATE",
            Self::ReactionAdd => "REACTION_ADD",
            Self::ReactionRemove => "REACTION_REMOVE",
            Self::PollVote => "POLL_VOTE",
            Self::MessagePin => "MESSAGE_PIN",
            Self::MessageUnpin => "MESSAGE_UNPIN",
            Self::MemberKick => "MEMBER_KICK",
            Self::MemberBan => "MEMBER_BAN",
            Self::MemberUnban => "MEMBER_UNBAN",
            Self::MemberTimeout => "MEMBER_TIMEOUT",
            Self::MemberTimeoutRemove => "MEMBER_TIMEOUT_REMOVE",
            Self::CustomEmojiCreate => "CUSTOM_EMOJI_CREATE",
            Self::CustomEmojiDelete => "CUSTOM_EMOJI_DELETE",
            Self::GoLiveStart => "GO_LIVE_START",
            Self::GoLiveStop => "GO_LIVE_STOP",
            Self::RoleCreate => "ROLE_CREATE",
            Self::RoleUpdate => "ROLE_UPDATE",
            Self::RoleDelete => "ROLE_DELETE",
            Self::MemberRoleAdd => "MEMBER_ROLE_ADD",
            Self::MemberRoleRemove => "MEMBER_ROLE_REMOVE",
            Self::InviteCreate => "INVITE_CREATE",
            Self::InviteDelete => "INVITE_DELETE",
            Self::ChannelOverrideUpdate => "CHANNEL_OVERRIDE_UPDATE",
            Self::ChannelOverrideDelete => "CHANNEL_OVERRIDE_DELETE",
            Self::Resumed => "RESUMED",
            Self::ServerUpdate => "SERVER_UPDATE",
            Self::ServerDelete => "SERVER_DELETE",
            Self::ChannelCreate => "CHANNEL_CREATE",
            Self::ChannelUpdate => "CHANNEL_UPDATE",
            Self::ChannelDelete => "CHANNEL_DELETE",
            Self::MemberJoin => "MEMBER_JOIN",
            Self::MemberLeave => "MEMBER_LEAVE",
            Self::UserUpdate => "USER_UPDATE",
            Self::MediaStarted => "MEDIA_STARTED",
            Self::MediaEnded => "MEDIA_ENDED",
        }
    }

    /// Every event, in declaration order.
    pub const ALL: [Self; 45] = [
        Self::Ready,
        Self::MessageCreate,
        Self::MessageUpdate,
        Self::MessageDelete,
        Self::ThreadMessageCreate,
        Self::PresenceUpdate,
        Self::TypingStart,
        Self::VoiceStateUpdate,
        Self::VoiceSignal,
        Self::DmChannelCreate,
        Self::DmMessageCreate,
        Self::ReactionAdd,
        Self::ReactionRemove,
        Self::PollVote,
        Self::MessagePin,
        Self::MessageUnpin,
        Self::MemberKick,
        Self::MemberBan,
        Self::MemberUnban,
        Self::MemberTimeout,
        Self::MemberTimeoutRemove,
        Self::CustomEmojiCreate,
        Self::CustomEmojiDelete,
        Self::GoLiveStart,
        Self::GoLiveStop,
        Self::RoleCreate,
        Self::RoleUpdate,
        Self::RoleDelete,
        Self::MemberRoleAdd,
        Self::MemberRoleRemove,
        Self::InviteCreate,
        Self::InviteDelete,
        Self::ChannelOverrideUpdate,
        Self::ChannelOverrideDelete,
        Self::Resumed,
        Self::ServerUpdate,
        Self::ServerDelete,
        Self::ChannelCreate,
        Self::ChannelUpdate,
        Self::ChannelDelete,
        Self::MemberJoin,
        Self::MemberLeave,
        Self::UserUpdate,
        Self::MediaStarted,
        Self::MediaEnded,
    ];

    /// The event named `name`, if this crate knows it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == name)
    }

    /// Whether only v2 sessions receive it (`extensions.md`, "Events v2 adds"): a v1
    /// client must see no event name it does not expect.
    pub const fn v2_only(self) -> bool {
        matches!(
            self,
            Self::Resumed
                | Self::ServerUpdate
                | Self::ServerDelete
                | Self::ChannelCreate
                | Self::ChannelUpdate
                | Self::ChannelDelete
                | Self::MemberJoin
                | Self::MemberLeave
                | Self::UserUpdate
                | Self::MediaStarted
                | Self::MediaEnded
        )
    }

    /// The intent a v2 session must name in IDENTIFY to receive this event; `None`
    /// for the session's own frames (READY, RESUMED), which every session gets.
    pub const fn intent(self) -> Option<Intents> {
        Some(match self {
            Self::Ready | Self::Resumed => return None,
            Self::MessageCreate
            | Self::MessageUpdate
            | Self::MessageDelete
            | Self::ThreadMessageCreate
            | Self::DmChannelCreate
            | Self::DmMessageCreate
            | Self::PollVote
            | Self::MessagePin
            | Self::MessageUnpin => Intents::MESSAGES,
            Self::ReactionAdd | Self::ReactionRemove => Intents::REACTIONS,
            Self::PresenceUpdate => Intents::PRESENCE,
            Self::TypingStart => Intents::TYPING,
            Self::VoiceStateUpdate
            | Self::VoiceSignal
            | Self::GoLiveStart
            | Self::GoLiveStop
            | Self::MediaStarted
            | Self::MediaEnded => Intents::VOICE,
            Self::MemberJoin
            | Self::MemberLeave
            | Self::MemberKick
            | Self::MemberBan
            | Self::MemberUnban
            | Self::MemberTimeout
            | Self::MemberTimeoutRemove
            | Self::MemberRoleAdd
            | Self::MemberRoleRemove => Intents::MEMBERS,
            Self::ServerUpdate
            | Self::ServerDelete
            | Self::ChannelCreate
            | Self::ChannelUpdate
            | Self::ChannelDelete
            | Self::UserUpdate
            | Self::RoleCreate
            | Self::RoleUpdate
            | Self::RoleDelete
            | Self::ChannelOverrideUpdate
            | Self::ChannelOverrideDelete
            | Self::CustomEmojiCreate
            | Self::CustomEmojiDelete
            | Self::InviteCreate
            | Self::InviteDelete => Intents::SERVERS,
        })
    }
}
