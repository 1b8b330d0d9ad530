#!/bin/bash
# bench/scale 1M on PostgreSQL with -db-nice with the kernel autogroups off (the fixed
# harness in both /tmp/bn and /tmp/b): the final build (/tmp/bn) and 3af0719 (/tmp/b), alternately, twice
cd /work/res/warm
for r in 1 2; do
  EXTRA="-db-core 1 -db-nice 10 -cold 1000" ./run.sh agfinal /tmp/bn postgres $r
  EXTRA="-db-core 1 -db-nice 10 -cold 1000" ./run.sh agold /tmp/b postgres $r
done
echo autogroup done
