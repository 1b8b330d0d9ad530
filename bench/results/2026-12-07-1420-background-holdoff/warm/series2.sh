#!/bin/bash
# series2.sh: the landed build (/tmp/b, ac50ff8) on PostgreSQL, then the final build again, as series1.sh
cd /work/res/warm
export EXTRA="-db-core 1 -db-nice 10 -cold 1000"
./run.sh landed /tmp/b postgres 1
./run.sh page64 /tmp/bp postgres 2
echo SERIESDONE
