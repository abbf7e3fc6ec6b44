//! Go Live: one screen-sharing broadcaster per voice channel (`rest.md` §6, §7.18).

use serde::{Deserialize, Serialize};

use crate::{ChannelId, Timestamp, UserId};

/// The quality a broadcaster announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub enum GoLiveQuality {
    /// 480p.
    #[serde(rename = "480p")]
    Low,
    /// 720p (the default).
    #[default]
    #[serde(rename = "720p")]
    Medium,
    /// 1080p.
    #[serde(rename = "1080p")]
    High,
}

impl GoLiveQuality {
    /// The wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Low => "480p",
            Self::Medium => "720p",
            Self::High => "1080p",
        }
    }

    /// The quality spelled `text`, if any.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Low, Self::Medium, Self::High]
            .into_iter()
            .find(|q| q.as_str() == text)
    }
}

/// `POST /channels/{channel_id}/go-live`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GoLiveSession {
    /// Who is live.
    pub broadcaster_id: UserId,
    /// Announced quality.
    pub quality: GoLiveQuality,
    /// When this session (or its latest restart) began.
    pub started_at: Timestamp,
}

/// A live session with its channel (`GET /channels/{channel_id}/go-live`,
/// `GO_LIVE_START`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GoLiveInfo {
    /// The voice channel.
    pub channel_id: ChannelId,
    /// The session.
    #[serde(flatten)]
    pub session: GoLiveSession,
}

/// `POST /channels/{channel_id}/go-live`'s body: a JSON object, `{}` allowed. The
/// quality is a string so that an unknown one is a 400, as in the reference.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StartGoLive {
    /// `480p`, `720p` or `1080p`; absent or null is `720p`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<GoLiveQuality>))]
    pub quality: Option<String>,
}

/// `GO_LIVE_STOP`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoLiveStop {
    /// The voice channel.
    pub channel_id: ChannelId,
    /// Who was live.
    pub broadcaster_id: UserId,
}
