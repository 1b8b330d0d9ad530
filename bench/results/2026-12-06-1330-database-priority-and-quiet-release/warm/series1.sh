#!/bin/bash
# A = -db-core 1, B = -db-core 1 -db-nice 10, alternately; the same binary (main at 70f42db + the -db-nice flag of bench/scale)
cd /work/res/warm
for r in 1 2 3; do
  EXTRA="-db-core 1" ./run.sh core /tmp/b postgres $r
  EXTRA="-db-core 1 -db-nice 10" ./run.sh nice /tmp/b postgres $r
done
echo done > series1.done
