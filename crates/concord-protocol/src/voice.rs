//! Voice state and ICE servers (`rest.md` §7.17, §7.19).

use serde::{Deserialize, Serialize};

use crate::{ChannelId, Timestamp, UserId};

/// A user's voice state; `channel_id`/`joined_at` null and all flags false means "left".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VoiceState {
    /// The user.
    pub user_id: UserId,
    /// Voice channel, null when left.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub channel_id: Option<ChannelId>,
    /// Self-muted.
    pub self_mute: bool,
    /// Self-deafened.
    pub self_deaf: bool,
    /// Camera on.
    pub self_video: bool,
    /// Sharing screen.
    pub self_screen: bool,
    /// Server-muted (no setter; always false).
    pub server_mute: bool,
    /// Server-deafened (no setter; always false).
    pub server_deaf: bool,
    /// Join time, null when left.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub joined_at: Option<Timestamp>,
}

impl VoiceState {
    /// The "left" form for `user`.
    pub fn left(user_id: UserId) -> Self {
        Self {
            user_id,
            channel_id: None,
            self_mute: false,
            self_deaf: false,
            self_video: false,
            self_screen: false,
            server_mute: false,
            server_deaf: false,
            joined_at: None,
        }
    }
}

/// A voice state with the user's name (REST list, `VOICE_STATE_UPDATE`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VoiceParticipant {
    /// The state.
    #[serde(flatten)]
    pub state: VoiceState,
    /// The user's name.
    pub username: String,
}

/// `PATCH /channels/{id}/voice` (strict: unknown keys are refused).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateVoice {
    /// Self-mute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_mute: Option<bool>,
    /// Self-deafen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_deaf: Option<bool>,
    /// Camera.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_video: Option<bool>,
    /// Screen share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_screen: Option<bool>,
}

/// One ICE server; `username`/`credential` are omitted (not null) when absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IceServer {
    /// One URL.
    pub urls: String,
    /// TURN user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub username: Option<String>,
    /// TURN credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub credential: Option<String>,
}

/// `GET /ice-servers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IceServers {
    /// The servers (camelCase key on the wire).
    #[serde(rename = "iceServers")]
    pub ice_servers: Vec<IceServer>,
    /// Lifetime of the credentials in seconds.
    pub ttl: i64,
}
