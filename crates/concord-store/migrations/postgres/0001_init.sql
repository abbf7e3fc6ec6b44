-- Concord's PostgreSQL schema: the same tables, columns and rules as the SQLite
-- migrations up to 0018 give, in PostgreSQL's types. Ids are UUID; timestamps are
-- BIGINT microseconds since the Unix epoch (as on SQLite); flags are BOOLEAN.
-- Where SQLite needs a trigger or a virtual table, PostgreSQL's own means are used
-- (a trigger function for member counts and attachment purges; a generated tsvector
-- with a GIN index for message search).

CREATE TABLE users (
    id            UUID       PRIMARY KEY NOT NULL,
    username      TEXT    NOT NULL UNIQUE,
    email         TEXT    UNIQUE,
    password_hash TEXT,
    avatar_url    TEXT,
    bio           TEXT,
    pronouns      TEXT,
    status        TEXT    NOT NULL DEFAULT 'offline'
                          CHECK (status IN ('online', 'away', 'dnd', 'offline')),
    custom_status TEXT,
    activity      TEXT,
    created_at    BIGINT  NOT NULL,
    is_admin      BOOLEAN NOT NULL DEFAULT FALSE,
    is_bot        BOOLEAN NOT NULL DEFAULT FALSE,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    disabled_at   BIGINT
);

CREATE TABLE refresh_sessions (
    id         UUID       PRIMARY KEY NOT NULL,
    user_id    UUID       NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT    NOT NULL UNIQUE,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    previous_hash TEXT,
    rotated_at BIGINT
);

CREATE INDEX refresh_sessions_user ON refresh_sessions (user_id, created_at, id);

CREATE TABLE servers (
    id             UUID       PRIMARY KEY NOT NULL,
    name           TEXT    NOT NULL,
    owner_id       UUID       NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    icon_url       TEXT,
    is_public      BOOLEAN NOT NULL DEFAULT FALSE,
    require_invite BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL,
    member_count   BIGINT  NOT NULL DEFAULT 0
);

CREATE INDEX servers_owner ON servers (owner_id);

CREATE TABLE server_members (
    server_id UUID       NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    user_id   UUID       NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    joined_at BIGINT  NOT NULL,
    PRIMARY KEY (server_id, user_id)
);

CREATE INDEX server_members_user ON server_members (user_id);

CREATE INDEX server_members_joined ON server_members (server_id, joined_at);

CREATE TABLE bans (
    server_id  UUID       NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    user_id    UUID       NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    banned_by  UUID       REFERENCES users (id) ON DELETE SET NULL,
    reason     TEXT,
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (server_id, user_id)
);

CREATE TABLE timeouts (
    server_id  UUID       NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    user_id    UUID       NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at BIGINT  NOT NULL,
    reason     TEXT,
    created_by UUID       REFERENCES users (id) ON DELETE SET NULL,
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (server_id, user_id)
);

CREATE INDEX timeouts_expires ON timeouts (expires_at);

CREATE TABLE channels (
    id         UUID       PRIMARY KEY NOT NULL,
    server_id  UUID       NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    type       TEXT    NOT NULL CHECK (type IN ('text', 'voice')),
    position   BIGINT  NOT NULL,
    category   TEXT,
    topic      TEXT,
    created_at BIGINT  NOT NULL
);

CREATE INDEX channels_server ON channels (server_id, position, created_at);

CREATE TABLE roles (
    id          UUID       PRIMARY KEY NOT NULL,
    server_id   UUID       NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    permissions BIGINT  NOT NULL DEFAULT 0,
    color       TEXT,
    position    BIGINT  NOT NULL DEFAULT 0,
    created_at  BIGINT  NOT NULL,
    -- Target of member_roles' (role, server) reference: a role is assigned only
    -- within its own server.
    UNIQUE (id, server_id)
);

CREATE INDEX roles_server ON roles (server_id, position);

CREATE TABLE member_roles (
    server_id UUID    NOT NULL,
    user_id   UUID    NOT NULL,
    role_id   UUID    NOT NULL,
    PRIMARY KEY (server_id, user_id, role_id),
    FOREIGN KEY (server_id, user_id) REFERENCES server_members (server_id, user_id)
        ON DELETE CASCADE,
    FOREIGN KEY (role_id, server_id) REFERENCES roles (id, server_id) ON DELETE CASCADE
);

CREATE INDEX member_roles_role ON member_roles (role_id, server_id);

CREATE TABLE channel_overrides (
    id         UUID       PRIMARY KEY NOT NULL,
    channel_id UUID       NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    role_id    UUID       REFERENCES roles (id) ON DELETE CASCADE,
    user_id    UUID       REFERENCES users (id) ON DELETE CASCADE,
    allow      BIGINT  NOT NULL DEFAULT 0,
    deny       BIGINT  NOT NULL DEFAULT 0,
    CHECK ((role_id IS NULL) <> (user_id IS NULL)),
    UNIQUE (channel_id, role_id),
    UNIQUE (channel_id, user_id)
);

CREATE INDEX channel_overrides_role ON channel_overrides (role_id) WHERE role_id IS NOT NULL;

CREATE INDEX channel_overrides_user ON channel_overrides (user_id) WHERE user_id IS NOT NULL;

CREATE TABLE read_states (
    user_id      UUID       NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel_id   UUID       NOT NULL,
    last_read_at BIGINT  NOT NULL,
    PRIMARY KEY (user_id, channel_id)
);

CREATE TABLE messages (
    id               UUID       PRIMARY KEY NOT NULL,
    channel_id       UUID       NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    author_id        UUID       REFERENCES users (id) ON DELETE SET NULL,
    content          TEXT    NOT NULL,
    reply_to         UUID       REFERENCES messages (id) ON DELETE SET NULL,
    thread_id        UUID       REFERENCES messages (id) ON DELETE CASCADE,
    mention_everyone BOOLEAN NOT NULL DEFAULT FALSE,
    edited_at        BIGINT ,
    deleted          BOOLEAN NOT NULL DEFAULT FALSE,
    pinned           BOOLEAN NOT NULL DEFAULT FALSE,
    pinned_by        UUID       REFERENCES users (id) ON DELETE SET NULL,
    pinned_at        BIGINT ,
    created_at       BIGINT  NOT NULL
);

CREATE INDEX messages_channel ON messages (channel_id, created_at, id);

CREATE INDEX messages_thread ON messages (thread_id, created_at, id)
    WHERE thread_id IS NOT NULL;

CREATE INDEX messages_reply_to ON messages (reply_to) WHERE reply_to IS NOT NULL;

CREATE INDEX messages_pinned ON messages (channel_id, pinned_at) WHERE pinned;

CREATE TABLE message_mentions (
    message_id UUID       NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id    UUID       NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    ord        BIGINT  NOT NULL,
    PRIMARY KEY (message_id, user_id)
);

CREATE INDEX message_mentions_user ON message_mentions (user_id, message_id);

CREATE TABLE dm_channels (
    id         UUID       PRIMARY KEY NOT NULL,
    user_a     UUID       NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_b     UUID       NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT  NOT NULL,
    CHECK (user_a <= user_b),
    UNIQUE (user_a, user_b)
);

CREATE INDEX dm_channels_user_b ON dm_channels (user_b);

CREATE TABLE dm_messages (
    id         UUID       PRIMARY KEY NOT NULL,
    channel_id UUID       NOT NULL REFERENCES dm_channels (id) ON DELETE CASCADE,
    author_id  UUID       REFERENCES users (id) ON DELETE SET NULL,
    content    TEXT    NOT NULL,
    edited_at  BIGINT ,
    deleted    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT  NOT NULL
);

CREATE INDEX dm_messages_channel ON dm_messages (channel_id, created_at, id);

CREATE TABLE voice_states (
    user_id     UUID       PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel_id  UUID       NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    self_mute   BOOLEAN NOT NULL DEFAULT FALSE,
    self_deaf   BOOLEAN NOT NULL DEFAULT FALSE,
    self_video  BOOLEAN NOT NULL DEFAULT FALSE,
    self_screen BOOLEAN NOT NULL DEFAULT FALSE,
    server_mute BOOLEAN NOT NULL DEFAULT FALSE,
    server_deaf BOOLEAN NOT NULL DEFAULT FALSE,
    joined_at   BIGINT 
);

CREATE INDEX voice_states_channel ON voice_states (channel_id, joined_at);

CREATE TABLE bots (
    id          UUID       PRIMARY KEY NOT NULL,
    user_id     UUID       NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    description TEXT,
    created_by  UUID       REFERENCES users (id) ON DELETE SET NULL,
    token_hash  TEXT    NOT NULL UNIQUE,
    revoked_at  BIGINT ,
    created_at  BIGINT  NOT NULL
);

CREATE INDEX bots_created_by ON bots (created_by, created_at);

CREATE INDEX servers_public ON servers (is_public, member_count DESC, created_at DESC, id DESC);

CREATE TABLE gateway_sessions (
    id         TEXT    PRIMARY KEY NOT NULL,
    user_id    UUID       NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at BIGINT  NOT NULL,
    state      TEXT    NOT NULL
);

CREATE TABLE reactions (
    -- Insertion order (SQLite's rowid): orders emojis first used at the same time.
    seq        BIGINT     GENERATED ALWAYS AS IDENTITY,
    message_id UUID       NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id    UUID       NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    emoji      TEXT    NOT NULL CHECK (octet_length(emoji) BETWEEN 1 AND 64),
    created_at BIGINT  NOT NULL,
    UNIQUE (message_id, user_id, emoji)
);

CREATE INDEX reactions_user ON reactions (user_id);

CREATE TABLE polls (
    id         UUID       PRIMARY KEY NOT NULL,
    message_id UUID       NOT NULL UNIQUE REFERENCES messages (id) ON DELETE CASCADE,
    channel_id UUID       NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    question   TEXT    NOT NULL CHECK (octet_length(question) <= 500),
    created_at BIGINT  NOT NULL
);

CREATE INDEX polls_channel ON polls (channel_id);

CREATE TABLE poll_options (
    id      UUID       PRIMARY KEY NOT NULL,
    poll_id UUID       NOT NULL REFERENCES polls (id) ON DELETE CASCADE,
    text    TEXT    NOT NULL CHECK (octet_length(text) BETWEEN 1 AND 200),
    ord     BIGINT  NOT NULL,
    UNIQUE (poll_id, ord),
    UNIQUE (id, poll_id)
);

CREATE TABLE poll_votes (
    poll_id   UUID       NOT NULL REFERENCES polls (id) ON DELETE CASCADE,
    user_id   UUID       NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    option_id UUID       NOT NULL,
    voted_at  BIGINT  NOT NULL,
    PRIMARY KEY (poll_id, user_id),
    FOREIGN KEY (option_id, poll_id) REFERENCES poll_options (id, poll_id) ON DELETE CASCADE
);

CREATE INDEX poll_votes_option ON poll_votes (option_id);

CREATE INDEX poll_votes_user ON poll_votes (user_id);

CREATE TABLE server_events (
    id          UUID       PRIMARY KEY NOT NULL,
    server_id   UUID       NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    channel_id  UUID       NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    message_id  UUID       NOT NULL UNIQUE REFERENCES messages (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL CHECK (octet_length(name) BETWEEN 1 AND 200),
    description TEXT    CHECK (length(description) <= 2000),
    starts_at   BIGINT  NOT NULL,
    created_by  UUID       REFERENCES users (id) ON DELETE SET NULL,
    created_at  BIGINT  NOT NULL
);

CREATE INDEX server_events_upcoming ON server_events (server_id, starts_at, id);

CREATE INDEX server_events_channel ON server_events (channel_id);

CREATE INDEX server_events_created_by ON server_events (created_by);

CREATE TABLE invites (
    id         UUID       PRIMARY KEY NOT NULL,
    server_id  UUID       NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    code       TEXT    NOT NULL UNIQUE,
    created_by UUID       REFERENCES users (id) ON DELETE SET NULL,
    max_uses   BIGINT  CHECK (max_uses IS NULL OR max_uses > 0),
    uses       BIGINT  NOT NULL DEFAULT 0 CHECK (uses >= 0),
    expires_at BIGINT ,
    created_at BIGINT  NOT NULL
);

CREATE INDEX invites_server ON invites (server_id, created_at);

CREATE INDEX bans_server ON bans (server_id, created_at);

CREATE TABLE go_live_sessions (
    channel_id     UUID       PRIMARY KEY NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    broadcaster_id UUID       NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    quality        TEXT    NOT NULL CHECK (quality IN ('480p', '720p', '1080p')),
    started_at     BIGINT  NOT NULL
);

CREATE INDEX go_live_sessions_broadcaster ON go_live_sessions (broadcaster_id);

CREATE TABLE custom_emojis (
    id           UUID       PRIMARY KEY NOT NULL,
    server_id    UUID       NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    created_by   UUID       NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 32),
    content_type TEXT    NOT NULL,
    file_size    BIGINT  NOT NULL CHECK (file_size > 0),
    created_at   BIGINT  NOT NULL,
    UNIQUE (server_id, name)
);

CREATE INDEX custom_emojis_server ON custom_emojis (server_id, created_at);

CREATE INDEX custom_emojis_creator ON custom_emojis (created_by);

CREATE TABLE instance_settings (
    id                BIGINT  PRIMARY KEY NOT NULL CHECK (id = 1),
    registration_mode TEXT    CHECK (registration_mode IN ('open', 'invite_only', 'closed')),
    updated_at        BIGINT  NOT NULL,
    updated_by        UUID       REFERENCES users (id) ON DELETE SET NULL
);

-- The singleton settings row, there from the start: `registration_mode` NULL means no
-- admin has chosen one (the configured `registration` is in force).
INSERT INTO instance_settings (id, registration_mode, updated_at)
VALUES (1, NULL, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT);

CREATE TABLE password_reset_tokens (
    id         UUID       PRIMARY KEY NOT NULL,
    user_id    UUID       NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT    NOT NULL UNIQUE,
    expires_at BIGINT  NOT NULL,
    used_at    BIGINT ,
    created_at BIGINT  NOT NULL,
    CHECK (expires_at > created_at)
);

CREATE INDEX password_reset_tokens_user ON password_reset_tokens (user_id);

CREATE TABLE server_templates (
    id            UUID       PRIMARY KEY NOT NULL,
    name          TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    description   TEXT    NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    category      TEXT    NOT NULL CHECK (category IN ('gaming', 'community', 'study', 'custom')),
    -- JSON: {"channels": [{"name", "type", "category", "position"}, ...]}
    template_data TEXT    NOT NULL,
    is_builtin    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT  NOT NULL
);

-- The three built-ins, with random ids per install.
INSERT INTO server_templates (id, name, description, category, template_data, is_builtin, created_at)
VALUES
(gen_random_uuid(), 'Gaming', 'A server for playing games together: announcements, chat and voice rooms.', 'gaming',
 '{"channels":[' ||
 '{"name":"announcements","type":"text","category":"Information","position":0},' ||
 '{"name":"general","type":"text","category":"Text Channels","position":1},' ||
 '{"name":"gaming-chat","type":"text","category":"Text Channels","position":2},' ||
 '{"name":"General","type":"voice","category":"Voice Channels","position":3},' ||
 '{"name":"Gaming","type":"voice","category":"Voice Channels","position":4}]}',
 TRUE, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT),
(gen_random_uuid(), 'Community', 'A community hub: announcements, rules, general and off-topic chat, a voice room.', 'community',
 '{"channels":[' ||
 '{"name":"announcements","type":"text","category":"Information","position":0},' ||
 '{"name":"rules","type":"text","category":"Information","position":1},' ||
 '{"name":"general","type":"text","category":"Text Channels","position":2},' ||
 '{"name":"off-topic","type":"text","category":"Text Channels","position":3},' ||
 '{"name":"General","type":"voice","category":"Voice Channels","position":4}]}',
 TRUE, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT),
(gen_random_uuid(), 'Study Group', 'A place to study together: announcements, resources, homework help and a study room.', 'study',
 '{"channels":[' ||
 '{"name":"announcements","type":"text","category":"Information","position":0},' ||
 '{"name":"resources","type":"text","category":"Text Channels","position":1},' ||
 '{"name":"homework-help","type":"text","category":"Text Channels","position":2},' ||
 '{"name":"Study Room","type":"voice","category":"Voice Channels","position":3}]}',
 TRUE, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT);

CREATE TABLE attachments (
    id          UUID       PRIMARY KEY NOT NULL,
    message_id  UUID       NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    uploader_id UUID       REFERENCES users (id) ON DELETE SET NULL,
    filename    TEXT    NOT NULL,
    stored_name TEXT    NOT NULL CHECK (length(stored_name) BETWEEN 1 AND 200),
    file_size   BIGINT  NOT NULL CHECK (file_size BETWEEN 1 AND 52428800),
    mime_type   TEXT    NOT NULL,
    position    BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL,
    UNIQUE (message_id, stored_name)
);

CREATE INDEX attachments_message ON attachments (message_id, created_at, position);

CREATE TABLE attachment_purges (
    seq         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id  UUID       NOT NULL,
    stored_name TEXT    NOT NULL
);

CREATE TABLE audit_logs (
    id          UUID       PRIMARY KEY NOT NULL,
    server_id   UUID       REFERENCES servers (id) ON DELETE SET NULL,
    actor_id    UUID       REFERENCES users (id) ON DELETE SET NULL,
    action      TEXT    NOT NULL,
    target_type TEXT,
    target_id   UUID   ,
    -- A JSON object, as text.
    details     TEXT    NOT NULL DEFAULT '{}',
    created_at  BIGINT  NOT NULL
);

CREATE INDEX audit_logs_server_time ON audit_logs (server_id, created_at, id);

CREATE INDEX audit_logs_server_action_time ON audit_logs (server_id, action, created_at, id);

CREATE INDEX audit_logs_actor_time ON audit_logs (actor_id, created_at);

CREATE TABLE automod_configs (
    server_id           UUID       PRIMARY KEY NOT NULL
                                REFERENCES servers (id) ON DELETE CASCADE,
    enabled             BOOLEAN NOT NULL DEFAULT FALSE,
    spam_enabled        BOOLEAN NOT NULL DEFAULT FALSE,
    spam_max_messages   BIGINT  NOT NULL DEFAULT 5 CHECK (spam_max_messages BETWEEN 1 AND 50),
    spam_window_secs    BIGINT  NOT NULL DEFAULT 5 CHECK (spam_window_secs BETWEEN 1 AND 60),
    spam_action         TEXT    NOT NULL DEFAULT 'delete'
                                CHECK (spam_action IN ('delete', 'timeout', 'kick', 'ban')),
    duplicate_enabled   BOOLEAN NOT NULL DEFAULT FALSE,
    word_filter_enabled BOOLEAN NOT NULL DEFAULT FALSE,
    word_filter_action  TEXT    NOT NULL DEFAULT 'delete'
                                CHECK (word_filter_action IN ('delete', 'timeout', 'kick', 'ban')),
    timeout_minutes     BIGINT  NOT NULL DEFAULT 10 CHECK (timeout_minutes BETWEEN 1 AND 10080),
    updated_at          BIGINT  NOT NULL
);

CREATE TABLE automod_word_filters (
    id         UUID       PRIMARY KEY NOT NULL,
    server_id  UUID       NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    -- Lowercase, trimmed when added.
    word       TEXT    NOT NULL CHECK (length(word) >= 1),
    created_by UUID       REFERENCES users (id) ON DELETE SET NULL,
    created_at BIGINT  NOT NULL,
    UNIQUE (server_id, word)
);

CREATE INDEX automod_word_filters_server_time
    ON automod_word_filters (server_id, created_at, id);

CREATE TABLE automod_logs (
    id              UUID       PRIMARY KEY NOT NULL,
    server_id       UUID       NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    channel_id      UUID       REFERENCES channels (id) ON DELETE SET NULL,
    user_id         UUID       REFERENCES users (id) ON DELETE SET NULL,
    username        TEXT    NOT NULL,
    rule_type       TEXT    NOT NULL CHECK (rule_type IN ('spam', 'duplicate', 'word_filter')),
    action_taken    TEXT    NOT NULL
                            CHECK (action_taken IN ('delete', 'timeout', 'kick', 'ban')),
    matched_term    TEXT,
    message_content TEXT,
    created_at      BIGINT  NOT NULL
);

CREATE INDEX automod_logs_server_time ON automod_logs (server_id, created_at, id);

CREATE TABLE webhooks (
    id                UUID       PRIMARY KEY NOT NULL,
    server_id         UUID       NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    created_by        UUID       NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name              TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    url               TEXT    NOT NULL CHECK (octet_length(url) BETWEEN 1 AND 2000),
    secret            TEXT    NOT NULL,
    event_types       TEXT    NOT NULL,
    enabled           BOOLEAN NOT NULL DEFAULT TRUE,
    delivery_failures BIGINT  NOT NULL DEFAULT 0,
    last_used_at      BIGINT ,
    created_at        BIGINT  NOT NULL,
    updated_at        BIGINT  NOT NULL
);

CREATE INDEX webhooks_server ON webhooks (server_id, created_at, id);

CREATE INDEX webhooks_creator ON webhooks (created_by);

CREATE INDEX messages_author ON messages (author_id, created_at, id);



-- ---- triggers ----

-- servers.member_count follows server_members.
CREATE FUNCTION concord_member_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE servers SET member_count = member_count + 1 WHERE id = NEW.server_id;
    ELSE
        UPDATE servers SET member_count = member_count - 1 WHERE id = OLD.server_id;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER server_members_count AFTER INSERT OR DELETE ON server_members
    FOR EACH ROW EXECUTE FUNCTION concord_member_count();

-- A deleted attachment row leaves its file to purge.
CREATE FUNCTION concord_attachment_purge() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO attachment_purges (message_id, stored_name)
    VALUES (OLD.message_id, OLD.stored_name);
    RETURN NULL;
END;
$$;

CREATE TRIGGER attachments_purge AFTER DELETE ON attachments
    FOR EACH ROW EXECUTE FUNCTION concord_attachment_purge();

-- A soft-deleted message loses its attachments.
CREATE FUNCTION concord_soft_delete_attachments() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM attachments WHERE message_id = NEW.id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER messages_soft_delete_attachments AFTER UPDATE OF deleted ON messages
    FOR EACH ROW WHEN (NEW.deleted AND NOT OLD.deleted)
    EXECUTE FUNCTION concord_soft_delete_attachments();

-- ---- message search ----

-- The words of a message's content, stemmed as SQLite's porter tokenizer stems them
-- ('english'), kept current by PostgreSQL itself: no deferred index to flush.
ALTER TABLE messages
    ADD COLUMN search_vector tsvector
    GENERATED ALWAYS AS (to_tsvector('english', content)) STORED;

CREATE INDEX messages_search ON messages USING GIN (search_vector) WHERE NOT deleted;
