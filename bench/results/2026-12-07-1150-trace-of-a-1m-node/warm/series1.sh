#!/bin/bash
# series1.sh: the landed build (16226fe, /tmp/b), PostgreSQL, two runs
cd /work/res/warm
for r in 1 2; do EXTRA="-db-core 1 -db-nice 10 -cold 1000" ./run.sh base /tmp/b postgres $r; done
