-- Spine schema, version 34 (SQLite): a node's read of every service's
-- hostnames (ListServices, in (service_id, position) order) reads this
-- index alone instead of the table row of each hostname: 100,000
-- hostnames in one pass over the index, not 100,000 look-ups. It replaces
-- service_hostnames_service, which is its prefix (one service's
-- hostnames, the cascade of a service's deletion).
CREATE INDEX service_hostnames_listing ON service_hostnames (service_id, position, hostname);
DROP INDEX service_hostnames_service;
