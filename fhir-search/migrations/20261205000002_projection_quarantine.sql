-- Events the projection could not index. When the database refuses a batch for a reason that
-- retrying cannot cure (a data exception, an integrity violation, a program limit such as an
-- index row too large), the projector writes its events one by one, and one that is refused
-- again is recorded here instead of stalling the feed: its version is claimed in hfj_resource
-- without index rows (so an older version cannot come back), its position counts as applied,
-- and /status reports it. A rebuild re-applies every event and starts this table afresh, so
-- after a fix, what still cannot be indexed is what it lists.
--
-- A message that is not an event has no type, id or version. Nothing here but the position is
-- indexed: the other columns hold whatever the event carried, however long.
CREATE TABLE projection_quarantine (
    position       bigint      PRIMARY KEY,
    resource_type  text,
    resource_id    text,
    version        integer,
    reason         text        NOT NULL,
    quarantined_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX projection_quarantine_at ON projection_quarantine (quarantined_at);
