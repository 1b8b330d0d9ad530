#!/bin/bash
# the reverse order: old first
cd /work/res/mark
./mark.sh /tmp/b /work/scale/sqlite-1000000 old-sqlite-3
./mark.sh /tmp/b2 /work/scale/sqlite-1000000 new-sqlite-3
echo pair2 done
