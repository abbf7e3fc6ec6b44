-- The node that accepted a message, in a cluster: if it dies between the commit and
-- the publish, another node finds what it stored and announces it. Read by a range of
-- ids (time-ordered), so it needs no index of its own. NULL on a single node.
ALTER TABLE messages ADD COLUMN node_id UUID;
