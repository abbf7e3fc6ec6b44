//! Protocol v2 payloads (`extensions.md`): the handshake, errors and intents.

use serde::{Deserialize, Serialize};

/// The event groups a v2 session may ask for in IDENTIFY (`intents`). A bit set; an
/// unknown group name is an invalid IDENTIFY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Intents(u8);

impl Intents {
    /// MESSAGE_*, THREAD_MESSAGE_CREATE, DM_*.
    pub const MESSAGES: Self = Self(1);
    /// Reactions (REACTION_*).
    pub const REACTIONS: Self = Self(1 << 1);
    /// TYPING_START.
    pub const TYPING: Self = Self(1 << 2);
    /// PRESENCE_UPDATE.
    pub const PRESENCE: Self = Self(1 << 3);
    /// VOICE_STATE_UPDATE, VOICE_SIGNAL.
    pub const VOICE: Self = Self(1 << 4);
    /// MEMBER_*.
    pub const MEMBERS: Self = Self(1 << 5);
    /// Lifecycle: SERVER_*, CHANNEL_*, USER_UPDATE.
    pub const SERVERS: Self = Self(1 << 6);
    /// Every group: what a session gets without `intents`.
    pub const ALL: Self = Self(0x7f);
    /// No group.
    pub const NONE: Self = Self(0);

    const NAMES: [(&'static str, Self); 7] = [
        ("messages", Self::MESSAGES),
        ("reactions", Self::REACTIONS),
        ("typing", Self::TYPING),
        ("presence", Self::PRESENCE),
        ("voice", Self::VOICE),
        ("members", Self::MEMBERS),
        ("servers", Self::SERVERS),
    ];

    /// The group named `name` (`messages`, `reactions`, `typing`, `presence`, `voice`,
    /// `members`, `servers`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, bit)| *bit)
    }

    /// The set named by a list of group names.
    ///
    /// # Errors
    /// The first name that is not a group.
    pub fn from_names<'a, I: IntoIterator<Item = &'a str>>(names: I) -> Result<Self, &'a str> {
        names.into_iter().try_fold(Self::NONE, |set, name| {
            Self::from_name(name).map(|bit| set | bit).ok_or(name)
        })
    }

    /// The names of the groups in this set.
    pub fn names(self) -> Vec<&'static str> {
        Self::NAMES
            .iter()
            .filter(|(_, bit)| self.contains(*bit))
            .map(|(name, _)| *name)
            .collect()
    }

    /// Whether every group of `other` is in this set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the two sets share a group.
    pub const fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }

    /// The raw bits.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// The set of these bits (unknown bits dropped).
    pub const fn from_bits(bits: u8) -> Self {
        Self(bits & Self::ALL.0)
    }
}

impl std::ops::BitOr for Intents {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl Serialize for Intents {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.names().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Intents {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let names = Vec::<String>::deserialize(deserializer)?;
        Self::from_names(names.iter().map(String::as_str))
            .map_err(|name| serde::de::Error::custom(format!("unknown intent {name:?}")))
    }
}

/// `HELLO.d`: the first frame of every v2 connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Send a HEARTBEAT at least this often, in milliseconds (the first one after
    /// `heartbeat_interval × random(0..1)`).
    pub heartbeat_interval: u64,
    /// The id this connection's session gets if it IDENTIFYs (a RESUME keeps the id
    /// of the session it resumes).
    pub session_id: String,
}

/// `IDENTIFY.d`: authenticate after the upgrade. `token` wins over `bot_token`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Identify {
    /// An access JWT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// A bot token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_token: Option<String>,
    /// The event groups wanted; absent means every group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intents: Option<Intents>,
}

/// `RESUME.d`: take over a dropped session and get every event after `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    /// An access JWT of the session's user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// A bot token of the session's user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_token: Option<String>,
    /// The session to resume.
    pub session_id: String,
    /// The last sequence number the client received (0: none).
    pub seq: u64,
}

/// `INVALID_SESSION.d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidSession {
    /// Whether retrying the RESUME may succeed (Concord always says false: IDENTIFY).
    pub resumable: bool,
}

/// `RESUMED.d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resumed {
    /// How many events were replayed before this one.
    pub replayed: u64,
}

/// Why a v2 frame was refused (`ERROR.d.code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum ErrorCode {
    /// Not a JSON object with a string `op`.
    DecodeError,
    /// An `op` the server does not take from clients.
    UnknownOp,
    /// The `d` of a known op is missing fields or has the wrong types or values.
    InvalidPayload,
    /// Over the inbound rate limit; `retry_after` says when to send again.
    RateLimited,
    /// The command is not allowed (no permission, not in that channel, timed out).
    Forbidden,
    /// The command names something that does not exist.
    NotFound,
    /// A binary frame that is not an audio chunk, or an audio chunk outside a stream.
    BinaryNotAccepted,
    /// The audio stream's buffer is full: the chunk was dropped (send closer to real
    /// time, or `MEDIA_CLEAR`).
    AudioBufferFull,
}

impl ErrorCode {
    /// The wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::DecodeError => "DECODE_ERROR",
            Self::UnknownOp => "UNKNOWN_OP",
            Self::InvalidPayload => "INVALID_PAYLOAD",
            Self::RateLimited => "RATE_LIMITED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::BinaryNotAccepted => "BINARY_NOT_ACCEPTED",
            Self::AudioBufferFull => "AUDIO_BUFFER_FULL",
        }
    }
}

/// `ERROR.d`: the frame was refused; the connection stays open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayError {
    /// What went wrong.
    pub code: ErrorCode,
    /// For people, not for matching.
    pub message: String,
    /// With `RATE_LIMITED`: milliseconds until a frame would be accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// A v2 server frame that is not a dispatch: `{"op", "d"}`.
#[derive(Debug, Serialize)]
pub struct OpFrame<'a, T: Serialize + ?Sized> {
    /// The op.
    pub op: crate::Op,
    /// The payload.
    pub d: &'a T,
}
