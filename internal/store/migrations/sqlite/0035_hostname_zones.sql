-- Spine schema, version 35: a project's hostname zones (HostnameZones)
-- found by skipping from one parent to the next within each service (a
-- few index probes a service) instead of reading all its hostnames.
CREATE INDEX service_hostnames_service_parent ON service_hostnames (service_id, parent);
