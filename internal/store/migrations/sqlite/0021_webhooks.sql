-- Spine schema, version 21 (SQLite): webhook endpoints and their outbox.
-- secret is the signing secret ("whsec_..."): it must be readable to sign,
-- so it is stored as given, like the other keys in this database.
CREATE TABLE webhooks (
    id              TEXT PRIMARY KEY,
    project_id      TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    url             TEXT NOT NULL,
    events          TEXT NOT NULL, -- JSON array of event types; [] means every type
    secret          TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    disabled_at     INTEGER NOT NULL, -- 0 while enabled
    disabled_reason TEXT NOT NULL,
    failing_since   INTEGER NOT NULL  -- first failed attempt since the last success; 0 if none
) STRICT;
CREATE INDEX webhooks_project ON webhooks (project_id, created_at);

-- One row per message to one endpoint: the outbox (see the PostgreSQL file).
CREATE TABLE webhook_deliveries (
    id           TEXT PRIMARY KEY,
    project_id   TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    webhook_id   TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    msg_id       TEXT NOT NULL,
    event_id     INTEGER NOT NULL,
    type         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    status       TEXT NOT NULL,
    attempts     INTEGER NOT NULL,
    next_attempt INTEGER NOT NULL,
    lease_owner  TEXT NOT NULL,
    lease_until  INTEGER NOT NULL,
    last_status  INTEGER NOT NULL,
    last_error   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, status, created_at);
