#!/bin/bash
# series6.sh: the final build (/tmp/bf, 9688b59) on PostgreSQL: three runs, then a traced run (25 s from the start)
cd /work/res/warm
for r in 1 2 3; do EXTRA="-db-core 1 -db-nice 10 -cold 1000" ./run.sh final /tmp/bf postgres $r; done
EXTRA="-db-core 1 -db-nice 10 -cold 1000" ./traced.sh tracefinal /tmp/bf postgres 1 25
