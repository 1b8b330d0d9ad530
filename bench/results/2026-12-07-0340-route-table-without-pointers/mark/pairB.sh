#!/bin/bash
# SQLite 1M: 5a73690 (/tmp/bn) against 58cba7d (/tmp/bo): old first, then new first
cd /work/res/mark
./mark.sh /tmp/bo /work/scale/sqlite-1000000 old-sqlite-2
./mark.sh /tmp/bn /work/scale/sqlite-1000000 new-sqlite-2
./mark.sh /tmp/bn /work/scale/sqlite-1000000 new-sqlite-3
./mark.sh /tmp/bo /work/scale/sqlite-1000000 old-sqlite-3
echo pairB done
