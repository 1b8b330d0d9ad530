#!/bin/bash
# certificate packs (/tmp/bn, 46a66a0) against 85b6815 (/tmp/bo): a CPU profile of the fill, then
# mark.sh pairs, alternating, SQLite then PostgreSQL 1M
cd /work/res/mark
DSN="postgres://postgres@127.0.0.1:5432/test?sslmode=disable&search_path=spine_scale_1000000"
./fillprof.sh /tmp/bn /work/scale/sqlite-1000000 fp-new-sqlite-1
./fillprof.sh /tmp/bo /work/scale/sqlite-1000000 fp-old-sqlite-1
./mark.sh /tmp/bn /work/scale/sqlite-1000000 new-sqlite-1
./mark.sh /tmp/bo /work/scale/sqlite-1000000 old-sqlite-1
./mark.sh /tmp/bo /work/scale/sqlite-1000000 old-sqlite-2
./mark.sh /tmp/bn /work/scale/sqlite-1000000 new-sqlite-2
./mark.sh /tmp/bo /work/scale/postgres-1000000 old-postgres-1 "$DSN"
./mark.sh /tmp/bn /work/scale/postgres-1000000 new-postgres-1 "$DSN"
echo pairD done
