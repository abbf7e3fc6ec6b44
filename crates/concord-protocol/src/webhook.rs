//! Outbound webhooks (`rest-extras.md` §1, §9).

use serde::{Deserialize, Serialize};

use crate::{ServerId, Timestamp, UserId};

/// The event types a webhook may subscribe to, in the order error texts list them.
/// `member.joined` and `member.left` are accepted but never delivered (as in the
/// reference).
pub const WEBHOOK_EVENT_TYPES: [&str; 5] = [
    "message.created",
    "message.updated",
    "message.deleted",
    "member.joined",
    "member.left",
];

/// A webhook as its managers see it (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Webhook {
    /// Id.
    pub id: uuid::Uuid,
    /// The server whose events it receives.
    pub server_id: ServerId,
    /// Who created it.
    pub created_by: UserId,
    /// Display name (1–100 characters).
    pub name: String,
    /// Where deliveries are POSTed (`http://` or `https://`).
    pub url: String,
    /// The subscribed event types.
    pub event_types: Vec<String>,
    /// Whether events are delivered (a test ping is sent either way).
    pub enabled: bool,
    /// Deliveries that failed every attempt since the last success.
    pub delivery_failures: i64,
    /// The last successful delivery.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub last_used_at: Option<Timestamp>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change through the API.
    pub updated_at: Timestamp,
}

/// The answer to `POST /servers/{id}/webhooks`: the webhook and its signing secret,
/// shown this once. `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookCreated {
    /// The new webhook.
    pub webhook: Webhook,
    /// The HMAC-SHA256 key of `X-Together-Signature-256` (64 lowercase hex digits).
    pub secret: String,
}

impl std::fmt::Debug for WebhookCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookCreated")
            .field("webhook", &self.webhook)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// `GET /servers/{id}/webhooks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookList {
    /// The server's webhooks, oldest first.
    pub webhooks: Vec<Webhook>,
}

/// Body of `POST /servers/{id}/webhooks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateWebhook {
    /// 1–100 characters once trimmed.
    pub name: String,
    /// `http://` or `https://` (any case), at most 2000 bytes.
    pub url: String,
    /// At least one of the known event types.
    pub event_types: Vec<String>,
}

/// Body of `PATCH /servers/{id}/webhooks/{webhook_id}`: null or absent = unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateWebhook {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New URL.
    #[serde(default)]
    pub url: Option<String>,
    /// New subscriptions.
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
    /// Enable or disable deliveries.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// The answer to `POST /servers/{id}/webhooks/{webhook_id}/test` (202; Concord X13:
/// a JSON body where the reference sends none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookTestQueued {
    /// Always true: the ping is queued.
    pub queued: bool,
}
