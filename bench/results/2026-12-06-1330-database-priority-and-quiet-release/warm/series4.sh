#!/bin/bash
# quiet2 = quiet with a sync's pending return made whatever its size (16 MiB at least); a traced one, then two
cd /work/res/warm
export EXTRA="-db-core 1 -db-nice 10"
./traced.sh tracequiet /tmp/b3 postgres 1 30
./run.sh quiet2 /tmp/b3 postgres 2
./run.sh nice /tmp/b postgres 10
./run.sh quiet2 /tmp/b3 postgres 3
echo done > series4.done
