-- Spine schema, version 34 (PostgreSQL): a node's read of every service's
-- hostnames (ListServices, in (service_id, position) order) is an
-- index-only scan of this index instead of a heap fetch per hostname. It
-- replaces service_hostnames_service, which is its key (one service's
-- hostnames, the cascade of a service's deletion).
CREATE INDEX service_hostnames_listing ON service_hostnames (service_id, position) INCLUDE (hostname);
DROP INDEX service_hostnames_service;
