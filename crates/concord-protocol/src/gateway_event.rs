//! Typed server → client frames, as a client reads them: [`ServerMessage`] for a whole
//! frame (`{"op", "t"?, "d"?, "s"?}`) and [`GatewayEvent`] for a dispatch, with one
//! variant per event name of `gateway.md` §7 and `extensions.md`, each holding the
//! payload struct the server serializes. An event name this crate does not know
//! becomes [`GatewayEvent::Unknown`], so a newer server never breaks an older client.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    Channel, ChannelDelete, ChannelOverride, CustomEmoji, CustomEmojiDelete, DirectMessage,
    DmChannel, Event, GatewayError, GoLiveInfo, GoLiveStop, Hello, InvalidSession, Invite,
    InviteDelete, MediaEnded, MediaStarted, MemberChange, MemberRemoval, MemberRoleChange,
    MemberTimeout, Message, MessageDelete, MessagePin, MessageUnpin, ModeratedMember, Op,
    OverrideDelete, PollVote, PresenceUpdate, ReactionEvent, Ready, Resumed, Role, RoleDelete,
    ServerDelete, ServerDto, TypingStart, User, VoiceParticipant, VoiceSignal,
};

/// Why a server frame could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not a JSON object with a string `op` (or not JSON at all).
    #[error("not a gateway frame: {0}")]
    Frame(#[source] serde_json::Error),
    /// A `DISPATCH` without `t`.
    #[error("a DISPATCH without an event name")]
    MissingName,
    /// A known op or event whose `d` does not have the contract's shape.
    #[error("{name}: payload does not match the contract: {source}")]
    Payload {
        /// The op or event name.
        name: String,
        /// What serde found wrong.
        #[source]
        source: serde_json::Error,
    },
}

/// One server → client frame.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServerMessage {
    /// `DISPATCH`: an event, numbered (`s`) on v2 sessions.
    Dispatch {
        /// `s`: the session's sequence number (v2), absent on v1.
        seq: Option<u64>,
        /// The event.
        event: GatewayEvent,
    },
    /// `HEARTBEAT_ACK`.
    HeartbeatAck,
    /// v2 `HELLO`: the first frame of a connection.
    Hello(Hello),
    /// v2 `INVALID_SESSION`: IDENTIFY afresh.
    InvalidSession(InvalidSession),
    /// v2 `RECONNECT`: reconnect and RESUME now.
    Reconnect,
    /// v2 `ERROR`: a client frame was refused.
    Error(GatewayError),
    /// An op a client does not expect from a server (a newer server's, or a client op
    /// echoed back); kept rather than refused.
    Other {
        /// The op as sent.
        op: String,
        /// Its payload, if any.
        d: Option<Value>,
    },
}

/// The envelope as read, before the payload is typed.
#[derive(Deserialize)]
struct RawFrame {
    op: String,
    #[serde(default)]
    t: Option<String>,
    #[serde(default)]
    d: Option<Value>,
    #[serde(default)]
    s: Option<u64>,
}

fn payload<T: serde::de::DeserializeOwned>(name: &str, d: Option<Value>) -> Result<T, DecodeError> {
    serde_json::from_value(d.unwrap_or(Value::Null)).map_err(|source| DecodeError::Payload {
        name: name.to_string(),
        source,
    })
}

impl ServerMessage {
    /// Reads one frame (the text of a text frame, or one decompressed message).
    ///
    /// # Errors
    /// The frame is not JSON, has no string `op`, is a DISPATCH without `t`, or the
    /// payload of a known op or event does not have the contract's shape.
    pub fn from_slice(frame: &[u8]) -> Result<Self, DecodeError> {
        let raw: RawFrame = serde_json::from_slice(frame).map_err(DecodeError::Frame)?;
        Ok(match Op::from_name(&raw.op) {
            Some(Op::Dispatch) => {
                let name = raw.t.ok_or(DecodeError::MissingName)?;
                Self::Dispatch {
                    seq: raw.s,
                    event: GatewayEvent::from_parts(&name, raw.d.unwrap_or(Value::Null))?,
                }
            }
            Some(Op::HeartbeatAck) => Self::HeartbeatAck,
            Some(Op::Hello) => Self::Hello(payload("HELLO", raw.d)?),
            Some(Op::InvalidSession) => Self::InvalidSession(payload("INVALID_SESSION", raw.d)?),
            Some(Op::Reconnect) => Self::Reconnect,
            Some(Op::Error) => Self::Error(payload("ERROR", raw.d)?),
            _ => Self::Other {
                op: raw.op,
                d: raw.d,
            },
        })
    }

    /// The frame as the server writes it (`t`/`d`/`s` omitted where absent).
    ///
    /// # Errors
    /// Only if a payload cannot be serialized (never for this crate's types).
    pub fn to_value(&self) -> Result<Value, serde_json::Error> {
        let mut frame = serde_json::Map::new();
        let mut put = |key: &str, value: Value| {
            frame.insert(key.to_string(), value);
        };
        match self {
            Self::Dispatch { seq, event } => {
                put("op", Value::from(Op::Dispatch.as_str()));
                put("t", Value::from(event.name()));
                put("d", event.payload()?);
                if let Some(seq) = seq {
                    put("s", Value::from(*seq));
                }
            }
            Self::HeartbeatAck => put("op", Value::from(Op::HeartbeatAck.as_str())),
            Self::Hello(hello) => {
                put("op", Value::from(Op::Hello.as_str()));
                put("d", serde_json::to_value(hello)?);
            }
            Self::InvalidSession(invalid) => {
                put("op", Value::from(Op::InvalidSession.as_str()));
                put("d", serde_json::to_value(invalid)?);
            }
            Self::Reconnect => put("op", Value::from(Op::Reconnect.as_str())),
            Self::Error(error) => {
                put("op", Value::from(Op::Error.as_str()));
                put("d", serde_json::to_value(error)?);
            }
            Self::Other { op, d } => {
                put("op", Value::from(op.as_str()));
                if let Some(d) = d {
                    put("d", d.clone());
                }
            }
        }
        Ok(Value::Object(frame))
    }
}

/// A server → client event (`op = DISPATCH`), typed by its name `t`.
///
/// Large payloads are boxed so that the enum stays small.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum GatewayEvent {
    /// `READY`: the first event of a session.
    Ready(Box<Ready>),
    /// `MESSAGE_CREATE`.
    MessageCreate(Box<Message>),
    /// `MESSAGE_UPDATE`.
    MessageUpdate(Box<Message>),
    /// `MESSAGE_DELETE`.
    MessageDelete(MessageDelete),
    /// `THREAD_MESSAGE_CREATE`.
    ThreadMessageCreate(Box<Message>),
    /// `PRESENCE_UPDATE`.
    PresenceUpdate(PresenceUpdate),
    /// `TYPING_START`.
    TypingStart(TypingStart),
    /// `VOICE_STATE_UPDATE`.
    VoiceStateUpdate(VoiceParticipant),
    /// `VOICE_SIGNAL`.
    VoiceSignal(VoiceSignal),
    /// `DM_CHANNEL_CREATE`.
    DmChannelCreate(Box<DmChannel>),
    /// `DM_MESSAGE_CREATE`.
    DmMessageCreate(DirectMessage),
    /// `REACTION_ADD`.
    ReactionAdd(ReactionEvent),
    /// `REACTION_REMOVE`.
    ReactionRemove(ReactionEvent),
    /// `POLL_VOTE`.
    PollVote(Box<PollVote>),
    /// `MESSAGE_PIN`.
    MessagePin(MessagePin),
    /// `MESSAGE_UNPIN`.
    MessageUnpin(MessageUnpin),
    /// `MEMBER_KICK`.
    MemberKick(MemberRemoval),
    /// `MEMBER_BAN`.
    MemberBan(MemberRemoval),
    /// `MEMBER_UNBAN`.
    MemberUnban(ModeratedMember),
    /// `MEMBER_TIMEOUT`.
    MemberTimeout(MemberTimeout),
    /// `MEMBER_TIMEOUT_REMOVE`.
    MemberTimeoutRemove(ModeratedMember),
    /// `CUSTOM_EMOJI_CREATE`.
    CustomEmojiCreate(CustomEmoji),
    /// `CUSTOM_EMOJI_DELETE`.
    CustomEmojiDelete(CustomEmojiDelete),
    /// `GO_LIVE_START`.
    GoLiveStart(GoLiveInfo),
    /// `GO_LIVE_STOP`.
    GoLiveStop(GoLiveStop),
    /// `ROLE_CREATE`.
    RoleCreate(Role),
    /// `ROLE_UPDATE`.
    RoleUpdate(Role),
    /// `ROLE_DELETE`.
    RoleDelete(RoleDelete),
    /// `MEMBER_ROLE_ADD`.
    MemberRoleAdd(MemberRoleChange),
    /// `MEMBER_ROLE_REMOVE`.
    MemberRoleRemove(MemberRoleChange),
    /// `INVITE_CREATE`.
    InviteCreate(Invite),
    /// `INVITE_DELETE`.
    InviteDelete(InviteDelete),
    /// `CHANNEL_OVERRIDE_UPDATE`.
    ChannelOverrideUpdate(ChannelOverride),
    /// `CHANNEL_OVERRIDE_DELETE`.
    ChannelOverrideDelete(OverrideDelete),
    /// v2 `RESUMED`: the replay after a RESUME is complete.
    Resumed(Resumed),
    /// v2 `SERVER_UPDATE`.
    ServerUpdate(ServerDto),
    /// v2 `SERVER_DELETE`.
    ServerDelete(ServerDelete),
    /// v2 `CHANNEL_CREATE`.
    ChannelCreate(Channel),
    /// v2 `CHANNEL_UPDATE`.
    ChannelUpdate(Channel),
    /// v2 `CHANNEL_DELETE`.
    ChannelDelete(ChannelDelete),
    /// v2 `MEMBER_JOIN`.
    MemberJoin(MemberChange),
    /// v2 `MEMBER_LEAVE`.
    MemberLeave(MemberChange),
    /// v2 `USER_UPDATE`.
    UserUpdate(Box<User>),
    /// v2 `MEDIA_STARTED`.
    MediaStarted(MediaStarted),
    /// v2 `MEDIA_ENDED`.
    MediaEnded(MediaEnded),
    /// An event this crate does not know (a newer server's, or `TYPING_STOP`, which
    /// is reserved and never sent): its name and payload as sent.
    Unknown {
        /// `t`.
        name: String,
        /// `d` (null when absent).
        raw: Value,
    },
}

impl GatewayEvent {
    /// Types the payload `d` of the event named `name`. An unknown name is
    /// [`GatewayEvent::Unknown`], never an error.
    ///
    /// # Errors
    /// A known event whose payload does not have the contract's shape.
    pub fn from_parts(name: &str, d: Value) -> Result<Self, DecodeError> {
        let Some(event) = Event::from_name(name) else {
            return Ok(Self::Unknown {
                name: name.to_string(),
                raw: d,
            });
        };
        let d = Some(d);
        Ok(match event {
            Event::Ready => Self::Ready(payload(name, d)?),
            Event::MessageCreate => Self::MessageCreate(payload(name, d)?),
            Event::MessageUpdate => Self::MessageUpdate(payload(name, d)?),
            Event::MessageDelete => Self::MessageDelete(payload(name, d)?),
            Event::ThreadMessageCreate => Self::ThreadMessageCreate(payload(name, d)?),
            Event::PresenceUpdate => Self::PresenceUpdate(payload(name, d)?),
            Event::TypingStart => Self::TypingStart(payload(name, d)?),
            Event::VoiceStateUpdate => Self::VoiceStateUpdate(payload(name, d)?),
            Event::VoiceSignal => Self::VoiceSignal(payload(name, d)?),
            Event::DmChannelCreate => Self::DmChannelCreate(payload(name, d)?),
            Event::DmMessageCreate => Self::DmMessageCreate(payload(name, d)?),
            Event::ReactionAdd => Self::ReactionAdd(payload(name, d)?),
            Event::ReactionRemove => Self::ReactionRemove(payload(name, d)?),
            Event::PollVote => Self::PollVote(payload(name, d)?),
            Event::MessagePin => Self::MessagePin(payload(name, d)?),
            Event::MessageUnpin => Self::MessageUnpin(payload(name, d)?),
            Event::MemberKick => Self::MemberKick(payload(name, d)?),
            Event::MemberBan => Self::MemberBan(payload(name, d)?),
            Event::MemberUnban => Self::MemberUnban(payload(name, d)?),
            Event::MemberTimeout => Self::MemberTimeout(payload(name, d)?),
            Event::MemberTimeoutRemove => Self::MemberTimeoutRemove(payload(name, d)?),
            Event::CustomEmojiCreate => Self::CustomEmojiCreate(payload(name, d)?),
            Event::CustomEmojiDelete => Self::CustomEmojiDelete(payload(name, d)?),
            Event::GoLiveStart => Self::GoLiveStart(payload(name, d)?),
            Event::GoLiveStop => Self::GoLiveStop(payload(name, d)?),
            Event::RoleCreate => Self::RoleCreate(payload(name, d)?),
            Event::RoleUpdate => Self::RoleUpdate(payload(name, d)?),
            Event::RoleDelete => Self::RoleDelete(payload(name, d)?),
            Event::MemberRoleAdd => Self::MemberRoleAdd(payload(name, d)?),
            Event::MemberRoleRemove => Self::MemberRoleRemove(payload(name, d)?),
            Event::InviteCreate => Self::InviteCreate(payload(name, d)?),
            Event::InviteDelete => Self::InviteDelete(payload(name, d)?),
            Event::ChannelOverrideUpdate => Self::ChannelOverrideUpdate(payload(name, d)?),
            Event::ChannelOverrideDelete => Self::ChannelOverrideDelete(payload(name, d)?),
            Event::Resumed => Self::Resumed(payload(name, d)?),
            Event::ServerUpdate => Self::ServerUpdate(payload(name, d)?),
            Event::ServerDelete => Self::ServerDelete(payload(name, d)?),
            Event::ChannelCreate => Self::ChannelCreate(payload(name, d)?),
            Event::ChannelUpdate => Self::ChannelUpdate(payload(name, d)?),
            Event::ChannelDelete => Self::ChannelDelete(payload(name, d)?),
            Event::MemberJoin => Self::MemberJoin(payload(name, d)?),
            Event::MemberLeave => Self::MemberLeave(payload(name, d)?),
            Event::UserUpdate => Self::UserUpdate(payload(name, d)?),
            Event::MediaStarted => Self::MediaStarted(payload(name, d)?),
            Event::MediaEnded => Self::MediaEnded(payload(name, d)?),
        })
    }

    /// The event's name, if this crate knows it (`None` for
    /// [`GatewayEvent::Unknown`]).
    pub fn event(&self) -> Option<Event> {
        Some(match self {
            Self::Ready(_) => Event::Ready,
            Self::MessageCreate(_) => Event::MessageCreate,
            Self::MessageUpdate(_) => Event::MessageUpdate,
            Self::MessageDelete(_) => Event::MessageDelete,
            Self::ThreadMessageCreate(_) => Event::ThreadMessageCreate,
            Self::PresenceUpdate(_) => Event::PresenceUpdate,
            Self::TypingStart(_) => Event::TypingStart,
            Self::VoiceStateUpdate(_) => Event::VoiceStateUpdate,
            Self::VoiceSignal(_) => Event::VoiceSignal,
            Self::DmChannelCreate(_) => Event::DmChannelCreate,
            Self::DmMessageCreate(_) => Event::DmMessageCreate,
            Self::ReactionAdd(_) => Event::ReactionAdd,
            Self::ReactionRemove(_) => Event::ReactionRemove,
            Self::PollVote(_) => Event::PollVote,
            Self::MessagePin(_) => Event::MessagePin,
            Self::MessageUnpin(_) => Event::MessageUnpin,
            Self::MemberKick(_) => Event::MemberKick,
            Self::MemberBan(_) => Event::MemberBan,
            Self::MemberUnban(_) => Event::MemberUnban,
            Self::MemberTimeout(_) => Event::MemberTimeout,
            Self::MemberTimeoutRemove(_) => Event::MemberTimeoutRemove,
            Self::CustomEmojiCreate(_) => Event::CustomEmojiCreate,
            Self::CustomEmojiDelete(_) => Event::CustomEmojiDelete,
            Self::GoLiveStart(_) => Event::GoLiveStart,
            Self::GoLiveStop(_) => Event::GoLiveStop,
            Self::RoleCreate(_) => Event::RoleCreate,
            Self::RoleUpdate(_) => Event::RoleUpdate,
            Self::RoleDelete(_) => Event::RoleDelete,
            Self::MemberRoleAdd(_) => Event::MemberRoleAdd,
            Self::MemberRoleRemove(_) => Event::MemberRoleRemove,
            Self::InviteCreate(_) => Event::InviteCreate,
            Self::InviteDelete(_) => Event::InviteDelete,
            Self::ChannelOverrideUpdate(_) => Event::ChannelOverrideUpdate,
            Self::ChannelOverrideDelete(_) => Event::ChannelOverrideDelete,
            Self::Resumed(_) => Event::Resumed,
            Self::ServerUpdate(_) => Event::ServerUpdate,
            Self::ServerDelete(_) => Event::ServerDelete,
            Self::ChannelCreate(_) => Event::ChannelCreate,
            Self::ChannelUpdate(_) => Event::ChannelUpdate,
            Self::ChannelDelete(_) => Event::ChannelDelete,
            Self::MemberJoin(_) => Event::MemberJoin,
            Self::MemberLeave(_) => Event::MemberLeave,
            Self::UserUpdate(_) => Event::UserUpdate,
            Self::MediaStarted(_) => Event::MediaStarted,
            Self::MediaEnded(_) => Event::MediaEnded,
            Self::Unknown { .. } => return None,
        })
    }

    /// The wire name `t`.
    pub fn name(&self) -> &str {
        match self {
            Self::Unknown { name, .. } => name,
            known => known.event().map_or("", Event::as_str),
        }
    }

    /// The payload `d` as the server serializes it.
    ///
    /// # Errors
    /// Only if a payload cannot be serialized (never for this crate's types).
    pub fn payload(&self) -> Result<Value, serde_json::Error> {
        fn to<T: Serialize + ?Sized>(value: &T) -> Result<Value, serde_json::Error> {
            serde_json::to_value(value)
        }
        match self {
            Self::Ready(d) => to(d),
            Self::MessageCreate(d) | Self::MessageUpdate(d) | Self::ThreadMessageCreate(d) => to(d),
            Self::MessageDelete(d) => to(d),
            Self::PresenceUpdate(d) => to(d),
            Self::TypingStart(d) => to(d),
            Self::VoiceStateUpdate(d) => to(d),
            Self::VoiceSignal(d) => to(d),
            Self::DmChannelCreate(d) => to(d),
            Self::DmMessageCreate(d) => to(d),
            Self::ReactionAdd(d) | Self::ReactionRemove(d) => to(d),
            Self::PollVote(d) => to(d),
            Self::MessagePin(d) => to(d),
            Self::MessageUnpin(d) => to(d),
            Self::MemberKick(d) | Self::MemberBan(d) => to(d),
            Self::MemberUnban(d) | Self::MemberTimeoutRemove(d) => to(d),
            Self::MemberTimeout(d) => to(d),
            Self::CustomEmojiCreate(d) => to(d),
            Self::CustomEmojiDelete(d) => to(d),
            Self::GoLiveStart(d) => to(d),
            Self::GoLiveStop(d) => to(d),
            Self::RoleCreate(d) | Self::RoleUpdate(d) => to(d),
            Self::RoleDelete(d) => to(d),
            Self::MemberRoleAdd(d) | Self::MemberRoleRemove(d) => to(d),
            Self::InviteCreate(d) => to(d),
            Self::InviteDelete(d) => to(d),
            Self::ChannelOverrideUpdate(d) => to(d),
            Self::ChannelOverrideDelete(d) => to(d),
            Self::Resumed(d) => to(d),
            Self::ServerUpdate(d) => to(d),
            Self::ServerDelete(d) => to(d),
            Self::ChannelCreate(d) | Self::ChannelUpdate(d) => to(d),
            Self::ChannelDelete(d) => to(d),
            Self::MemberJoin(d) | Self::MemberLeave(d) => to(d),
            Self::UserUpdate(d) => to(d),
            Self::MediaStarted(d) => to(d),
            Self::MediaEnded(d) => to(d),
            Self::Unknown { raw, .. } => Ok(raw.clone()),
        }
    }
}
