-- Spine schema, version 10 (PostgreSQL): scoped and expiring API tokens,
-- suspended projects, the audit trail.

-- scopes: space-separated, sorted; '' = every project scope (see platform).
-- expires_at, last_used_at: Unix nanoseconds, 0 = never.
ALTER TABLE tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN expires_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN last_used_at BIGINT NOT NULL DEFAULT 0;
-- The default project's admin tokens (one per node that bootstrapped)
-- are the operator's.
UPDATE tokens SET scopes = 'operator' WHERE project_id = 'default' AND name = 'admin';
-- Names become unique in a project (tokens are revoked by name): every
-- node of a fleet made its own "admin"; all but the oldest get a suffix.
UPDATE tokens SET name = name || '-' || substr(id, 5, 8)
    WHERE EXISTS (SELECT 1 FROM tokens o WHERE o.project_id = tokens.project_id AND o.name = tokens.name AND o.id < tokens.id);
ALTER TABLE tokens ALTER COLUMN name TYPE TEXT COLLATE "C";
CREATE UNIQUE INDEX tokens_project_name ON tokens (project_id, name);

-- suspended_at: Unix nanoseconds, 0 = active.
ALTER TABLE projects ADD COLUMN suspended_at BIGINT NOT NULL DEFAULT 0;

-- One row per change attempted through the API. project_id is '' for a
-- refusal that no token could be matched to. No foreign key: the trail
-- outlives a deleted project until retention removes it.
CREATE TABLE audit (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         BIGINT NOT NULL,
    project_id TEXT COLLATE "C" NOT NULL,
    token      TEXT NOT NULL, -- the token's name, never its value
    action     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    result     TEXT NOT NULL, -- "ok" or the error code
    status     INTEGER NOT NULL,
    client     TEXT NOT NULL
);
CREATE INDEX audit_project ON audit (project_id, id);
CREATE INDEX audit_at ON audit (at);
