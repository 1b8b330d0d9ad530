#!/bin/bash
# series3.sh: hold-off with the key check at 64 keys a query (/tmp/bp, 4d8bbac), three rounds, stores alternately,
# and the hold-off build at 256 (/tmp/bh) once more each
cd /work/res/cold
for r in 1 2 3; do
  for st in sqlite postgres; do
    ./coldnow.sh page64 /tmp/bp $st $r
  done
done
./coldnow.sh holdoff /tmp/bh sqlite 5
./coldnow.sh holdoff /tmp/bh postgres 5
echo SERIESDONE
