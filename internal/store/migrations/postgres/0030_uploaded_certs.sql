-- Spine schema, version 30 (PostgreSQL): certificates a project brought
-- itself (spine cert upload). One per hostname; the node serves it instead
-- of a managed certificate while the hostname is a route of the same
-- project. chain_pem is the chain as served (leaf first), key_pem its
-- private key (PEM), which the API never returns; the other columns repeat
-- what the leaf says, for listing without parsing. Times are Unix
-- nanoseconds, as elsewhere.
CREATE TABLE uploaded_certs (
    hostname    TEXT COLLATE "C" PRIMARY KEY,
    project_id  TEXT COLLATE "C" NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    chain_pem   BYTEA NOT NULL,
    key_pem     BYTEA NOT NULL,
    issuer      TEXT NOT NULL,
    not_before  BIGINT NOT NULL,
    not_after   BIGINT NOT NULL,
    sha256      TEXT NOT NULL,
    uploaded_at BIGINT NOT NULL
);
CREATE INDEX uploaded_certs_project ON uploaded_certs (project_id, hostname);
