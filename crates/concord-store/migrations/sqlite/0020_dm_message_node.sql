-- The node that accepted a direct message, as for channel messages (0019).
ALTER TABLE dm_messages ADD COLUMN node_id BLOB;
