-- Spine schema, version 1 (PostgreSQL).
-- Times are Unix nanoseconds (0 = unset) so that both back ends share one set of queries.
-- Names and keys use the "C" collation: bytewise order, the same as SQLite, which the
-- sorted listings and the key-prefix range scans rely on.

CREATE TABLE projects (
    id         TEXT COLLATE "C" PRIMARY KEY,
    name       TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE tokens (
    id         TEXT COLLATE "C" PRIMARY KEY,
    project_id TEXT COLLATE "C" NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    hash       TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
CREATE INDEX tokens_project ON tokens (project_id);

CREATE TABLE domains (
    name         TEXT COLLATE "C" PRIMARY KEY,
    project_id   TEXT COLLATE "C" NOT NULL REFERENCES projects (id),
    status       TEXT NOT NULL,
    verify_token TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    verified_at  BIGINT NOT NULL,
    checked_at   BIGINT NOT NULL,
    check_error  TEXT NOT NULL
);
CREATE INDEX domains_project ON domains (project_id, name);

-- A domain that services use cannot be deleted (no ON DELETE): that is ErrInUse.
CREATE TABLE services (
    id           TEXT COLLATE "C" PRIMARY KEY,
    project_id   TEXT COLLATE "C" NOT NULL REFERENCES projects (id),
    name         TEXT COLLATE "C" NOT NULL,
    domain       TEXT COLLATE "C" NOT NULL REFERENCES domains (name),
    upstreams    TEXT NOT NULL, -- JSON array of URLs
    hsts_max_age INTEGER NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    UNIQUE (project_id, name)
);
CREATE INDEX services_domain ON services (domain);

-- The primary key makes a hostname unique across all projects.
CREATE TABLE service_hostnames (
    hostname   TEXT COLLATE "C" PRIMARY KEY,
    service_id TEXT COLLATE "C" NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    position   INTEGER NOT NULL
);
CREATE INDEX service_hostnames_service ON service_hostnames (service_id, position);

CREATE TABLE cert_status (
    hostname   TEXT COLLATE "C" PRIMARY KEY,
    status     TEXT NOT NULL,
    issuer     TEXT NOT NULL,
    not_before BIGINT NOT NULL,
    not_after  BIGINT NOT NULL,
    error      TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE kv (
    key      TEXT COLLATE "C" PRIMARY KEY,
    value    BYTEA NOT NULL,
    modified BIGINT NOT NULL
);

CREATE TABLE locks (
    name    TEXT COLLATE "C" PRIMARY KEY,
    owner   TEXT NOT NULL,
    expires BIGINT NOT NULL
);

CREATE TABLE revision (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value BIGINT NOT NULL
);
INSERT INTO revision (id, value) VALUES (1, 0);
