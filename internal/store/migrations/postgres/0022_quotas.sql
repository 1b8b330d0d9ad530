-- Spine schema, version 22 (PostgreSQL): a project's own limits. -1 follows
-- the operator's default (spine serve --quota-...), 0 is no limit.
CREATE TABLE project_quotas (
    project_id      TEXT COLLATE "C" PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    domains         INTEGER NOT NULL,
    services        INTEGER NOT NULL,
    hostnames       INTEGER NOT NULL,
    orders_per_hour INTEGER NOT NULL
);
