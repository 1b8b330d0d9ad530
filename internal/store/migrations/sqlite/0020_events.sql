-- Spine schema, version 20 (SQLite): the event log of each project.
-- An event's id counts up per project (event_seq), in commit order: SQLite
-- has one writer at a time.
CREATE TABLE event_seq (
    project_id TEXT PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    last       INTEGER NOT NULL
) STRICT;

CREATE TABLE events (
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    id         INTEGER NOT NULL,
    type       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    data       TEXT NOT NULL, -- JSON object
    created_at INTEGER NOT NULL,
    dedup_key  TEXT, -- NULL for none; else recorded once per project
    PRIMARY KEY (project_id, id)
) STRICT;
CREATE UNIQUE INDEX events_dedup ON events (project_id, dedup_key);
CREATE INDEX events_created ON events (created_at);
