#!/bin/bash
# final.sh: the final build (37c244f, /tmp/b6): SQLite twice, PostgreSQL once, as pair.sh's runs
cd /work/res/warm
EXTRA="-cold 1000" ./run.sh final /tmp/b6 sqlite 1
EXTRA="-db-core 1 -db-nice 10 -cold 1000" ./run.sh final /tmp/b6 postgres 1
EXTRA="-cold 1000" ./run.sh final /tmp/b6 sqlite 2
echo final done
