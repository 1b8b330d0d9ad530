#!/bin/bash
# seriesB.sh: the start's check of plaintext secrets by their index (/tmp/bi, 9e7629a) against the landed
# build (/tmp/b, 6032d80) at 1M, stores alternately; the first run of each store makes the index (migration 36)
cd /work/res/warm
export EXTRA="-db-core 1 -db-nice 10 -cold 1000"
./run.sh idx /tmp/bi sqlite 1
./run.sh idx /tmp/bi postgres 1
for r in 1 2; do
  for st in sqlite postgres; do
    ../v36.sh $st off; ./run.sh base /tmp/b $st $((r+3))
    ../v36.sh $st on;  ./run.sh idx /tmp/bi $st $((r+1))
  done
done
echo SERIESDONE
