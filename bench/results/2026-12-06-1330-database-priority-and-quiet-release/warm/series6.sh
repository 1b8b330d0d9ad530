#!/bin/bash
# SQLite: main and quiet2 (26734a9), alternately, two more each
cd /work/res/warm
export EXTRA=""
./run.sh main /tmp/b sqlite 2
./run.sh quiet2 /tmp/b3 sqlite 2
./run.sh main /tmp/b sqlite 3
./run.sh quiet2 /tmp/b3 sqlite 3
echo done > series6.done
