#!/bin/bash
# seed100k.sh: the 100k seeds of both stores, with the index build's seed (/tmp/bi, 9e7629a)
set -e
psql -q -h 127.0.0.1 -U postgres -d test -c "drop schema if exists spine_scale_100000 cascade" -c "create schema spine_scale_100000"
rm -rf /work/scale/postgres-100000 /work/scale/sqlite-100000
/tmp/bi/seed -data /work/scale/postgres-100000 -n 100000 -certs -domain bench.test -upstream http://127.0.0.1:19000 -store "postgres://postgres@127.0.0.1:5432/test?sslmode=disable&search_path=spine_scale_100000"
PGOPTIONS="-c search_path=spine_scale_100000" psql -h 127.0.0.1 -U postgres -d test -c "vacuum analyze"
/tmp/bi/seed -data /work/scale/sqlite-100000 -n 100000 -certs -domain bench.test -upstream http://127.0.0.1:19000
echo SEEDDONE
