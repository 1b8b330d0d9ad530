#!/bin/bash
# bench/scale 1M with certificate packs (/tmp/bn): SQLite, then PostgreSQL (its processes on core 1, nice 10)
cd /work/res/warm
EXTRA="-cold 1000" ./run.sh packs /tmp/bn sqlite 1
EXTRA="-db-core 1 -db-nice 10 -cold 1000" ./run.sh packs /tmp/bn postgres 1
echo both done
