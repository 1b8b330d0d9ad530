#!/bin/bash
# v36.sh STORE on|off: marks migration 36 (kv_plaintext_secrets) applied or not in the 1M store, leaving the
# index in place, so that the landed build (which refuses a schema newer than it knows) and the new one
# take turns on one seed without the index being made again
ST=$1; M=$2
if [ $ST = postgres ]; then
  Q="psql -q -h 127.0.0.1 -U postgres -d test -c"; T=spine_scale_1000000.schema_migrations
  [ $M = off ] && $Q "delete from $T where version = 36"
  [ $M = on ] && $Q "insert into $T (version, applied_at) values (36, 0) on conflict do nothing"
else
  DB=/work/scale/sqlite-1000000/spine.db
  [ $M = off ] && sqlite3 $DB "delete from schema_migrations where version = 36"
  [ $M = on ] && sqlite3 $DB "insert or ignore into schema_migrations (version, applied_at) values (36, 0)"
fi
exit 0
