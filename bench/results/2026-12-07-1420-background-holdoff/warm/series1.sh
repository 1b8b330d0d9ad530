#!/bin/bash
# series1.sh: bench/scale at 1M (warm-up probe, 1,000 idle cold handshakes, three changes) with the final build
# (/tmp/bp, 4d8bbac), PostgreSQL then SQLite
cd /work/res/warm
export EXTRA="-db-core 1 -db-nice 10 -cold 1000"
./run.sh page64 /tmp/bp postgres 1
./run.sh page64 /tmp/bp sqlite 1
echo SERIESDONE
