#!/bin/bash
# bulkevents.sh STORE: puts back the 990,000-odd events a 1M seed's first start prunes (ids below the
# 10,000 kept, older than them), so that the next start is again a first start after a bulk import
if [ $1 = postgres ]; then
  PGOPTIONS="-c search_path=spine_scale_1000000" psql -q -h 127.0.0.1 -U postgres -d test <<'SQL'
INSERT INTO events (project_id, id, type, subject, data, created_at)
SELECT 'default', g, 'service.created', 's' || g, '{"domain":"bench.test","hostnames":["s' || g || '.bench.test"],"service":"s' || g || '"}',
       (SELECT min(created_at) FROM events) - (990102 - g) * 1000
FROM generate_series(1, 990101) g;
VACUUM ANALYZE;
SQL
else
  sqlite3 /work/scale/sqlite-1000000/spine.db <<'SQL'
WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < 990047)
INSERT INTO events (project_id, id, type, subject, data, created_at)
SELECT 'default', i, 'service.created', 's' || i, '{"domain":"bench.test","hostnames":["s' || i || '.bench.test"],"service":"s' || i || '"}',
       (SELECT min(created_at) FROM events) - (990048 - i) * 1000
FROM g;
SQL
fi
