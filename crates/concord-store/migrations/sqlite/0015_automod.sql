-- Automod (issue 18 part C, rest-extras.md §6, §11): one settings row per server,
-- its filtered words, and the log of what automod did. All go with their server.
-- The ranges of rest-extras.md §1 are CHECKed here too (the routes answer 400 first).
CREATE TABLE automod_configs (
    server_id           BLOB    PRIMARY KEY NOT NULL
                                REFERENCES servers (id) ON DELETE CASCADE,
    enabled             INTEGER NOT NULL DEFAULT 0 CHECK (enabled IN (0, 1)),
    spam_enabled        INTEGER NOT NULL DEFAULT 0 CHECK (spam_enabled IN (0, 1)),
    spam_max_messages   INTEGER NOT NULL DEFAULT 5 CHECK (spam_max_messages BETWEEN 1 AND 50),
    spam_window_secs    INTEGER NOT NULL DEFAULT 5 CHECK (spam_window_secs BETWEEN 1 AND 60),
    spam_action         TEXT    NOT NULL DEFAULT 'delete'
                                CHECK (spam_action IN ('delete', 'timeout', 'kick', 'ban')),
    duplicate_enabled   INTEGER NOT NULL DEFAULT 0 CHECK (duplicate_enabled IN (0, 1)),
    word_filter_enabled INTEGER NOT NULL DEFAULT 0 CHECK (word_filter_enabled IN (0, 1)),
    word_filter_action  TEXT    NOT NULL DEFAULT 'delete'
                                CHECK (word_filter_action IN ('delete', 'timeout', 'kick', 'ban')),
    timeout_minutes     INTEGER NOT NULL DEFAULT 10 CHECK (timeout_minutes BETWEEN 1 AND 10080),
    updated_at          INTEGER NOT NULL
);

CREATE TABLE automod_word_filters (
    id         BLOB    PRIMARY KEY NOT NULL,
    server_id  BLOB    NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    -- Lowercase, trimmed when added.
    word       TEXT    NOT NULL CHECK (length(word) >= 1),
    created_by BLOB    REFERENCES users (id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (server_id, word)
);
-- A server's list, oldest first.
CREATE INDEX automod_word_filters_server_time
    ON automod_word_filters (server_id, created_at, id);

CREATE TABLE automod_logs (
    id              BLOB    PRIMARY KEY NOT NULL,
    server_id       BLOB    NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    channel_id      BLOB    REFERENCES channels (id) ON DELETE SET NULL,
    user_id         BLOB    REFERENCES users (id) ON DELETE SET NULL,
    username        TEXT    NOT NULL,
    rule_type       TEXT    NOT NULL CHECK (rule_type IN ('spam', 'duplicate', 'word_filter')),
    action_taken    TEXT    NOT NULL
                            CHECK (action_taken IN ('delete', 'timeout', 'kick', 'ban')),
    matched_term    TEXT,
    message_content TEXT,
    created_at      INTEGER NOT NULL
);
-- The newest of a server, and the trim of the oldest.
CREATE INDEX automod_logs_server_time ON automod_logs (server_id, created_at, id);
