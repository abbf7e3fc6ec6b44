-- Instance administration (issue 18, rest-extras.md §2–§4, §11): the registration mode
-- an admin sets, admin-mediated password reset tokens, disabling accounts, and server
-- templates.

-- When an admin disabled the account (NULL while enabled).
ALTER TABLE users ADD COLUMN disabled_at INTEGER;

-- The singleton settings row. `registration_mode` NULL means no admin has chosen one:
-- the configured `registration` is in force.
CREATE TABLE instance_settings (
    id                INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    registration_mode TEXT    CHECK (registration_mode IN ('open', 'invite_only', 'closed')),
    updated_at        INTEGER NOT NULL,
    updated_by        BLOB    REFERENCES users (id) ON DELETE SET NULL
);
INSERT INTO instance_settings (id, registration_mode, updated_at)
VALUES (1, NULL, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER));

-- Reset tokens at rest: SHA-256 hex of the token; single use (`used_at`).
CREATE TABLE password_reset_tokens (
    id         BLOB    PRIMARY KEY NOT NULL,
    user_id    BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT    NOT NULL UNIQUE,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    created_at INTEGER NOT NULL,
    CHECK (expires_at > created_at)
);
CREATE INDEX password_reset_tokens_user ON password_reset_tokens (user_id);

CREATE TABLE server_templates (
    id            BLOB    PRIMARY KEY NOT NULL,
    name          TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    description   TEXT    NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    category      TEXT    NOT NULL CHECK (category IN ('gaming', 'community', 'study', 'custom')),
    -- JSON: {"channels": [{"name", "type", "category", "position"}, ...]}
    template_data TEXT    NOT NULL,
    is_builtin    INTEGER NOT NULL DEFAULT 0 CHECK (is_builtin IN (0, 1)),
    created_at    INTEGER NOT NULL
);

-- The three built-ins, with random ids per install.
INSERT INTO server_templates (id, name, description, category, template_data, is_builtin, created_at)
VALUES
(randomblob(16), 'Gaming', 'A server for playing games together: announcements, chat and voice rooms.', 'gaming',
 '{"channels":[' ||
 '{"name":"announcements","type":"text","category":"Information","position":0},' ||
 '{"name":"general","type":"text","category":"Text Channels","position":1},' ||
 '{"name":"gaming-chat","type":"text","category":"Text Channels","position":2},' ||
 '{"name":"General","type":"voice","category":"Voice Channels","position":3},' ||
 '{"name":"Gaming","type":"voice","category":"Voice Channels","position":4}]}',
 1, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)),
(randomblob(16), 'Community', 'A community hub: announcements, rules, general and off-topic chat, a voice room.', 'community',
 '{"channels":[' ||
 '{"name":"announcements","type":"text","category":"Information","position":0},' ||
 '{"name":"rules","type":"text","category":"Information","position":1},' ||
 '{"name":"general","type":"text","category":"Text Channels","position":2},' ||
 '{"name":"off-topic","type":"text","category":"Text Channels","position":3},' ||
 '{"name":"General","type":"voice","category":"Voice Channels","position":4}]}',
 1, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)),
(randomblob(16), 'Study Group', 'A place to study together: announcements, resources, homework help and a study room.', 'study',
 '{"channels":[' ||
 '{"name":"announcements","type":"text","category":"Information","position":0},' ||
 '{"name":"resources","type":"text","category":"Text Channels","position":1},' ||
 '{"name":"homework-help","type":"text","category":"Text Channels","position":2},' ||
 '{"name":"Study Room","type":"voice","category":"Voice Channels","position":3}]}',
 1, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER));
