-- Spine schema, version 1 (SQLite).
-- Times are Unix nanoseconds (0 = unset) so that both back ends share one set of queries.

CREATE TABLE projects (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE tokens (
    id         TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX tokens_project ON tokens (project_id);

CREATE TABLE domains (
    name         TEXT PRIMARY KEY,
    project_id   TEXT NOT NULL REFERENCES projects (id),
    status       TEXT NOT NULL,
    verify_token TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    verified_at  INTEGER NOT NULL,
    checked_at   INTEGER NOT NULL,
    check_error  TEXT NOT NULL
) STRICT;
CREATE INDEX domains_project ON domains (project_id, name);

-- A domain that services use cannot be deleted (no ON DELETE): that is ErrInUse.
CREATE TABLE services (
    id           TEXT PRIMARY KEY,
    project_id   TEXT NOT NULL REFERENCES projects (id),
    name         TEXT NOT NULL,
    domain       TEXT NOT NULL REFERENCES domains (name),
    upstreams    TEXT NOT NULL, -- JSON array of URLs
    hsts_max_age INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (project_id, name)
) STRICT;
CREATE INDEX services_domain ON services (domain);

-- The primary key makes a hostname unique across all projects.
CREATE TABLE service_hostnames (
    hostname   TEXT PRIMARY KEY,
    service_id TEXT NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    position   INTEGER NOT NULL
) STRICT;
CREATE INDEX service_hostnames_service ON service_hostnames (service_id, position);

CREATE TABLE cert_status (
    hostname   TEXT PRIMARY KEY,
    status     TEXT NOT NULL,
    issuer     TEXT NOT NULL,
    not_before INTEGER NOT NULL,
    not_after  INTEGER NOT NULL,
    error      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- BINARY collation (the default) orders keys bytewise, which the prefix range scans rely on.
CREATE TABLE kv (
    key      TEXT PRIMARY KEY,
    value    BLOB NOT NULL,
    modified INTEGER NOT NULL
) STRICT;

CREATE TABLE locks (
    name    TEXT PRIMARY KEY,
    owner   TEXT NOT NULL,
    expires INTEGER NOT NULL
) STRICT;

CREATE TABLE revision (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
) STRICT;
INSERT INTO revision (id, value) VALUES (1, 0);
