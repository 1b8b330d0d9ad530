#!/bin/bash
# series3.sh: the warm-up bound during the build (/tmp/bw, 210e774): bench/scale on PostgreSQL twice, SQLite once
cd /work/res/warm
export EXTRA="-db-core 1 -db-nice 10 -cold 1000"
./run.sh bound /tmp/bw postgres 1
./run.sh bound /tmp/bw sqlite 1
./run.sh bound /tmp/bw postgres 2
echo SERIESDONE
