#!/bin/bash
# pair.sh: main at 9138bea (old, /tmp/b) and the names' blocks (new, /tmp/b2), alternately
cd /work/res/warm
EXTRA="-cold 1000" ./run.sh new /tmp/b2 sqlite 1
EXTRA="-cold 1000" ./run.sh old /tmp/b sqlite 1
EXTRA="-db-core 1 -db-nice 10 -cold 1000" ./run.sh new /tmp/b2 postgres 1
EXTRA="-db-core 1 -db-nice 10 -cold 1000" ./run.sh old /tmp/b postgres 1
echo pair done
