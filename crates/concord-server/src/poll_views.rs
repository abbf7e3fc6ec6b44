//! Polls as each user sees them. A poll's `user_vote` is the *requesting* user's
//! choice (`rest.md` §6), so every answer that carries a poll fills it in for the
//! caller, and every event that carries one is sent with each recipient's own choice
//! (`gateway.md` D15): one frame per distinct choice, not one per recipient.

use std::collections::HashMap;

use concord_protocol::{Event, Message, Poll, PollId, PollOptionId, UserId};
use serde::Serialize;

use crate::{bus::Audience, error::ApiResult, state::AppState};

/// Sets the `user_vote` of every poll among `messages` to `user`'s choice (one store
/// read, and none when no message carries a poll).
///
/// # Errors
/// Store failures.
pub async fn fill_user_votes(
    state: &AppState,
    user: UserId,
    messages: &mut [Message],
) -> ApiResult<()> {
    let polls: Vec<PollId> = messages
        .iter()
        .filter_map(|m| m.poll.as_ref().map(|p| p.id))
        .collect();
    if polls.is_empty() {
        return Ok(());
    }
    let chosen: HashMap<PollId, PollOptionId> = state
        .store
        .user_votes(user, &polls)
        .await?
        .into_iter()
        .collect();
    for poll in messages.iter_mut().filter_map(|m| m.poll.as_mut()) {
        poll.user_vote = chosen.get(&poll.id).copied();
    }
    Ok(())
}

/// [`fill_user_votes`] of one message.
///
/// # Errors
/// Store failures.
pub async fn fill_user_vote(
    state: &AppState,
    user: UserId,
    message: &mut Message,
) -> ApiResult<()> {
    fill_user_votes(state, user, std::slice::from_mut(message)).await
}

/// `poll` as `user` sees it, given every ballot of the poll.
pub fn as_seen_by(poll: &Poll, user: UserId, ballots: &[(UserId, PollOptionId)]) -> Poll {
    Poll {
        user_vote: ballots
            .iter()
            .find(|(voter, _)| *voter == user)
            .map(|(_, option)| *option),
        ..poll.clone()
    }
}

/// Publishes event `t` to `audience` with the payload `build` makes for each choice:
/// `build(None)` for recipients who did not vote, `build(Some(option))` for those who
/// chose `option` according to `ballots`.
pub fn dispatch_by_vote<T: Serialize>(
    state: &AppState,
    audience: Audience,
    t: Event,
    ballots: &[(UserId, PollOptionId)],
    build: impl Fn(Option<PollOptionId>) -> T,
) {
    let mut voters: Vec<(PollOptionId, Vec<UserId>)> = Vec::new();
    for &(user, option) in ballots {
        match voters.iter_mut().find(|(o, _)| *o == option) {
            Some((_, users)) => users.push(user),
            None => voters.push((option, vec![user])),
        }
    }
    let variants = voters
        .into_iter()
        .map(|(option, users)| (users, build(Some(option))))
        .collect();
    state
        .events
        .dispatch_each(audience, t, &build(None), variants);
}

/// Publishes a message event to the channel's viewers. A message that carries a poll
/// with votes goes out with each viewer's own `user_vote` (reading the poll's ballots
/// once); any other message is one payload for all.
///
/// Called after the message was written: should the ballots not be readable, the
/// event still goes out, with no one's vote in it, rather than not at all.
pub async fn dispatch_message(state: &AppState, t: Event, message: &Message) {
    let audience = Audience::Channel(message.channel_id);
    let mut anyone = message.clone();
    let voted = match anyone.poll.as_mut() {
        Some(poll) => {
            poll.user_vote = None;
            poll.total_votes > 0
        }
        None => false,
    };
    if !voted {
        state.events.dispatch(audience, t, &anyone);
        return;
    }
    let Some(poll) = anyone.poll.take() else {
        return;
    };
    match state.store.poll_ballots(poll.id).await {
        Ok(ballots) => dispatch_by_vote(state, audience, t, &ballots, |user_vote| Message {
            poll: Some(Poll {
                user_vote,
                ..poll.clone()
            }),
            ..anyone.clone()
        }),
        Err(err) => {
            tracing::error!(error = %err, poll = %poll.id, "poll ballots unreadable; event sent without votes");
            anyone.poll = Some(poll);
            state.events.dispatch(audience, t, &anyone);
        }
    }
}
