#!/bin/bash
# PostgreSQL then SQLite 1M: aa30dca.. (/tmp/bn) against 58cba7d (/tmp/bo), alternating
cd /work/res/mark
DSN="postgres://postgres@127.0.0.1:5432/test?sslmode=disable&search_path=spine_scale_1000000"
./mark.sh /tmp/bo /work/scale/postgres-1000000 old-postgres-1 "$DSN"
./mark.sh /tmp/bn /work/scale/postgres-1000000 new-postgres-1 "$DSN"
./mark.sh /tmp/bn /work/scale/sqlite-1000000 new-sqlite-1
./mark.sh /tmp/bo /work/scale/sqlite-1000000 old-sqlite-1
echo pairA done
