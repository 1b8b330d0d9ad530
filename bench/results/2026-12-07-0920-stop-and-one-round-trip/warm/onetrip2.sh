#!/bin/bash
# onetrip.sh again (runs 3 and 4), old build first
cd /work/res/warm
for r in 3 4; do
  EXTRA="-db-core 1 -db-nice 10 -cold 1000" ./run.sh fourreads /tmp/b postgres $r
  EXTRA="-db-core 1 -db-nice 10 -cold 1000" ./run.sh onetrip /tmp/bn postgres $r
done
echo onetrip2 done
