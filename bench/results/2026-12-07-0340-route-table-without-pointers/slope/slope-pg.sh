#!/bin/bash
# The RSS slope, PostgreSQL (its processes on core 1): 100k then 1M, each build, alternately.
cd /work/res/slope
L=/work/main/bench/scale/liveheap.sh
D="postgres://postgres@127.0.0.1:5432/test?sslmode=disable&search_path=spine_scale_"
export DB_CORE=1
FILL=10000 FILL_TOTAL=100000 bash $L /tmp/bn/spine /work/scale/postgres-100000 pg-new-100000-0 "${D}100000"  # throwaway: the seed's first start
FILL=10000 FILL_TOTAL=100000 bash $L /tmp/bn/spine /work/scale/postgres-100000 pg-new-100000-1 "${D}100000"
FILL=10000 FILL_TOTAL=100000 bash $L /tmp/bo/spine /work/scale/postgres-100000 pg-old-100000-1 "${D}100000"
FILL=10000 FILL_TOTAL=1000000 bash $L /tmp/bo/spine /work/scale/postgres-1000000 pg-old-1000000-1 "${D}1000000"
FILL=10000 FILL_TOTAL=1000000 bash $L /tmp/bn/spine /work/scale/postgres-1000000 pg-new-1000000-1 "${D}1000000"
echo slope-pg done
