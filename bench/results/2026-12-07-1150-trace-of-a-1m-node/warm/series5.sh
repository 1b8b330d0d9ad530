#!/bin/bash
# series5.sh: the final build (/tmp/bf, 9688b59): PostgreSQL three runs, a traced run (25 s from the start),
# then SQLite's first start (not counted) and two runs
cd /work/res/warm
for r in 1 2 3; do EXTRA="-db-core 1 -db-nice 10 -cold 1000" ./run.sh final /tmp/bf postgres $r; done
EXTRA="-db-core 1 -db-nice 10 -cold 1000" ./traced.sh tracefinal /tmp/bf postgres 1 25
for r in 1 2 3; do EXTRA="" ./run.sh final /tmp/bf sqlite $r; done
