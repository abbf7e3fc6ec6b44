//! Store records to wire DTOs, with the effective presence filled in.

use concord_protocol::{Member, PublicProfile, User};
use concord_store::{MemberDetail, UserRecord};

use crate::state::AppState;

/// A user as they see themselves.
pub fn self_user(state: &AppState, user: &UserRecord) -> User {
    User {
        id: user.id,
        username: user.username.clone(),
        email: user.email.clone(),
        avatar_url: user.avatar_url.clone(),
        bio: user.bio.clone(),
        pronouns: user.pronouns.clone(),
        status: state.presence.effective(user.id, user.status),
        custom_status: user.custom_status.clone(),
        activity: user.activity.clone(),
        created_at: user.created_at,
        is_admin: user.is_admin,
    }
}

/// A user in recipient form (DM channels): no email, no activity, never admin.
pub fn recipient_user(state: &AppState, user: &UserRecord) -> User {
    User {
        email: None,
        activity: None,
        is_admin: false,
        ..self_user(state, user)
    }
}

/// What anyone may see of a user.
pub fn public_profile(state: &AppState, user: &UserRecord) -> PublicProfile {
    PublicProfile {
        id: user.id,
        username: user.username.clone(),
        avatar_url: user.avatar_url.clone(),
        status: state.presence.effective(user.id, user.status),
        custom_status: user.custom_status.clone(),
        activity: user.activity.clone(),
        bio: user.bio.clone(),
        pronouns: user.pronouns.clone(),
        created_at: user.created_at,
    }
}

/// A server member.
pub fn member(state: &AppState, detail: MemberDetail) -> Member {
    Member {
        user_id: detail.user.id,
        status: state.presence.effective(detail.user.id, detail.user.status),
        username: detail.user.username,
        avatar_url: detail.user.avatar_url,
        custom_status: detail.user.custom_status,
        nickname: None,
        joined_at: detail.joined_at,
        roles: detail.roles,
    }
}
