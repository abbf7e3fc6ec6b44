//! Permission bits and their resolution (`rest.md` §5). The one place where
//! "may this member do that" is computed; REST checks and fan-out filtering both call it.

/// A set of permission bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Permissions(pub i64);

impl Permissions {
    /// See a channel and read its messages.
    pub const VIEW_CHANNEL: Self = Self(1);
    /// Post in a channel.
    pub const SEND_MESSAGES: Self = Self(1 << 1);
    /// Pin and unpin.
    pub const MANAGE_MESSAGES: Self = Self(1 << 2);
    /// Upload attachments.
    pub const ATTACH_FILES: Self = Self(1 << 3);
    /// React.
    pub const ADD_REACTIONS: Self = Self(1 << 4);
    /// Join voice channels.
    pub const CONNECT_VOICE: Self = Self(1 << 5);
    /// Speak (never enforced).
    pub const SPEAK: Self = Self(1 << 6);
    /// Time members out.
    pub const MUTE_MEMBERS: Self = Self(1 << 7);
    /// Kick.
    pub const KICK_MEMBERS: Self = Self(1 << 8);
    /// Ban.
    pub const BAN_MEMBERS: Self = Self(1 << 9);
    /// Channel overrides.
    pub const MANAGE_CHANNELS: Self = Self(1 << 10);
    /// Roles.
    pub const MANAGE_ROLES: Self = Self(1 << 11);
    /// Passes every bit check; ignores overrides.
    pub const ADMINISTRATOR: Self = Self(1 << 13);
    /// Invites.
    pub const CREATE_INVITES: Self = Self(1 << 14);
    /// Every defined bit.
    pub const ALL: Self = Self(0x7FFF);
    /// What every member has at channel level without any role (123).
    pub const MEMBER_DEFAULTS: Self = Self(123);

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Union.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

/// One override as resolution needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverrideBits {
    /// Role target.
    pub role: Option<concord_protocol::RoleId>,
    /// User target.
    pub user: Option<concord_protocol::UserId>,
    /// Allowed bits.
    pub allow: i64,
    /// Denied bits.
    pub deny: i64,
}

/// Server-level permissions: owner → all; else the OR of the member's roles (no
/// implicit defaults, no overrides); ADMINISTRATOR expands to all.
pub fn server_level(is_owner: bool, role_bits: impl IntoIterator<Item = i64>) -> Permissions {
    if is_owner {
        return Permissions::ALL;
    }
    let bits = role_bits.into_iter().fold(0, |acc, b| acc | b);
    if bits & Permissions::ADMINISTRATOR.0 != 0 {
        Permissions::ALL
    } else {
        Permissions(bits)
    }
}

/// Channel-level permissions of `user` holding `roles` (with their bits), over the
/// channel's `overrides` (`rest.md` §5.2).
pub fn channel_level(
    is_owner: bool,
    user: concord_protocol::UserId,
    roles: &[(concord_protocol::RoleId, i64)],
    overrides: &[OverrideBits],
) -> Permissions {
    if is_owner {
        return Permissions::ALL;
    }
    let base = roles
        .iter()
        .fold(Permissions::MEMBER_DEFAULTS.0, |acc, (_, b)| acc | b);
    if base & Permissions::ADMINISTRATOR.0 != 0 {
        return Permissions::ALL;
    }
    let (mut role_allow, mut role_deny) = (0, 0);
    for ov in overrides {
        if let Some(role) = ov.role
            && roles.iter().any(|(r, _)| *r == role)
        {
            role_allow |= ov.allow;
            role_deny |= ov.deny;
        }
    }
    let mut bits = (base & !role_deny) | role_allow;
    if let Some(own) = overrides.iter().find(|ov| ov.user == Some(user)) {
        bits = (bits & !own.deny) | own.allow;
    }
    Permissions(bits & Permissions::ALL.0)
}

#[cfg(test)]
mod tests {
    use concord_protocol::{RoleId, UserId};

    use super::*;

    #[test]
    fn owner_and_admin_get_everything() {
        let user = UserId::new();
        assert_eq!(channel_level(true, user, &[], &[]), Permissions::ALL);
        let admin = [(RoleId::new(), Permissions::ADMINISTRATOR.0)];
        let deny_all = [OverrideBits {
            role: None,
            user: Some(user),
            allow: 0,
            deny: 0x7FFF,
        }];
        assert_eq!(
            channel_level(false, user, &admin, &deny_all),
            Permissions::ALL
        );
        assert_eq!(
            server_level(false, [Permissions::ADMINISTRATOR.0]),
            Permissions::ALL
        );
    }

    #[test]
    fn plain_member_has_defaults_at_channel_level_only() {
        let user = UserId::new();
        assert_eq!(
            channel_level(false, user, &[], &[]),
            Permissions::MEMBER_DEFAULTS
        );
        assert_eq!(server_level(false, []), Permissions(0));
    }

    #[test]
    fn role_allow_beats_role_deny_and_user_override_comes_last() {
        let user = UserId::new();
        let (r1, r2) = (RoleId::new(), RoleId::new());
        let roles = [(r1, 0), (r2, 0)];
        let view = Permissions::VIEW_CHANNEL.0;
        let overrides = [
            OverrideBits {
                role: Some(r1),
                user: None,
                allow: 0,
                deny: view,
            },
            OverrideBits {
                role: Some(r2),
                user: None,
                allow: view,
                deny: 0,
            },
        ];
        assert!(channel_level(false, user, &roles, &overrides).contains(Permissions::VIEW_CHANNEL));
        let mut with_user = overrides.to_vec();
        with_user.push(OverrideBits {
            role: None,
            user: Some(user),
            allow: 0,
            deny: view,
        });
        assert!(
            !channel_level(false, user, &roles, &with_user).contains(Permissions::VIEW_CHANNEL)
        );
    }

    #[test]
    fn overrides_of_roles_not_held_do_not_apply() {
        let user = UserId::new();
        let overrides = [OverrideBits {
            role: Some(RoleId::new()),
            user: None,
            allow: 0,
            deny: Permissions::VIEW_CHANNEL.0,
        }];
        assert!(channel_level(false, user, &[], &overrides).contains(Permissions::VIEW_CHANNEL));
    }
}
