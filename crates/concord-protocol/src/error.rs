//! The REST error body and gateway close codes.

use serde::{Deserialize, Serialize};

/// Every REST error answers with this body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// Human-readable reason; clients display it, never match on it.
    pub error: String,
}

/// WebSocket close codes Concord sends (`gateway.md` §6, `extensions.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseCode {
    /// 1000: normal (idle timeout in v1).
    Normal,
    /// 1001: server shutting down.
    GoingAway,
    /// 1002: the client broke the WebSocket protocol (RFC 6455 §7.4.1): reserved bits
    /// or opcodes, an unmasked frame, a fragmented or oversized control frame, a
    /// continuation out of place, a malformed close frame.
    ProtocolError,
    /// 1007: a text message that is not UTF-8.
    InvalidData,
    /// 1008: policy: queue overflow (v1), revoked or disabled principal, abuse.
    Policy,
    /// 1009: frame too big.
    TooBig,
    /// 1011: READY could not be built, internal error.
    Internal,
    /// 4003 (v2): no IDENTIFY or RESUME within 10 s of the upgrade.
    IdentifyTimeout,
    /// 4004 (v2): IDENTIFY or RESUME with an invalid or expired token. Do not retry
    /// with the same token.
    AuthenticationFailed,
    /// 4005 (v2): a second IDENTIFY (or RESUME) on an identified session. Do not
    /// retry as is.
    AlreadyAuthenticated,
    /// 4006 (v2): no heartbeat within 1.5 heartbeat intervals. Resumable.
    HeartbeatTimeout,
    /// 4008 (v2): still over the rate limit for three consecutive seconds. Resumable.
    RateLimited,
    /// 4009 (v2): the token expired or was revoked mid-session; reconnect with a fresh
    /// one.
    SessionExpired,
    /// 4013 (v2): the send queue overflowed: the client reads too slowly.
    SlowConsumer,
}

impl CloseCode {
    /// The numeric code.
    pub const fn code(self) -> u16 {
        match self {
            Self::Normal => 1000,
            Self::GoingAway => 1001,
            Self::ProtocolError => 1002,
            Self::InvalidData => 1007,
            Self::Policy => 1008,
            Self::TooBig => 1009,
            Self::Internal => 1011,
            Self::IdentifyTimeout => 4003,
            Self::AuthenticationFailed => 4004,
            Self::AlreadyAuthenticated => 4005,
            Self::HeartbeatTimeout => 4006,
            Self::RateLimited => 4008,
            Self::SessionExpired => 4009,
            Self::SlowConsumer => 4013,
        }
    }

    /// The code named by `code`, if Concord sends it.
    pub const fn from_code(code: u16) -> Option<Self> {
        Some(match code {
            1000 => Self::Normal,
            1001 => Self::GoingAway,
            1002 => Self::ProtocolError,
            1007 => Self::InvalidData,
            1008 => Self::Policy,
            1009 => Self::TooBig,
            1011 => Self::Internal,
            4003 => Self::IdentifyTimeout,
            4004 => Self::AuthenticationFailed,
            4005 => Self::AlreadyAuthenticated,
            4006 => Self::HeartbeatTimeout,
            4008 => Self::RateLimited,
            4009 => Self::SessionExpired,
            4013 => Self::SlowConsumer,
            _ => return None,
        })
    }

    /// Whether a client should reconnect after this close (`extensions.md`): every
    /// code but 4004 and 4005, which mean "do not retry as is".
    pub const fn may_reconnect(self) -> bool {
        !matches!(
            self,
            Self::AuthenticationFailed | Self::AlreadyAuthenticated
        )
    }
}
