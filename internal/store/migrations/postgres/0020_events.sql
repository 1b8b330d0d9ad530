-- Spine schema, version 20 (PostgreSQL): the event log of each project.
-- An event's id counts up per project in commit order: event_seq's row is
-- taken (and so locked) by every append, so an append that started later
-- commits later, and a reader that saw id N never misses an id below it.
CREATE TABLE event_seq (
    project_id TEXT COLLATE "C" PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    last       BIGINT NOT NULL
);

CREATE TABLE events (
    project_id TEXT COLLATE "C" NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    id         BIGINT NOT NULL,
    type       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    data       TEXT NOT NULL, -- JSON object
    created_at BIGINT NOT NULL,
    dedup_key  TEXT COLLATE "C", -- NULL for none; else recorded once per project
    PRIMARY KEY (project_id, id)
);
CREATE UNIQUE INDEX events_dedup ON events (project_id, dedup_key);
CREATE INDEX events_created ON events (created_at);
