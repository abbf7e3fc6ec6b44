//! Automod enforcement in `POST /channels/{id}/messages` (`rest-extras.md` §6.2), and
//! the per-server rules it reads from memory.
//!
//! A message costs no database read for a server without automod: each server's
//! settings and words are loaded once into [`AutomodRules`] and dropped there by the
//! automod routes when they change them, on every node of a cluster
//! ([`crate::bus::Cached::Automod`] travels like a directory change).
//!
//! Concord departs from the reference in three ways: the owner and holders of
//! ADMINISTRATOR are exempt (X9); outcomes are published like the manual ones
//! (`gateway.md` D19): a spam delete sends MESSAGE_DELETE after the MESSAGE_CREATE, and
//! timeout, kick and ban send the events of the moderation routes and cut the target's
//! sessions off the server as they do; and the log keeps only the newest rows.

use std::{
    collections::HashMap,
    sync::{Arc, PoisonError, RwLock},
};

use concord_protocol::{
    AutomodAction, AutomodConfig, AutomodLogEntry, AutomodRule, Ban, ChannelId, Message, ServerId,
    Timeout, Timestamp, UserId,
};
use concord_store::{Store, StoreResult, UserRecord};

use crate::{
    error::{ApiError, ApiResult},
    perms::Permissions,
    routes::{messages, moderation},
    state::AppState,
};

/// How far back the duplicate rule looks.
const DUPLICATE_WINDOW_MICROS: i64 = 30 * 1_000_000;

/// Rows of automod log kept per server (the route shows the 100 newest).
pub const LOG_KEEP: i64 = 1000;

/// One server's automod, as enforcement needs it.
#[derive(Debug, Default)]
pub struct Rules {
    /// The settings; `None` until the owner first changes them (automod is off).
    config: Option<AutomodConfig>,
    /// The filtered words, lowercase, oldest first; loaded only while the word filter
    /// is on.
    words: Vec<String>,
}

impl Rules {
    /// The settings, when automod is enabled.
    fn active(&self) -> Option<&AutomodConfig> {
        self.config.as_ref().filter(|c| c.enabled)
    }

    /// The first filtered word that `lowered` (the lowercased message) contains.
    fn matched_word(&self, lowered: &str) -> Option<&str> {
        self.words
            .iter()
            .map(String::as_str)
            .find(|word| lowered.contains(word))
    }
}

#[derive(Debug, Default)]
struct Cache {
    /// Bumped by every invalidation: a load that began before one is not kept.
    generation: u64,
    servers: HashMap<ServerId, Arc<Rules>>,
}

/// Each server's [`Rules`], loaded on first use and dropped when they change.
#[derive(Debug, Default)]
pub struct AutomodRules {
    cache: RwLock<Cache>,
}

impl AutomodRules {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets `server`'s rules (after its settings or words changed).
    pub fn invalidate(&self, server: ServerId) {
        let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        cache.generation += 1;
        cache.servers.remove(&server);
    }

    /// Forgets every server's rules (a node that may have missed changes).
    pub fn invalidate_all(&self) {
        let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        cache.generation += 1;
        cache.servers.clear();
    }

    /// `server`'s rules, from memory or loaded.
    ///
    /// # Errors
    /// Store failures while loading.
    pub async fn rules(&self, store: &dyn Store, server: ServerId) -> StoreResult<Arc<Rules>> {
        let generation = {
            let cache = self.cache.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(rules) = cache.servers.get(&server) {
                return Ok(Arc::clone(rules));
            }
            cache.generation
        };
        let config = store.automod_config(server).await?;
        let words = if config
            .as_ref()
            .is_some_and(|c| c.enabled && c.word_filter_enabled)
        {
            store
                .automod_words(server)
                .await?
                .into_iter()
                .map(|w| w.word)
                .collect()
        } else {
            Vec::new()
        };
        let rules = Arc::new(Rules { config, words });
        let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        // A change since the load began may not be in what was read: serve it this
        // once, keep nothing.
        if cache.generation == generation {
            cache.servers.insert(server, Arc::clone(&rules));
        }
        Ok(rules)
    }
}

/// Whether automod leaves `user` alone in `server`: the owner and ADMINISTRATOR
/// holders (X9; server-level permissions are all bits for both).
fn exempt(state: &AppState, server: ServerId, user: UserId) -> bool {
    state
        .directory
        .server_permissions(server, user)
        .is_some_and(|p| p.contains(Permissions::ADMINISTRATOR))
}

/// The checks before a message is stored: the word filter, then the duplicate rule.
/// Answers the rules to apply after the insert when the spam rule is on.
///
/// # Errors
/// 403 `Message blocked by word filter` / `Duplicate message blocked` (logged, and
/// the word filter's action taken); store failures.
pub async fn before_insert(
    state: &AppState,
    server: ServerId,
    channel: ChannelId,
    author: &UserRecord,
    content: &str,
    now: Timestamp,
) -> ApiResult<Option<Arc<Rules>>> {
    // Most servers have no automod: the cached rules say so before any permission is
    // resolved.
    let rules = state.automod.rules(state.store.as_ref(), server).await?;
    let Some(config) = rules.active() else {
        return Ok(None);
    };
    if exempt(state, server, author.id) {
        return Ok(None);
    }
    if config.word_filter_enabled {
        let lowered = content.to_lowercase();
        if let Some(word) = rules.matched_word(&lowered) {
            let action = config.word_filter_action;
            record(
                state,
                Violation {
                    server,
                    channel,
                    author,
                    rule: AutomodRule::WordFilter,
                    action,
                    matched_term: Some(word.to_owned()),
                    content,
                },
            )
            .await;
            punish(state, server, author, action, config.timeout_minutes).await;
            return Err(ApiError::forbidden("Message blocked by word filter"));
        }
    }
    if config.duplicate_enabled {
        let since = now.add_micros(-DUPLICATE_WINDOW_MICROS);
        if state
            .store
            .has_recent_duplicate(channel, author.id, content, since)
            .await?
        {
            record(
                state,
                Violation {
                    server,
                    channel,
                    author,
                    rule: AutomodRule::Duplicate,
                    action: AutomodAction::Delete,
                    matched_term: None,
                    content,
                },
            )
            .await;
            return Err(ApiError::forbidden("Duplicate message blocked"));
        }
    }
    Ok(config.spam_enabled.then_some(rules))
}

/// The spam rule, after `message` is stored and announced: when its author has more
/// than `spam_max_messages` live messages in its channel within the window (this one
/// included), it is deleted (MESSAGE_DELETE follows its MESSAGE_CREATE), the case is
/// logged and `spam_action` taken. Failures are logged, never answered: the message
/// was posted. True when the message was deleted here.
pub async fn after_insert(
    state: &AppState,
    rules: &Rules,
    message: &Message,
    author: &UserRecord,
) -> bool {
    let Some(config) = rules.active().filter(|c| c.spam_enabled) else {
        return false;
    };
    let Some(server) = state
        .directory
        .channel(message.channel_id)
        .map(|facts| facts.server)
    else {
        return false;
    };
    let since = message
        .created_at
        .add_micros(-i64::from(config.spam_window_secs) * 1_000_000);
    let count = match state
        .store
        .count_recent_messages(message.channel_id, author.id, since)
        .await
    {
        Ok(count) => count,
        Err(err) => {
            tracing::warn!(error = %err, %server, "automod: spam count failed");
            return false;
        }
    };
    if count <= i64::from(config.spam_max_messages) {
        return false;
    }
    match messages::delete_and_announce(state, message.id, message.channel_id).await {
        Ok(true) => {}
        // Already gone (its author or the owner was quicker): nothing to undo.
        Ok(false) => return false,
        Err(err) => {
            tracing::warn!(error = ?err, %server, "automod: spam delete failed");
            return false;
        }
    }
    let action = config.spam_action;
    record(
        state,
        Violation {
            server,
            channel: message.channel_id,
            author,
            rule: AutomodRule::Spam,
            action,
            matched_term: None,
            content: &message.content,
        },
    )
    .await;
    punish(state, server, author, action, config.timeout_minutes).await;
    true
}

/// One broken rule, as the log records it.
struct Violation<'a> {
    server: ServerId,
    channel: ChannelId,
    author: &'a UserRecord,
    rule: AutomodRule,
    action: AutomodAction,
    matched_term: Option<String>,
    content: &'a str,
}

/// Appends `violation` to the server's automod log; a failure is only logged.
async fn record(state: &AppState, violation: Violation<'_>) {
    let entry = AutomodLogEntry {
        id: uuid::Uuid::now_v7(),
        server_id: violation.server,
        channel_id: Some(violation.channel),
        user_id: Some(violation.author.id),
        username: violation.author.username.clone(),
        rule_type: violation.rule,
        action_taken: violation.action,
        matched_term: violation.matched_term,
        message_content: Some(violation.content.to_owned()),
        created_at: Timestamp::now(),
    };
    if let Err(err) = state.store.append_automod_log(&entry, LOG_KEEP).await {
        tracing::warn!(error = %err, server = %violation.server, "automod: log append failed");
    }
}

/// Takes `action` against `author` in `server` as the moderation routes would (with
/// their events), with no actor, reason or audit row. Never the owner or an
/// ADMINISTRATOR holder (checked again here: their roles may have changed since).
/// Failures are only logged.
async fn punish(
    state: &AppState,
    server: ServerId,
    author: &UserRecord,
    action: AutomodAction,
    timeout_minutes: i32,
) {
    if action == AutomodAction::Delete || exempt(state, server, author.id) {
        return;
    }
    let now = Timestamp::now();
    let result = match action {
        AutomodAction::Delete => Ok(()),
        AutomodAction::Timeout => {
            let timeout = Timeout {
                user_id: author.id,
                server_id: server,
                expires_at: now.add_micros(i64::from(timeout_minutes) * 60 * 1_000_000),
                reason: None,
                created_by: None,
                created_at: now,
            };
            moderation::impose_timeout(state, &timeout, None).await
        }
        AutomodAction::Kick => moderation::expel(state, server, author, None, None)
            .await
            .map(|_| ()),
        AutomodAction::Ban => {
            let ban = Ban {
                user_id: author.id,
                server_id: server,
                banned_by: None,
                reason: None,
                created_at: now,
            };
            moderation::impose_ban(state, &ban, author, None).await
        }
    };
    if let Err(err) = result {
        tracing::warn!(
            error = %err,
            %server,
            action = action.as_str(),
            "automod: action failed"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(words: &[&str]) -> Rules {
        Rules {
            config: None,
            words: words.iter().map(|w| (*w).to_owned()).collect(),
        }
    }

    #[test]
    fn words_match_as_plain_substrings_first_stored_first() {
        let r = rules(&["ass", "cla"]);
        assert_eq!(r.matched_word("a class act"), Some("ass"));
        assert_eq!(r.matched_word("clam"), Some("cla"));
        assert_eq!(r.matched_word("nothing here"), None);
        assert_eq!(rules(&[]).matched_word("anything"), None);
    }
}
