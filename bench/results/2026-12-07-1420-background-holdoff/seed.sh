set -e
psql -q -h 127.0.0.1 -U postgres -d test -c "drop schema if exists spine_scale_1000000 cascade" -c "create schema spine_scale_1000000"
s=$(date +%s)
/tmp/b/seed -data /work/scale/postgres-1000000 -n 1000000 -certs -domain bench.test -upstream http://127.0.0.1:19000 -store "postgres://postgres@127.0.0.1:5432/test?sslmode=disable&search_path=spine_scale_1000000"
echo "pg seed $(( $(date +%s) - s )) s"
PGOPTIONS="-c search_path=spine_scale_1000000" psql -h 127.0.0.1 -U postgres -d test -c "vacuum analyze"
s=$(date +%s)
/tmp/b/seed -data /work/scale/sqlite-1000000 -n 1000000 -certs -domain bench.test -upstream http://127.0.0.1:19000
echo "sqlite seed $(( $(date +%s) - s )) s"
echo SEEDDONE
