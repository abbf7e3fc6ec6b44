//! Protocol v2: a session that gains or loses VIEW_CHANNEL on a channel is told, with
//! `CHANNEL_CREATE` or `CHANNEL_DELETE` (`extensions.md`, "Events v2 adds"); v1 sends
//! nothing (its clients learn visibility from the role and override events).

use std::collections::HashSet;

use concord_protocol::{ChannelDelete, ChannelId, Event, ServerId, UserId};

use crate::{access, bus::Audience, directory::DirectoryChange, state::AppState};

/// Publishes a change of roles, role assignments or overrides, then tells each user
/// who gained or lost VIEW_CHANNEL on a channel of it. Every handler that changes who
/// may view what publishes through here (a membership change is announced with
/// `MEMBER_*` instead).
///
/// The viewers before and after come from the directory, which applies the change as
/// it is published: no store read but the Channel bodies of channels someone gained.
pub async fn publish_permission_change(state: &AppState, change: DirectoryChange) {
    if let DirectoryChange::MemberRoleAdded { server, user, .. }
    | DirectoryChange::MemberRoleRemoved { server, user, .. } = &change
    {
        let (server, user) = (*server, *user);
        return publish_member_role_change(state, change, server, user).await;
    }
    let channels = match &change {
        DirectoryChange::OverrideUpserted(ov) => vec![ov.channel_id],
        DirectoryChange::OverrideDeleted { channel, .. } => vec![*channel],
        DirectoryChange::RoleUpserted { server, .. }
        | DirectoryChange::RoleDeleted { server, .. } => state.directory.channels_of(*server),
        _ => Vec::new(),
    };
    let before: Vec<_> = channels
        .iter()
        .map(|&channel| (channel, state.directory.viewers(channel)))
        .collect();
    state.events.change(change);
    for (channel, was) in before {
        let now = state.directory.viewers(channel);
        let (lost, gained) = difference(&was, &now);
        let Some(facts) = state.directory.channel(channel) else {
            continue;
        };
        if !lost.is_empty() {
            let gone = ChannelDelete {
                id: channel,
                server_id: facts.server,
            };
            state
                .events
                .dispatch(Audience::Users(lost), Event::ChannelDelete, &gone);
        }
        if !gained.is_empty() {
            announce_channel(state, channel, gained).await;
        }
    }
}

/// A role given to or taken from one member changes only that member's view: compare
/// their own permission on each channel of the server, not every member's.
async fn publish_member_role_change(
    state: &AppState,
    change: DirectoryChange,
    server: ServerId,
    user: UserId,
) {
    let channels = state.directory.channels_of(server);
    let before: Vec<bool> = channels
        .iter()
        .map(|&channel| access::can_view(state, channel, user))
        .collect();
    state.events.change(change);
    for (channel, was) in channels.into_iter().zip(before) {
        match (was, access::can_view(state, channel, user)) {
            (true, false) => {
                let gone = ChannelDelete {
                    id: channel,
                    server_id: server,
                };
                state
                    .events
                    .dispatch(Audience::Users(vec![user]), Event::ChannelDelete, &gone);
            }
            (false, true) => announce_channel(state, channel, vec![user]).await,
            _ => {}
        }
    }
}

/// Who is in `was` and not in `now`, and the other way round.
fn difference(was: &[UserId], now: &[UserId]) -> (Vec<UserId>, Vec<UserId>) {
    let was_set: HashSet<_> = was.iter().collect();
    let now_set: HashSet<_> = now.iter().collect();
    let lost = was
        .iter()
        .filter(|u| !now_set.contains(u))
        .copied()
        .collect();
    let gained = now
        .iter()
        .filter(|u| !was_set.contains(u))
        .copied()
        .collect();
    (lost, gained)
}

async fn announce_channel(state: &AppState, channel: ChannelId, users: Vec<UserId>) {
    match state.store.channel(channel).await {
        Ok(Some(body)) => {
            state
                .events
                .dispatch(Audience::Users(users), Event::ChannelCreate, &body);
        }
        Ok(None) => {}
        Err(err) => {
            tracing::error!(%channel, error = %err, "CHANNEL_CREATE for new viewers not sent")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn difference_is_both_ways() {
        let (a, b, c) = (UserId::new(), UserId::new(), UserId::new());
        let (lost, gained) = difference(&[a, b], &[b, c]);
        assert_eq!((lost, gained), (vec![a], vec![c]));
        assert_eq!(difference(&[a], &[a]), (vec![], vec![]));
    }
}
