-- Concord schema, SQLite flavour.
--
-- Conventions: ids are 16-byte UUID BLOBs, booleans are INTEGER 0/1, timestamps are
-- INTEGER microseconds since the Unix epoch. Deleting a user, server or channel takes
-- its dependents with it (ON DELETE CASCADE); references that only record "who did it"
-- become NULL instead.

CREATE TABLE users (
    id            BLOB    PRIMARY KEY NOT NULL,
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
    created_at    INTEGER NOT NULL,
    is_admin      INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    is_bot        INTEGER NOT NULL DEFAULT 0 CHECK (is_bot IN (0, 1)),
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
);

CREATE TABLE refresh_sessions (
    id         BLOB    PRIMARY KEY NOT NULL,
    user_id    BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX refresh_sessions_user ON refresh_sessions (user_id, created_at, id);

CREATE TABLE servers (
    id             BLOB    PRIMARY KEY NOT NULL,
    name           TEXT    NOT NULL,
    owner_id       BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    icon_url       TEXT,
    is_public      INTEGER NOT NULL DEFAULT 0 CHECK (is_public IN (0, 1)),
    require_invite INTEGER NOT NULL DEFAULT 0 CHECK (require_invite IN (0, 1)),
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX servers_owner ON servers (owner_id);
CREATE INDEX servers_public ON servers (is_public, created_at);

CREATE TABLE server_members (
    server_id BLOB    NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    user_id   BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (server_id, user_id)
);
CREATE INDEX server_members_user ON server_members (user_id);
CREATE INDEX server_members_joined ON server_members (server_id, joined_at);

CREATE TABLE bans (
    server_id  BLOB    NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    user_id    BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    banned_by  BLOB    REFERENCES users (id) ON DELETE SET NULL,
    reason     TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (server_id, user_id)
);

CREATE TABLE timeouts (
    server_id  BLOB    NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    user_id    BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL,
    reason     TEXT,
    created_by BLOB    REFERENCES users (id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (server_id, user_id)
);
CREATE INDEX timeouts_expires ON timeouts (expires_at);

CREATE TABLE channels (
    id         BLOB    PRIMARY KEY NOT NULL,
    server_id  BLOB    NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    type       TEXT    NOT NULL CHECK (type IN ('text', 'voice')),
    position   INTEGER NOT NULL,
    category   TEXT,
    topic      TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX channels_server ON channels (server_id, position, created_at);

CREATE TABLE roles (
    id          BLOB    PRIMARY KEY NOT NULL,
    server_id   BLOB    NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    permissions INTEGER NOT NULL DEFAULT 0,
    color       TEXT,
    position    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    -- Target of member_roles' (role, server) reference: a role is assigned only
    -- within its own server.
    UNIQUE (id, server_id)
);
CREATE INDEX roles_server ON roles (server_id, position);

-- A member's roles. Both references cascade: removing the member or deleting the
-- role removes the assignment.
CREATE TABLE member_roles (
    server_id BLOB NOT NULL,
    user_id   BLOB NOT NULL,
    role_id   BLOB NOT NULL,
    PRIMARY KEY (server_id, user_id, role_id),
    FOREIGN KEY (server_id, user_id) REFERENCES server_members (server_id, user_id)
        ON DELETE CASCADE,
    FOREIGN KEY (role_id, server_id) REFERENCES roles (id, server_id) ON DELETE CASCADE
);
CREATE INDEX member_roles_role ON member_roles (role_id, server_id);

CREATE TABLE channel_overrides (
    id         BLOB    PRIMARY KEY NOT NULL,
    channel_id BLOB    NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    role_id    BLOB    REFERENCES roles (id) ON DELETE CASCADE,
    user_id    BLOB    REFERENCES users (id) ON DELETE CASCADE,
    allow      INTEGER NOT NULL DEFAULT 0,
    deny       INTEGER NOT NULL DEFAULT 0,
    CHECK ((role_id IS NULL) <> (user_id IS NULL)),
    UNIQUE (channel_id, role_id),
    UNIQUE (channel_id, user_id)
);
CREATE INDEX channel_overrides_role ON channel_overrides (role_id) WHERE role_id IS NOT NULL;
CREATE INDEX channel_overrides_user ON channel_overrides (user_id) WHERE user_id IS NOT NULL;

-- Last-read marks. `channel_id` names a server channel or a DM channel (no foreign
-- key: it may point into either table; readers join to find out which).
CREATE TABLE read_states (
    user_id      BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel_id   BLOB    NOT NULL,
    last_read_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, channel_id)
);

CREATE TABLE messages (
    id               BLOB    PRIMARY KEY NOT NULL,
    channel_id       BLOB    NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    author_id        BLOB    REFERENCES users (id) ON DELETE SET NULL,
    content          TEXT    NOT NULL,
    reply_to         BLOB    REFERENCES messages (id) ON DELETE SET NULL,
    thread_id        BLOB    REFERENCES messages (id) ON DELETE CASCADE,
    mention_everyone INTEGER NOT NULL DEFAULT 0 CHECK (mention_everyone IN (0, 1)),
    edited_at        INTEGER,
    deleted          INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    pinned           INTEGER NOT NULL DEFAULT 0 CHECK (pinned IN (0, 1)),
    pinned_by        BLOB    REFERENCES users (id) ON DELETE SET NULL,
    pinned_at        INTEGER,
    created_at       INTEGER NOT NULL
);
CREATE INDEX messages_channel ON messages (channel_id, created_at, id);
CREATE INDEX messages_thread ON messages (thread_id, created_at, id)
    WHERE thread_id IS NOT NULL;
CREATE INDEX messages_reply_to ON messages (reply_to) WHERE reply_to IS NOT NULL;
CREATE INDEX messages_author ON messages (author_id);
CREATE INDEX messages_pinned ON messages (channel_id, pinned_at) WHERE pinned = 1;

-- Mentioned users of a message; `ord` keeps them in the order they were given.
CREATE TABLE message_mentions (
    message_id BLOB    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id    BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    ord        INTEGER NOT NULL,
    PRIMARY KEY (message_id, user_id)
);
CREATE INDEX message_mentions_user ON message_mentions (user_id, message_id);

-- Exactly two participants, stored in canonical order (user_a <= user_b bytewise), so
-- the pair is unique however it is asked for.
CREATE TABLE dm_channels (
    id         BLOB    PRIMARY KEY NOT NULL,
    user_a     BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_b     BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    CHECK (user_a <= user_b),
    UNIQUE (user_a, user_b)
);
CREATE INDEX dm_channels_user_b ON dm_channels (user_b);

CREATE TABLE dm_messages (
    id         BLOB    PRIMARY KEY NOT NULL,
    channel_id BLOB    NOT NULL REFERENCES dm_channels (id) ON DELETE CASCADE,
    author_id  BLOB    REFERENCES users (id) ON DELETE SET NULL,
    content    TEXT    NOT NULL,
    edited_at  INTEGER,
    deleted    INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    created_at INTEGER NOT NULL
);
CREATE INDEX dm_messages_channel ON dm_messages (channel_id, created_at, id);

-- Live voice connections: one row per connected user.
CREATE TABLE voice_states (
    user_id     BLOB    PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel_id  BLOB    NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    self_mute   INTEGER NOT NULL DEFAULT 0 CHECK (self_mute IN (0, 1)),
    self_deaf   INTEGER NOT NULL DEFAULT 0 CHECK (self_deaf IN (0, 1)),
    self_video  INTEGER NOT NULL DEFAULT 0 CHECK (self_video IN (0, 1)),
    self_screen INTEGER NOT NULL DEFAULT 0 CHECK (self_screen IN (0, 1)),
    server_mute INTEGER NOT NULL DEFAULT 0 CHECK (server_mute IN (0, 1)),
    server_deaf INTEGER NOT NULL DEFAULT 0 CHECK (server_deaf IN (0, 1)),
    joined_at   INTEGER
);
CREATE INDEX voice_states_channel ON voice_states (channel_id, joined_at);

CREATE TABLE bots (
    id          BLOB    PRIMARY KEY NOT NULL,
    user_id     BLOB    NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    description TEXT,
    created_by  BLOB    REFERENCES users (id) ON DELETE SET NULL,
    token_hash  TEXT    NOT NULL UNIQUE,
    revoked_at  INTEGER,
    created_at  INTEGER NOT NULL
);
CREATE INDEX bots_created_by ON bots (created_by, created_at);
