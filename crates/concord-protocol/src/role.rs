//! Request bodies and event payloads of roles, role assignments and channel permission
//! overrides (`rest.md` §7.12, §7.13; `gateway.md` §7). The `Role` and
//! `ChannelOverride` DTOs themselves live with the server types.

use serde::{Deserialize, Serialize};

use crate::{ChannelId, OverrideId, RoleId, ServerId, UserId};

/// `POST /servers/{id}/roles` (strict: unknown keys are refused).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateRole {
    /// 1–100 bytes of UTF-8.
    pub name: String,
    /// Permission bits, 0..=32767 (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 32767))]
    pub permissions: Option<i64>,
    /// Colour, any text (no format is enforced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// Position (default: one above the highest role of the server, 1 for the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<i64>,
}

/// `PATCH /servers/{id}/roles/{role_id}` (strict). Absent and `null` both leave a
/// field as it is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateRole {
    /// 1–100 bytes of UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Permission bits, 0..=32767.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 32767))]
    pub permissions: Option<i64>,
    /// Colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// Position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<i64>,
}

/// `ROLE_DELETE`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleDelete {
    /// The role's server.
    pub server_id: ServerId,
    /// The deleted role.
    pub role_id: RoleId,
}

/// `MEMBER_ROLE_ADD` and `MEMBER_ROLE_REMOVE`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberRoleChange {
    /// The server.
    pub server_id: ServerId,
    /// The member who gained or lost the role.
    pub user_id: UserId,
    /// The role.
    pub role_id: RoleId,
    /// Its name.
    pub role_name: String,
    /// Its colour.
    pub role_color: Option<String>,
}

/// `PUT /channels/{channel_id}/overrides` (strict): exactly one of `role_id` and
/// `user_id`; `allow` and `deny` disjoint, each 0..=32767.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PutOverride {
    /// A role of the channel's server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_id: Option<RoleId>,
    /// A member of the channel's server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    /// Bits granted on this channel.
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 32767))]
    pub allow: i64,
    /// Bits taken away on this channel.
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 32767))]
    pub deny: i64,
}

/// `CHANNEL_OVERRIDE_DELETE`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverrideDelete {
    /// The channel.
    pub channel_id: ChannelId,
    /// The deleted override.
    pub override_id: OverrideId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_bodies_refuse_unknown_keys_and_take_null_as_absent() {
        let body: CreateRole = serde_json::from_str(r#"{"name":"mods","color":null}"#).unwrap();
        assert_eq!(body.name, "mods");
        assert_eq!(
            (body.permissions, body.color, body.position),
            (None, None, None)
        );
        assert!(serde_json::from_str::<CreateRole>(r#"{"name":"mods","extra":1}"#).is_err());
        assert!(serde_json::from_str::<CreateRole>(r#"{"permissions":1}"#).is_err());
        let patch: UpdateRole = serde_json::from_str(r#"{"position":null}"#).unwrap();
        assert_eq!(patch, UpdateRole::default());
        assert!(serde_json::from_str::<UpdateRole>(r#"{"hoist":true}"#).is_err());
        let put: PutOverride = serde_json::from_str(r#"{"allow":1,"deny":2}"#).unwrap();
        assert_eq!((put.role_id, put.user_id), (None, None));
        assert!(serde_json::from_str::<PutOverride>(r#"{"allow":1}"#).is_err());
        assert!(serde_json::from_str::<PutOverride>(r#"{"allow":1,"deny":0,"x":0}"#).is_err());
    }

    #[test]
    fn event_payloads_keep_null_keys() {
        let change = MemberRoleChange {
            server_id: ServerId::new(),
            user_id: UserId::new(),
            role_id: RoleId::new(),
            role_name: "mods".into(),
            role_color: None,
        };
        let value = serde_json::to_value(&change).unwrap();
        assert_eq!(value["role_color"], serde_json::Value::Null);
        assert_eq!(value.as_object().unwrap().len(), 5);
    }
}
