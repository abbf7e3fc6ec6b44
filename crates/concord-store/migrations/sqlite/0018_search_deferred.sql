-- Message search, deferred indexing (issue 18; see 0014 for the index itself).
--
-- Writing a message's tokens into messages_fts inside the message's own insert cost
-- ~60 µs on a ~40 µs insert, once per post: measurable on the fan-out benchmark. A new
-- message is now only queued in `search_pending` (one small row) and indexed in
-- batches, where FTS5 costs ~5 µs a message: by a task of the server every second,
-- and by every search before it reads, so a search sees every message posted before
-- it.
--
-- A pending row is not in messages_fts yet: an edit or a soft delete leaves the index
-- alone (the batch reads the row as it is then, live rows only), and a hard delete
-- just forgets it. A row not pending was indexed if it was live: the triggers tell
-- FTS5 its old text, as before.
--
-- After a VACUUM (which may renumber rowids) rebuild as 0014 says, then
-- DELETE FROM search_pending (the rebuild indexed every live row).
CREATE TABLE search_pending (
    msg_rowid INTEGER PRIMARY KEY NOT NULL
);

DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_delete;
DROP TRIGGER messages_fts_update;

CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages
WHEN NEW.deleted = 0
BEGIN
    INSERT OR IGNORE INTO search_pending (msg_rowid) VALUES (NEW.rowid);
END;

CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content)
    SELECT 'delete', OLD.rowid, OLD.content
    WHERE OLD.deleted = 0
      AND NOT EXISTS (SELECT 1 FROM search_pending WHERE msg_rowid = OLD.rowid);
    DELETE FROM search_pending WHERE msg_rowid = OLD.rowid;
END;

CREATE TRIGGER messages_fts_update AFTER UPDATE OF content, deleted ON messages
WHEN (OLD.deleted = 0 OR NEW.deleted = 0)
  AND NOT EXISTS (SELECT 1 FROM search_pending WHERE msg_rowid = OLD.rowid)
BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content)
    SELECT 'delete', OLD.rowid, OLD.content WHERE OLD.deleted = 0;
    INSERT INTO messages_fts (rowid, content)
    SELECT NEW.rowid, NEW.content WHERE NEW.deleted = 0;
END;
