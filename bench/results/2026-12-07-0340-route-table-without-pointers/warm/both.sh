#!/bin/bash
cd /work/res/warm
EXTRA="-cold 1000" ./run.sh new /tmp/bn sqlite 1
EXTRA="-db-core 1 -db-nice 10 -cold 1000" ./run.sh new /tmp/bn postgres 1
echo both done
