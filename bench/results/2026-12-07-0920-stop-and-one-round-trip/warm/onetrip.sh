#!/bin/bash
# bench/scale 1M on PostgreSQL (its processes on core 1, nice 10): the warm-up's look-up in one round trip
# (/tmp/bn) and four reads at once (/tmp/b, main at 3af0719), alternately, twice each
cd /work/res/warm
for r in 1 2; do
  EXTRA="-db-core 1 -db-nice 10 -cold 1000" ./run.sh onetrip /tmp/bn postgres $r
  EXTRA="-db-core 1 -db-nice 10 -cold 1000" ./run.sh fourreads /tmp/b postgres $r
done
echo onetrip done
