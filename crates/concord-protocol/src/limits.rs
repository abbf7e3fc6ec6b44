//! Numeric limits shared by server and clients.

/// Largest inbound gateway message, in bytes (`gateway.md` §5).
pub const MAX_GATEWAY_MESSAGE: usize = 16 * 1024;
/// Inbound text frames allowed per rolling window.
pub const GATEWAY_RATE_COUNT: usize = 20;
/// The rolling window of the inbound rate limit, in milliseconds.
pub const GATEWAY_RATE_WINDOW_MS: u64 = 1_000;
/// Idle timeout without any inbound frame, in seconds.
pub const GATEWAY_IDLE_SECS: u64 = 300;
/// Longest message content, in chars.
pub const MAX_MESSAGE_CHARS: usize = 4_000;
/// Longest custom status or activity, in chars.
pub const MAX_PRESENCE_TEXT_CHARS: usize = 128;
/// Access token lifetime, in seconds.
pub const ACCESS_TOKEN_SECS: i64 = 15 * 60;
/// Refresh token (and session) lifetime, in seconds.
pub const REFRESH_TOKEN_SECS: i64 = 7 * 24 * 3600;

// ---- custom emojis ----
/// Custom emojis a server may hold.
pub const MAX_CUSTOM_EMOJIS: i64 = 50;
/// Largest custom emoji image, in bytes (256 KiB).
pub const MAX_EMOJI_BYTES: usize = 256 * 1024;
/// Longest custom emoji name, in chars (each of `[a-z0-9_-]`).
pub const MAX_EMOJI_NAME_CHARS: usize = 32;
/// Most speakers a `MEDIA_SUBSCRIBE` filter may name.
pub const MAX_MEDIA_SPEAKER_FILTER: usize = 64;
