#!/bin/bash
# 7771aac (names only, /tmp/b2) against 7503503 (Applied's records too, /tmp/b3), alternately
cd /work/res/mark
./mark.sh /tmp/b3 /work/scale/sqlite-1000000 applied-sqlite-1
./mark.sh /tmp/b2 /work/scale/sqlite-1000000 names-sqlite-1
./mark.sh /tmp/b2 /work/scale/sqlite-1000000 names-sqlite-2
./mark.sh /tmp/b3 /work/scale/sqlite-1000000 applied-sqlite-2
echo pair3 done
