#!/bin/bash
# seriesC.sh: full cache right after a start (coldnow.sh), the start's check of plaintext secrets by their
# index (/tmp/bi, 9e7629a) against the landed build (/tmp/b, 6032d80), three rounds, stores alternately
cd /work/res/cold
for r in 1 2 3; do
  for st in sqlite postgres; do
    ../v36.sh $st off; ./coldnow.sh base /tmp/b $st $r
    ../v36.sh $st on;  ./coldnow.sh idx /tmp/bi $st $r
  done
done
echo SERIESDONE
