#!/bin/bash
# bench/scale 1M PostgreSQL, new build, with the database logging every statement of 3 ms or more
# (ALTER DATABASE test SET log_min_duration_statement = 3, reset after): pg-slow-packs-postgres-6.log
cd /work/res/warm
L0=$(wc -l < /var/log/postgresql/postgresql-15-main.log)
EXTRA="-db-core 1 -db-nice 10 -cold 1000" ./run.sh packs /tmp/bn postgres 6
tail -n +$((L0+1)) /var/log/postgresql/postgresql-15-main.log > pg-slow-packs-postgres-6.log
echo pgslow done
