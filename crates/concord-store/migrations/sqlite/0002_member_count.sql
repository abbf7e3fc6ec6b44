-- Each server's member count, kept by triggers on server_members, so that reading a
-- server costs the same whatever its size. It was a COUNT over the server's members
-- each time: every READY paid it for every server of the user, so a reconnect storm
-- of a 10k-member server counted 10k rows per reconnect.
ALTER TABLE servers ADD COLUMN member_count INTEGER NOT NULL DEFAULT 0;

UPDATE servers
SET member_count = (SELECT COUNT(*) FROM server_members sm WHERE sm.server_id = servers.id);

-- Foreign-key cascades (a user or a server deleted) fire these too.
CREATE TRIGGER server_members_count_join AFTER INSERT ON server_members
BEGIN
    UPDATE servers SET member_count = member_count + 1 WHERE id = NEW.server_id;
END;

CREATE TRIGGER server_members_count_leave AFTER DELETE ON server_members
BEGIN
    UPDATE servers SET member_count = member_count - 1 WHERE id = OLD.server_id;
END;

-- Discovery lists public servers largest first.
DROP INDEX servers_public;
CREATE INDEX servers_public ON servers (is_public, member_count DESC, created_at DESC, id DESC);
