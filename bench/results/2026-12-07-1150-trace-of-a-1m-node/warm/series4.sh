#!/bin/bash
# series4.sh: 49233d3 (/tmp/bx) and 49233d3 with a 200 us slice and a 2 GiB warm floor (/tmp/by), alternately, PostgreSQL
cd /work/res/warm
for r in 1 2 3; do
  EXTRA="-db-core 1 -db-nice 10 -cold 1000" ./run.sh fix /tmp/bx postgres $r
  EXTRA="-db-core 1 -db-nice 10 -cold 1000" ./run.sh s200f2 /tmp/by postgres $r
done
