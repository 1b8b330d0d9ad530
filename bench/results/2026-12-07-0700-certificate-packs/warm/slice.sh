#!/bin/bash
# bench/scale 1M PostgreSQL: sched.Slice 200 µs (/tmp/bs, 46a66a0 with the constant changed) against 500 µs (/tmp/bn), alternating; then SQLite 200 µs
cd /work/res/warm
EXTRA="-db-core 1 -db-nice 10 -cold 1000" ./run.sh slice200 /tmp/bs postgres 1
EXTRA="-db-core 1 -db-nice 10 -cold 1000" ./run.sh packs /tmp/bn postgres 3
EXTRA="-db-core 1 -db-nice 10 -cold 1000" ./run.sh slice200 /tmp/bs postgres 2
EXTRA="-cold 1000" ./run.sh slice200 /tmp/bs sqlite 1
echo slice done
