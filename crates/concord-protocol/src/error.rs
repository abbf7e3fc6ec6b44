//! The REST error body and gateway close codes.

use serde::{Deserialize, Serialize};

/// Every REST error answers with this body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// 1008: policy: queue overflow (v1), revoked or disabled principal, abuse.
    Policy,
    /// 1009: frame too big.
    TooBig,
    /// 1011: READY could not be built, internal error.
    Internal,
}

impl CloseCode {
    /// The numeric code.
    pub const fn code(self) -> u16 {
        match self {
            Self::Normal => 1000,
            Self::GoingAway => 1001,
            Self::Policy => 1008,
            Self::TooBig => 1009,
            Self::Internal => 1011,
        }
    }
}
