-- A bot's log lists its newest messages: index authors' messages by time, so that
-- the newest few are read straight off the index. The old single-column index is a
-- prefix of this one and goes.
DROP INDEX IF EXISTS messages_author;
CREATE INDEX messages_author ON messages (author_id, created_at, id);
