#!/bin/bash
# pair.sh R...: restarts of main (6da3172, /tmp/b) and 4693b5b (/tmp/b3), alternately, PostgreSQL then SQLite, with 1,000 idle cold handshakes
cd /work/res/warm
for R in "$@"; do
  for B in old:/tmp/b new:/tmp/b3; do
    L=${B%%:*}; BIN=${B#*:}
    EXTRA="-db-core 1 -db-nice 10 -cold 1000" ./run.sh $L $BIN postgres $R
  done
  for B in old:/tmp/b new:/tmp/b3; do
    L=${B%%:*}; BIN=${B#*:}
    EXTRA="-cold 1000" ./run.sh $L $BIN sqlite $R
  done
done
echo pair done
