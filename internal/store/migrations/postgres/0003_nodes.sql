-- Spine schema, version 3 (PostgreSQL): the nodes of a fleet and their heartbeats.
-- heartbeat is the database clock (Unix nanoseconds) of the node's last report,
-- so freshness does not depend on the nodes' own clocks.
CREATE TABLE nodes (
    id         TEXT COLLATE "C" PRIMARY KEY,
    version    TEXT NOT NULL,
    https_addr TEXT NOT NULL,
    http_addr  TEXT NOT NULL,
    api_addr   TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat  BIGINT NOT NULL
);
