-- Spine schema, version 3 (SQLite): the nodes of a fleet and their heartbeats.
-- heartbeat is the database clock (Unix nanoseconds) of the node's last report.
CREATE TABLE nodes (
    id         TEXT PRIMARY KEY,
    version    TEXT NOT NULL,
    https_addr TEXT NOT NULL,
    http_addr  TEXT NOT NULL,
    api_addr   TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    heartbeat  INTEGER NOT NULL
) STRICT;
