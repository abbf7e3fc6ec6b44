//! The gateway envelope, opcodes and event names (`gateway.md` §2, §7).

use serde::{Deserialize, Serialize};

/// Opcodes of protocol v1. Clients' unknown ops make a frame unparseable (ignored).
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
        }
    }
}
