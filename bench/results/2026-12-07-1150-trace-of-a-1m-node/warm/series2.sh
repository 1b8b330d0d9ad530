#!/bin/bash
# series2.sh: reseal 256 with the 500 us slice (/tmp/bn) and with a 200 us slice (/tmp/bs), alternately, PostgreSQL
cd /work/res/warm
for r in 1 2; do
  EXTRA="-db-core 1 -db-nice 10 -cold 1000" ./run.sh reseal /tmp/bn postgres $r
  EXTRA="-db-core 1 -db-nice 10 -cold 1000" ./run.sh s200 /tmp/bs postgres $r
done
