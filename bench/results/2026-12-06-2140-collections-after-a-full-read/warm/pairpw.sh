#!/bin/bash
# pairpw.sh R...: pair.sh with -prewarm (the store read into the page cache before the node starts and before the idle cold handshakes)
cd /work/res/warm
for R in "$@"; do
  for B in old:/tmp/b new:/tmp/b3; do
    L=${B%%:*}; BIN=${B#*:}
    EXTRA="-db-core 1 -db-nice 10 -cold 1000 -prewarm" ./run.sh pw$L $BIN postgres $R
  done
  for B in old:/tmp/b new:/tmp/b3; do
    L=${B%%:*}; BIN=${B#*:}
    EXTRA="-cold 1000 -prewarm" ./run.sh pw$L $BIN sqlite $R
  done
done
echo pairpw done
