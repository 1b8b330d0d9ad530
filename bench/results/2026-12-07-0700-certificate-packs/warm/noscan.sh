#!/bin/bash
# bench/scale 1M PostgreSQL: no check of every secret at start (/tmp/bx: 46a66a0 with keyfile.Watcher.migrate
# returning at once, not committed), twice, around one run of the new build
cd /work/res/warm
EXTRA="-db-core 1 -db-nice 10 -cold 1000" ./run.sh noscan /tmp/bx postgres 1
EXTRA="-db-core 1 -db-nice 10 -cold 1000" ./run.sh packs /tmp/bn postgres 4
EXTRA="-db-core 1 -db-nice 10 -cold 1000" ./run.sh noscan /tmp/bx postgres 2
echo noscan done
