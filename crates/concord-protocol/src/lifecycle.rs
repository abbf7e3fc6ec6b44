//! Payloads of the v2 lifecycle events (`extensions.md`, "Events v2 adds") that are not
//! a REST DTO as they are: `SERVER_UPDATE`, `CHANNEL_CREATE`, `CHANNEL_UPDATE` and
//! `USER_UPDATE` carry `ServerDto`, `Channel` and `User` unchanged.

use serde::{Deserialize, Serialize};

use crate::{ChannelId, PublicProfile, ServerId};

/// `SERVER_DELETE`: deletes carry `{id, server_id}` (`extensions.md`); for a server
/// both name it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerDelete {
    /// The deleted server.
    pub id: ServerId,
    /// The same id, as every delete event names its server.
    pub server_id: ServerId,
}

/// `CHANNEL_DELETE`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelDelete {
    /// The deleted channel.
    pub id: ChannelId,
    /// Its server.
    pub server_id: ServerId,
}

/// `MEMBER_JOIN` and `MEMBER_LEAVE`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberChange {
    /// The server joined or left.
    pub server_id: ServerId,
    /// Who joined or left, as any user may see them.
    pub user: PublicProfile,
}
