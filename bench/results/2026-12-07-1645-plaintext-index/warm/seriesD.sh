#!/bin/bash
# seriesD.sh: a first start after a bulk import with the index build (/tmp/bi, 9e7629a): each 1M store
# given back the events its seed's first start pruned (../bulkevents.sh, run before this), then one
# bench/scale run each, PostgreSQL then SQLite
cd /work/res/warm
export EXTRA="-db-core 1 -db-nice 10 -cold 1000"
./run.sh idxfirst /tmp/bi postgres 1
./run.sh idxfirst /tmp/bi sqlite 1
echo SERIESDONE
