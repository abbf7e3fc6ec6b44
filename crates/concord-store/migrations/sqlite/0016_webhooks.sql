-- Outbound webhooks (issue 18 part C, rest-extras.md §9, §11). `secret` is the HMAC
-- key, so it is kept as is. `event_types` is the subscribed types joined by commas
-- (the route admits only the five fixed names, none of which holds a comma).
-- `updated_at` is set by the store's update (the API's changes only; delivery
-- bookkeeping leaves it). The rows go with their server and with their creator.
CREATE TABLE webhooks (
    id                BLOB    PRIMARY KEY NOT NULL,
    server_id         BLOB    NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    created_by        BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name              TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    url               TEXT    NOT NULL CHECK (length(CAST(url AS BLOB)) BETWEEN 1 AND 2000),
    secret            TEXT    NOT NULL,
    event_types       TEXT    NOT NULL,
    enabled           INTEGER NOT NULL DEFAULT 1,
    delivery_failures INTEGER NOT NULL DEFAULT 0,
    last_used_at      INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX webhooks_server ON webhooks (server_id, created_at, id);
CREATE INDEX webhooks_creator ON webhooks (created_by);
