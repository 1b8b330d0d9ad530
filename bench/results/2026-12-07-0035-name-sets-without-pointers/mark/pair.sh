#!/bin/bash
cd /work/res/mark
for r in 1 2; do
  ./mark.sh /tmp/b2 /work/scale/sqlite-1000000 new-sqlite-$r
  ./mark.sh /tmp/b /work/scale/sqlite-1000000 old-sqlite-$r
done
echo pair done
