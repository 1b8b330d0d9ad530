-- Spine schema, version 23 (SQLite): the orders placed with each ACME CA,
-- so that the CA's limits are kept (see the PostgreSQL file).
CREATE TABLE ca_budget (
    ca     TEXT PRIMARY KEY,
    orders INTEGER NOT NULL
) STRICT;

CREATE TABLE ca_orders (
    id                TEXT PRIMARY KEY,
    ca                TEXT NOT NULL,
    project_id        TEXT NOT NULL,
    hostname          TEXT NOT NULL,
    registered_domain TEXT NOT NULL,
    placed_at         INTEGER NOT NULL,
    outcome           TEXT NOT NULL
) STRICT;
CREATE INDEX ca_orders_ca ON ca_orders (ca, placed_at);
CREATE INDEX ca_orders_domain ON ca_orders (ca, registered_domain, placed_at);
CREATE INDEX ca_orders_hostname ON ca_orders (ca, hostname, placed_at);
CREATE INDEX ca_orders_project ON ca_orders (project_id, placed_at);
