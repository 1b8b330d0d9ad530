#!/bin/bash
# SQLite 1M, the store read into the page cache right before the cold handshakes: new, old, old, new
cd /work/res/mark
export PREWARM=1
./mark.sh /tmp/bn /work/scale/sqlite-1000000 pw-new-sqlite-1
./mark.sh /tmp/bo /work/scale/sqlite-1000000 pw-old-sqlite-1
./mark.sh /tmp/bo /work/scale/sqlite-1000000 pw-old-sqlite-2
./mark.sh /tmp/bn /work/scale/sqlite-1000000 pw-new-sqlite-2
echo pairC done
