//! What both backends do alike once the rows are read: orderings the READY and
//! directory reads promise, de-duplication, and the text forms of stored enums.

use concord_protocol::{ChannelOverride, ChannelType, Role, Status};

use crate::{StoreError, StoreResult};

/// By server, then position DESC within each.
pub(crate) fn sort_roles(roles: &mut [Role]) {
    roles.sort_by_key(|r| {
        (
            r.server_id,
            std::cmp::Reverse(r.position),
            r.created_at,
            r.id,
        )
    });
}

/// By channel.
pub(crate) fn sort_overrides(overrides: &mut [ChannelOverride]) {
    overrides.sort_by_key(|ov| (ov.channel_id, ov.id));
}

/// `items` without repeats, first occurrence kept.
pub(crate) fn dedup<T: Copy + Eq + std::hash::Hash>(items: &[T]) -> Vec<T> {
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    items
        .iter()
        .copied()
        .filter(|item| seen.insert(*item))
        .collect()
}

/// A stored status (`col` names the column when it is not one).
pub(crate) fn parse_status(text: &str, col: &'static str) -> StoreResult<Status> {
    Status::parse(text).ok_or(StoreError::Corrupt(col))
}

/// A stored channel type (`col` names the column when it is not one).
pub(crate) fn parse_channel_type(text: &str, col: &'static str) -> StoreResult<ChannelType> {
    match text {
        "text" => Ok(ChannelType::Text),
        "voice" => Ok(ChannelType::Voice),
        _ => Err(StoreError::Corrupt(col)),
    }
}
