#!/bin/bash
# series4.sh: an experiment, not landed: page64 with gcgoal.DefaultCeiling at 256 MiB (/tmp/bc) against page64
# (/tmp/bp), two rounds, stores alternately
cd /work/res/cold
for r in 1 2; do
  for st in sqlite postgres; do
    ./coldnow.sh ceil256 /tmp/bc $st $r
    ./coldnow.sh page64 /tmp/bp $st $((r + 3))
  done
done
echo SERIESDONE
