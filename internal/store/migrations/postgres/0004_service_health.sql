-- Spine schema, version 4 (PostgreSQL): each service's active health check.
-- health_path '' and health_interval 0 mean the edge's defaults ("/", 10 s).
ALTER TABLE services ADD COLUMN health_path TEXT NOT NULL DEFAULT '';
ALTER TABLE services ADD COLUMN health_interval BIGINT NOT NULL DEFAULT 0; -- nanoseconds
