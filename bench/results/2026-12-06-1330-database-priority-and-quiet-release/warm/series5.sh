#!/bin/bash
# SQLite: quiet2 (26734a9) and main; then PostgreSQL quiet2 and nice once more (-db-core 1 -db-nice 10)
cd /work/res/warm
EXTRA="" ./run.sh quiet2 /tmp/b3 sqlite 1
EXTRA="" ./run.sh main /tmp/b sqlite 1
export EXTRA="-db-core 1 -db-nice 10"
./run.sh nice /tmp/b postgres 11
./run.sh quiet2 /tmp/b3 postgres 4
echo done > series5.done
