#!/bin/bash
# seriesA.sh: the start's key check off (SPINE_EXP_NORESEAL, an experiment build) against the landed build, alternately, PostgreSQL
export EXTRA="-db-core 1 -db-nice 10 -cold 1000"
SPINE_EXP_NORESEAL=1 ./run.sh noreseal /tmp/bn postgres 1
./run.sh base /tmp/b postgres 2
SPINE_EXP_NORESEAL=1 ./run.sh noreseal /tmp/bn postgres 2
./run.sh base /tmp/b postgres 3
echo SERIESDONE
