#!/bin/bash
# series2.sh: two more rounds of series1.sh's pair (landed /tmp/b, hold-off /tmp/bh), the hold-off first this time
cd /work/res/cold
for r in 3 4; do
  for st in postgres sqlite; do
    ./coldnow.sh holdoff /tmp/bh $st $r
    ./coldnow.sh landed /tmp/b $st $r
  done
done
echo SERIESDONE
