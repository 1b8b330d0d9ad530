-- Spine schema, version 23 (PostgreSQL): the orders placed with each ACME CA,
-- so that a fleet that shares one account keeps within the CA's limits.
-- ca_budget has a row per CA whose lock orders the checks of that CA.
CREATE TABLE ca_budget (
    ca     TEXT COLLATE "C" PRIMARY KEY,
    orders BIGINT NOT NULL
);

CREATE TABLE ca_orders (
    id                TEXT COLLATE "C" PRIMARY KEY,
    ca                TEXT COLLATE "C" NOT NULL,
    project_id        TEXT COLLATE "C" NOT NULL, -- "" when no project holds the name; no foreign key: the CA counts orders of deleted projects too
    hostname          TEXT COLLATE "C" NOT NULL,
    registered_domain TEXT COLLATE "C" NOT NULL,
    placed_at         BIGINT NOT NULL,
    outcome           TEXT NOT NULL -- placed, issued, failed, invalid (a failed validation)
);
CREATE INDEX ca_orders_ca ON ca_orders (ca, placed_at);
CREATE INDEX ca_orders_domain ON ca_orders (ca, registered_domain, placed_at);
CREATE INDEX ca_orders_hostname ON ca_orders (ca, hostname, placed_at);
CREATE INDEX ca_orders_project ON ca_orders (project_id, placed_at);
