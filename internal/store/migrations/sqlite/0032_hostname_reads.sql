-- Spine schema, version 32 (SQLite): a project's hostnames read a page at
-- a time (ListHostnames, CountHostnames, ListServiceSummaries) instead of
-- all at once. parent is the hostname without its first label, which
-- decides with the domains which hostnames are served; the index covers a
-- service's hostnames with it, so that counting and paging a project's
-- 10,000 names reads this index and cert_status's primary key only.
ALTER TABLE service_hostnames ADD COLUMN parent TEXT GENERATED ALWAYS AS (substr(hostname, instr(hostname, '.') + 1)) VIRTUAL;
CREATE INDEX service_hostnames_service_hostname ON service_hostnames (service_id, hostname, parent);
-- What the hostname reads need of a certificate's status, so that they
-- read it from the index.
CREATE INDEX cert_status_covering ON cert_status (hostname, status, not_before, not_after, error);
