#!/bin/bash
# PostgreSQL 1M: 7503503 (/tmp/b3) against 7771aac (/tmp/b2)
cd /work/res/mark
DSN="postgres://postgres@127.0.0.1:5432/test?sslmode=disable&search_path=spine_scale_1000000"
./mark.sh /tmp/b3 /work/scale/postgres-1000000 applied-postgres-1 "$DSN"
./mark.sh /tmp/b2 /work/scale/postgres-1000000 names-postgres-1 "$DSN"
echo pair4 done
