//! Automatic moderation of a server (`rest-extras.md` §1, §6): its settings, its word
//! list and the log of what it did.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use crate::{ChannelId, ServerId, Timestamp, UserId};

/// The allowed values of [`AutomodConfig::spam_max_messages`].
pub const AUTOMOD_SPAM_MAX_MESSAGES: RangeInclusive<i32> = 1..=50;
/// The allowed values of [`AutomodConfig::spam_window_secs`].
pub const AUTOMOD_SPAM_WINDOW_SECS: RangeInclusive<i32> = 1..=60;
/// The allowed values of [`AutomodConfig::timeout_minutes`] (up to a week).
pub const AUTOMOD_TIMEOUT_MINUTES: RangeInclusive<i32> = 1..=10_080;
/// Longest filtered word, in characters (a Concord bound).
pub const AUTOMOD_MAX_WORD_CHARS: usize = 100;
/// Most filtered words per server (a Concord bound).
pub const AUTOMOD_MAX_WORDS: usize = 1000;

/// What automod does to the author once a rule is broken (the message is always
/// blocked or deleted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AutomodAction {
    /// Only the message goes.
    Delete,
    /// The author is timed out for the configured minutes.
    Timeout,
    /// The author is removed from the server (they may join again).
    Kick,
    /// The author is banned from the server.
    Ban,
}

impl AutomodAction {
    /// The wire name (`delete`, `timeout`, `kick`, `ban`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Delete => "delete",
            Self::Timeout => "timeout",
            Self::Kick => "kick",
            Self::Ban => "ban",
        }
    }

    /// Parses a wire name (exact, lowercase); `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "delete" => Some(Self::Delete),
            "timeout" => Some(Self::Timeout),
            "kick" => Some(Self::Kick),
            "ban" => Some(Self::Ban),
            _ => None,
        }
    }
}

/// Which rule a message broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AutomodRule {
    /// Too many messages in the window.
    Spam,
    /// The same text again within 30 seconds.
    Duplicate,
    /// A filtered word.
    WordFilter,
}

impl AutomodRule {
    /// The wire name (`spam`, `duplicate`, `word_filter`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Spam => "spam",
            Self::Duplicate => "duplicate",
            Self::WordFilter => "word_filter",
        }
    }

    /// Parses a wire name; `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "spam" => Some(Self::Spam),
            "duplicate" => Some(Self::Duplicate),
            "word_filter" => Some(Self::WordFilter),
            _ => None,
        }
    }
}

/// A server's automod settings (`GET /servers/{id}/automod`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AutomodConfig {
    /// The server.
    pub server_id: ServerId,
    /// Master switch: nothing below applies while it is off.
    pub enabled: bool,
    /// Whether the spam rule applies.
    pub spam_enabled: bool,
    /// More than this many messages of one author in one channel within the window
    /// is spam (1-50).
    pub spam_max_messages: i32,
    /// The spam window, in seconds (1-60).
    pub spam_window_secs: i32,
    /// What the spam rule does to the author.
    pub spam_action: AutomodAction,
    /// Whether posting the same text twice within 30 seconds is refused.
    pub duplicate_enabled: bool,
    /// Whether the word filter applies.
    pub word_filter_enabled: bool,
    /// What the word filter does to the author.
    pub word_filter_action: AutomodAction,
    /// Length of an automod timeout, in minutes (1-10080).
    pub timeout_minutes: i32,
    /// Last change.
    pub updated_at: Timestamp,
}

/// `PATCH /servers/{id}/automod`: every field optional, null or absent = unchanged;
/// unknown keys are ignored. The first PATCH fills the omitted fields with the
/// defaults (`false`, `false`, 5, 5, `delete`, `false`, `false`, `delete`, 10).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateAutomodConfig {
    /// See [`AutomodConfig::enabled`].
    #[serde(default)]
    pub enabled: Option<bool>,
    /// See [`AutomodConfig::spam_enabled`].
    #[serde(default)]
    pub spam_enabled: Option<bool>,
    /// 1-50.
    #[serde(default)]
    pub spam_max_messages: Option<i32>,
    /// 1-60.
    #[serde(default)]
    pub spam_window_secs: Option<i32>,
    /// `delete`, `timeout`, `kick` or `ban`.
    #[serde(default)]
    pub spam_action: Option<String>,
    /// See [`AutomodConfig::duplicate_enabled`].
    #[serde(default)]
    pub duplicate_enabled: Option<bool>,
    /// See [`AutomodConfig::word_filter_enabled`].
    #[serde(default)]
    pub word_filter_enabled: Option<bool>,
    /// `delete`, `timeout`, `kick` or `ban`.
    #[serde(default)]
    pub word_filter_action: Option<String>,
    /// 1-10080.
    #[serde(default)]
    pub timeout_minutes: Option<i32>,
}

/// A filtered word (`GET /servers/{id}/automod/words`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WordFilter {
    /// Id.
    pub id: uuid::Uuid,
    /// The server.
    pub server_id: ServerId,
    /// The word, lowercase; a message containing it anywhere (as a plain substring)
    /// is blocked.
    pub word: String,
    /// Who added it (null once that account is deleted).
    #[cfg_attr(feature = "openapi", schema(required))]
    pub created_by: Option<UserId>,
    /// When it was added.
    pub created_at: Timestamp,
}

/// `POST /servers/{id}/automod/words`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddWordFilter {
    /// The word: trimmed and lowercased before it is stored; 1-100 characters.
    pub word: String,
}

/// One thing automod did (`GET /servers/{id}/automod/logs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AutomodLogEntry {
    /// Id.
    pub id: uuid::Uuid,
    /// The server.
    pub server_id: ServerId,
    /// Where the message was posted (null once that channel is deleted).
    #[cfg_attr(feature = "openapi", schema(required))]
    pub channel_id: Option<ChannelId>,
    /// The author (null once that account is deleted).
    #[cfg_attr(feature = "openapi", schema(required))]
    pub user_id: Option<UserId>,
    /// The author's name when it happened.
    pub username: String,
    /// The rule broken.
    pub rule_type: AutomodRule,
    /// What was done (`delete` for a duplicate).
    pub action_taken: AutomodAction,
    /// The filtered word that matched (word filter only).
    #[cfg_attr(feature = "openapi", schema(required))]
    pub matched_term: Option<String>,
    /// The message's text.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub message_content: Option<String>,
    /// When.
    pub created_at: Timestamp,
}
