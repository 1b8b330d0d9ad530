#!/bin/bash
# The RSS slope, SQLite: 100k then 1M, each build, alternately (liveheap.sh of main).
cd /work/res/slope
L=/work/main/bench/scale/liveheap.sh
FILL=10000 FILL_TOTAL=100000 bash $L /tmp/bn/spine /work/scale/sqlite-100000 slope-new-100000-0  # throwaway: the seed's first start
FILL=10000 FILL_TOTAL=100000 bash $L /tmp/bn/spine /work/scale/sqlite-100000 slope-new-100000-1
FILL=10000 FILL_TOTAL=100000 bash $L /tmp/bo/spine /work/scale/sqlite-100000 slope-old-100000-1
FILL=10000 FILL_TOTAL=1000000 bash $L /tmp/bo/spine /work/scale/sqlite-1000000 slope-old-1000000-1
FILL=10000 FILL_TOTAL=1000000 bash $L /tmp/bn/spine /work/scale/sqlite-1000000 slope-new-1000000-1
echo slope done
