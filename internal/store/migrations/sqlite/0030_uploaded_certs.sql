-- Spine schema, version 30 (SQLite): certificates a project brought itself
-- (spine cert upload), served instead of a managed one (see the PostgreSQL file).
CREATE TABLE uploaded_certs (
    hostname    TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    chain_pem   BLOB NOT NULL,
    key_pem     BLOB NOT NULL,
    issuer      TEXT NOT NULL,
    not_before  INTEGER NOT NULL,
    not_after   INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    uploaded_at INTEGER NOT NULL
) STRICT;
CREATE INDEX uploaded_certs_project ON uploaded_certs (project_id, hostname);
