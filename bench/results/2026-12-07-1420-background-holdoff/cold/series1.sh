#!/bin/bash
# series1.sh: the landed build (/tmp/b, ac50ff8) against background hold-off (/tmp/bh, e7ecca0), the cache full
# right after a start (coldnow.sh), PostgreSQL and SQLite alternately; first one throwaway start of each store.
cd /work/res/cold
./coldnow.sh first /tmp/b postgres 1
./coldnow.sh first /tmp/b sqlite 1
for r in 1 2; do
  for st in postgres sqlite; do
    ./coldnow.sh landed /tmp/b $st $r
    ./coldnow.sh holdoff /tmp/bh $st $r
  done
done
echo SERIESDONE
