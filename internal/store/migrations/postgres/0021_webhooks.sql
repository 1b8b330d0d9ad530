-- Spine schema, version 21 (PostgreSQL): webhook endpoints and their outbox.
-- secret is the signing secret ("whsec_..."): it must be readable to sign,
-- so it is stored as given, like the other keys in this database.
CREATE TABLE webhooks (
    id              TEXT COLLATE "C" PRIMARY KEY,
    project_id      TEXT COLLATE "C" NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    url             TEXT NOT NULL,
    events          TEXT NOT NULL, -- JSON array of event types; [] means every type
    secret          TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    disabled_at     BIGINT NOT NULL, -- 0 while enabled
    disabled_reason TEXT NOT NULL,
    failing_since   BIGINT NOT NULL  -- first failed attempt since the last success; 0 if none
);
CREATE INDEX webhooks_project ON webhooks (project_id, created_at);

-- One row per message to one endpoint: the outbox. status is pending until
-- delivered or given up (failed). A sender leases a row (lease_owner,
-- lease_until by the database clock) before each attempt, so one node of a
-- fleet sends it at a time.
CREATE TABLE webhook_deliveries (
    id           TEXT COLLATE "C" PRIMARY KEY,
    project_id   TEXT COLLATE "C" NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    webhook_id   TEXT COLLATE "C" NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    msg_id       TEXT NOT NULL,
    event_id     BIGINT NOT NULL, -- 0 for a test message
    type         TEXT NOT NULL,
    payload      TEXT NOT NULL,   -- the body sent, JSON {type, timestamp, data}
    status       TEXT NOT NULL,
    attempts     INTEGER NOT NULL,
    next_attempt BIGINT NOT NULL,
    lease_owner  TEXT NOT NULL,
    lease_until  BIGINT NOT NULL,
    last_status  INTEGER NOT NULL, -- HTTP status of the last attempt; 0 if none answered
    last_error   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, status, created_at);
