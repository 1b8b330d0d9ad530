#!/bin/bash
# bench/scale 1M: old (85b6815, /tmp/bo) on both stores, then new (/tmp/bn) again on both
cd /work/res/warm
EXTRA="-cold 1000" ./run.sh old /tmp/bo sqlite 1
EXTRA="-db-core 1 -db-nice 10 -cold 1000" ./run.sh old /tmp/bo postgres 1
EXTRA="-cold 1000" ./run.sh packs /tmp/bn sqlite 2
EXTRA="-db-core 1 -db-nice 10 -cold 1000" ./run.sh packs /tmp/bn postgres 2
echo both2 done
