-- Spine schema, version 33: the change log, so that a node applies what
-- changed since the revision it applied instead of reading everything.
-- Every change (a write that bumps the revision) adds rows for its new
-- revision in its own transaction: one per service it created, updated or
-- deleted, or one with service_id '' for any other change (a project,
-- domain, token or uploaded certificate), which a node applies by reading
-- everything. Pruned to the last revisions as it grows (store.changeLogKeep).
CREATE TABLE service_changes (
    revision   BIGINT NOT NULL,
    service_id TEXT NOT NULL,
    PRIMARY KEY (revision, service_id)
);
